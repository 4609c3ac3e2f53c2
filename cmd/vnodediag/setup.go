package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
)

// sourceFlags are the flags shared by diagnose and serve that build sources.
type sourceFlags struct {
	configPath    string
	kubeconfig    string
	kubeContext   string
	checkTimeout  time.Duration
	sourceTimeout time.Duration
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "configuration file (YAML, strict); see README 'Configuration'")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&f.kubeContext, "context", "", "kubeconfig context (default: current context)")
	fl.DurationVar(&f.checkTimeout, "check-timeout", 0, "deadline of each check (default 30s, or runner.checkTimeout)")
	fl.DurationVar(&f.sourceTimeout, "source-timeout", 0, "deadline of gathering each source (default 60s, or runner.sourceTimeout)")
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
	cfg, err := app.Load(f.configPath, app.Overrides{Kubeconfig: f.kubeconfig, Context: f.kubeContext,
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
// heap is its watch cache, steady between runs: GOGC=50.
func tuneGC(daemon bool) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	if daemon {
		debug.SetGCPercent(50)
	} else {
		debug.SetGCPercent(25)
	}
}

func allChecks() []diag.Check { return app.Checks() }
