package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/catalog"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/dnsprobe"
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
	cfg, err := config.Load(f.configPath)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if f.kubeconfig != "" || f.kubeContext != "" {
		if cfg.Kubernetes == nil {
			cfg.Kubernetes = &kube.Config{}
		}
		if f.kubeconfig != "" {
			cfg.Kubernetes.Kubeconfig = f.kubeconfig
		}
		if f.kubeContext != "" {
			cfg.Kubernetes.Context = f.kubeContext
		}
	}
	if f.checkTimeout > 0 {
		cfg.Runner.CheckTimeout = config.Duration(f.checkTimeout)
	}
	if f.sourceTimeout > 0 {
		cfg.Runner.SourceTimeout = config.Duration(f.sourceTimeout)
	}
	return cfg, nil
}

// runnerFor builds the providers a configuration asks for, for one
// `diagnose` run: the BGP observer is started and stopped inside each run.
// A configuration error (kubeconfig missing, malformed) is a usage error,
// reported before anything runs.
func runnerFor(cfg *config.Config) (*diag.Runner, error) {
	bgpP, err := bgp.NewProvider(cfg.BGP, slog.Default())
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return runnerWith(cfg, bgpP)
}

// daemonRunnerFor is runnerFor for `serve`: the BGP observer keeps its
// sessions up for the daemon's life (uptime, flaps, last error) and each run
// reads its latest table. stop ends the sessions.
func daemonRunnerFor(ctx context.Context, cfg *config.Config) (*diag.Runner, func(), error) {
	if cfg.BGP == nil {
		r, err := runnerFor(cfg) // its BGP provider SKIPs with the reason
		return r, func() {}, err
	}
	o, err := bgp.NewObserver(cfg.BGP, slog.Default())
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	if err := o.Start(ctx); err != nil {
		return nil, nil, usageErr("bgp observer: %v", err)
	}
	r, err := runnerWith(cfg, o.Provider())
	if err != nil {
		o.Stop()
		return nil, nil, err
	}
	return r, o.Stop, nil
}

func runnerWith(cfg *config.Config, bgpP diag.Provider) (*diag.Runner, error) {
	r := &diag.Runner{
		CheckTimeout:       cfg.Runner.CheckTimeout.D(),
		SourceTimeout:      cfg.Runner.SourceTimeout.D(),
		MaxResultsPerCheck: cfg.Runner.MaxResultsPerCheck,
		MaxReportBytes:     cfg.Runner.MaxReportBytes,
		Identify:           kube.Identify,
		Providers:          []diag.Provider{bgpP},
	}
	if cfg.Kubernetes != nil {
		p, err := kube.NewProvider(*cfg.Kubernetes)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		r.Providers = append(r.Providers, p)
	}
	// A nil section gives a provider that SKIPs its checks with the reason.
	routesP, err := bgp.NewRouteProvider(cfg.Routing)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	r.Providers = append(r.Providers, routesP)
	dnsP, err := dnsprobe.NewProvider(cfg.DNS, slog.Default())
	if err != nil {
		return nil, usageErr("%v", err)
	}
	r.Providers = append(r.Providers, dnsP)
	return r, nil
}

func allChecks() []diag.Check { return catalog.All() }
