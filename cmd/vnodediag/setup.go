package main

import (
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
)

// sourceFlags are the flags shared by diagnose and serve that build sources.
type sourceFlags struct {
	configPath string
	// kube holds kubectl's own flags, those of them a read-only tool
	// needs: where the cluster is and who asks.
	kube          kubeFlags
	checkTimeout  time.Duration
	sourceTimeout time.Duration
}

// kubeFlagNames are the kubectl flags diagnose and serve take; they fill
// the `kubernetes` section of the configuration, over the file.
var kubeFlagNames = []string{"kubeconfig", "context", "cluster", "user", "namespace", "as", "as-group", "request-timeout"}

// kubeFlags are kubectl's flags of the same names and forms (-n,
// repeatable --as-group, --request-timeout in kubectl's syntax). They are
// bound here rather than through k8s.io/cli-runtime, whose resource
// builder (kustomize included) would come with them: 25 MB more resident
// memory in every run, for eight flags.
type kubeFlags struct {
	KubeConfig, Context, ClusterName, AuthInfoName, Namespace, Impersonate, Timeout string
	ImpersonateGroup                                                                []string
}

func (k *kubeFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&k.KubeConfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster; or kubernetes.kubeconfig)")
	fl.StringVar(&k.Context, "context", "", "kubeconfig context (default: the current context, or kubernetes.context)")
	fl.StringVar(&k.ClusterName, "cluster", "", "The name of the kubeconfig cluster to use")
	fl.StringVar(&k.AuthInfoName, "user", "", "The name of the kubeconfig user to use")
	fl.StringVarP(&k.Namespace, "namespace", "n", "", "read pods, DaemonSets, Deployments and events of this namespace only (default: all); cluster-scoped checks are unchanged")
	fl.StringVar(&k.Impersonate, "as", "", "Username to impersonate for the operation. User could be a regular user or a service account in a namespace.")
	fl.StringArrayVar(&k.ImpersonateGroup, "as-group", nil, "Group to impersonate for the operation, this flag can be repeated to specify multiple groups.")
	fl.StringVar(&k.Timeout, "request-timeout", "", "deadline of each Kubernetes API request, like 30s (default 30s, or kubernetes.requestTimeout)")
}

// rawConfig reads the kubeconfig the flags name, as kubectl would, for
// shell completion.
func (k *kubeFlags) rawConfig() (clientcmdapi.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.KubeConfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).RawConfig()
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "configuration file (YAML, strict); see README 'Configuration'")
	f.kube.addFlags(fl)
	fl.DurationVar(&f.checkTimeout, "check-timeout", 0, "deadline of each check (default 30s, or runner.checkTimeout)")
	fl.DurationVar(&f.sourceTimeout, "source-timeout", 0, "deadline of gathering each source (default 60s, or runner.sourceTimeout)")
	kubeconfig := func(pick func(*clientcmdapi.Config) []string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			raw, err := f.kube.rawConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names := pick(&raw)
			sort.Strings(names)
			return names, cobra.ShellCompDirectiveNoFileComp
		}
	}
	_ = cmd.RegisterFlagCompletionFunc("context", kubeconfig(func(c *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(c.Contexts)) }))
	_ = cmd.RegisterFlagCompletionFunc("cluster", kubeconfig(func(c *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(c.Clusters)) }))
	_ = cmd.RegisterFlagCompletionFunc("user", kubeconfig(func(c *clientcmdapi.Config) []string { return slices.Collect(maps.Keys(c.AuthInfos)) }))
	_ = cmd.RegisterFlagCompletionFunc("namespace", kubeconfig(func(c *clientcmdapi.Config) []string {
		// The namespaces the kubeconfig's contexts name: completion asks
		// no server.
		seen := map[string]bool{}
		for _, x := range c.Contexts {
			if x.Namespace != "" {
				seen[x.Namespace] = true
			}
		}
		return slices.Collect(maps.Keys(seen))
	}))
}

// kubeFlagsSet names the kubectl flags given on the command line.
func (f *sourceFlags) kubeFlagsSet(cmd *cobra.Command) []string {
	var set []string
	for _, n := range kubeFlagNames {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	return set
}

// requestTimeout reads --request-timeout as kubectl does: a duration with
// a unit, or a bare number of seconds. Zero, which kubectl reads as "no
// deadline", is refused: every request here has one.
func (f *sourceFlags) requestTimeout() (time.Duration, error) {
	v := strings.TrimSpace(f.kube.Timeout)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseUint(v, 10, 31)
		if nerr != nil {
			return 0, usageErr("--request-timeout %q: want a duration like 30s", v)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, usageErr("--request-timeout %q: want a positive duration like 30s (every request has a deadline)", v)
	}
	return d, nil
}

// checkDurations refuses a zero or negative deadline given as a flag
// (not giving the flag leaves the configured or default value).
func (f *sourceFlags) checkDurations(cmd *cobra.Command) error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"check-timeout", f.checkTimeout}, {"source-timeout", f.sourceTimeout}} {
		if cmd.Flags().Changed(d.flag) && d.v <= 0 {
			return usageErr("--%s %s: want a positive duration like 30s", d.flag, d.v)
		}
	}
	return nil
}

// load reads the config file and applies the flags over it.
func (f *sourceFlags) load() (*config.Config, error) {
	rt, err := f.requestTimeout()
	if err != nil {
		return nil, err
	}
	k := f.kube
	cfg, err := app.Load(f.configPath, app.Overrides{Kubeconfig: k.KubeConfig, Context: k.Context,
		Cluster: k.ClusterName, User: k.AuthInfoName, Namespace: k.Namespace, As: k.Impersonate,
		AsGroups: k.ImpersonateGroup, RequestTimeout: rt,
		CheckTimeout: f.checkTimeout, SourceTimeout: f.sourceTimeout})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return cfg, nil
}

// runnerFor builds the providers a configuration asks for. For one
// `diagnose` run the BGP observer is started and stopped inside the run;
// under `serve` (daemon) it keeps its sessions up until the runner is
// closed. A provider that cannot be built (kubeconfig missing, malformed) is
// a usage error, reported before anything runs.
func runnerFor(cfg *config.Config, daemon bool) (*diag.Runner, error) {
	tuneGC(daemon)
	r, err := app.NewRunner(cfg, diag.Env{Log: slog.Default(), Daemon: daemon})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return r, nil
}

// tuneGC collects more often than Go's default (GOGC=100, which lets the
// heap grow to twice what is live) unless GOGC is set. A one-shot run's
// live heap is small (compact pods) and what it allocates most, decoded
// list pages, is garbage a page later: GOGC=25 keeps its peak RSS close to
// what the lists cost alone, for a few percent more CPU. The daemon's live
// heap is its watch cache, steady between runs, and a Diagnose answered
// from it allocates little (reused results are shared, not copied):
// daemonGOGC.
func tuneGC(daemon bool) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	if daemon {
		debug.SetGCPercent(daemonGOGC)
	} else {
		debug.SetGCPercent(oneShotGOGC)
	}
}

// The garbage collector's targets unless GOGC is set: the heap may grow
// this many percent above what is live. At 150,000 pods, serve's steady
// RSS is 146–151 MB at 50 and 140 MB at 40, with Diagnose from the cache
// at p99 31–45 and 36 ms.
const (
	daemonGOGC  = 40
	oneShotGOGC = 25
)

func allChecks() []diag.Check { return app.Checks() }
