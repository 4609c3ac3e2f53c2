package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/metrics"
	"github.com/vnodediag/vnodediag/diag/server"
)

type serveFlags struct {
	sourceFlags
	listen        string
	shutdownGrace time.Duration
	securityFlags
}

// securityFlags are serve's TLS, authentication and metrics flags.
type securityFlags struct {
	tlsCertFile, tlsKeyFile string
	clientCAFile            string
	tokenFile               string
	insecureListen          bool
	metricsAddress          string
	webConfigFile           string
}

func (f *securityFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.tlsCertFile, "tls-cert-file", "", "serve gRPC over TLS with this PEM certificate chain (reloaded when it changes)")
	fl.StringVar(&f.tlsKeyFile, "tls-key-file", "", "the PEM private key of --tls-cert-file (reloaded when it changes)")
	fl.StringVar(&f.clientCAFile, "client-ca-file", "", "require client certificates signed by these PEM CAs (mTLS; with --token-file, a certificate or the token)")
	fl.StringVar(&f.tokenFile, "token-file", "", "require \"authorization: Bearer <token>\" with the token in this file (re-read when it changes); health checks are exempt")
	fl.BoolVar(&f.insecureListen, "insecure-listen", false, "allow a non-loopback --listen without TLS: plaintext and unauthenticated, for a network you trust")
	fl.StringVar(&f.metricsAddress, "metrics-address", "", "serve Prometheus metrics over HTTP on this address (e.g. :9470; default: off)")
	fl.StringVar(&f.webConfigFile, "web-config-file", "", "exporter-toolkit web config for the metrics listener: TLS, client certificates, basic auth")
}

// loopbackListen reports whether a listen address is on loopback only:
// an IP literal that is loopback, or "localhost". An empty host (":7443")
// listens everywhere; any other name may resolve to anything.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	// Unmap: ::ffff:127.0.0.1 is the IPv4 loopback written as IPv6, and
	// the kernel binds it to 127.0.0.1.
	return err == nil && ip.Unmap().IsLoopback()
}

// security checks the flags' combinations and returns the gRPC
// listener's options. A non-loopback plaintext listener needs
// --insecure-listen, and never carries a token.
func (f *serveFlags) security(log *slog.Logger) ([]grpc.ServerOption, error) {
	if (f.tlsCertFile == "") != (f.tlsKeyFile == "") {
		return nil, usageErr("--tls-cert-file and --tls-key-file go together: give both")
	}
	tls := f.tlsCertFile != ""
	if f.clientCAFile != "" && !tls {
		return nil, usageErr("--client-ca-file needs TLS: give --tls-cert-file and --tls-key-file too")
	}
	if !tls && !loopbackListen(f.listen) {
		if f.tokenFile != "" {
			return nil, usageErr("--token-file on the non-loopback --listen %s without TLS: callers would send the token in clear; give --tls-cert-file and --tls-key-file", f.listen)
		}
		if !f.insecureListen {
			return nil, usageErr("--listen %s is not a loopback address and the daemon has no TLS: anyone who can reach it would read the cluster's diagnostics in clear; "+
				"give --tls-cert-file and --tls-key-file (and --client-ca-file or --token-file to authenticate callers), or --insecure-listen to serve plaintext anyway", f.listen)
		}
		log.Warn("serving plaintext gRPC on a non-loopback address without authentication (--insecure-listen)", "address", f.listen)
	}
	if f.webConfigFile != "" && f.metricsAddress == "" {
		return nil, usageErr("--web-config-file configures the metrics listener: give --metrics-address too")
	}
	if err := metrics.ValidateWebConfig(f.webConfigFile); err != nil {
		return nil, usageErr("--web-config-file: %v", err)
	}
	if f.insecureListen && tls {
		return nil, usageErr("--insecure-listen and --tls-cert-file contradict each other: leave out --insecure-listen")
	}
	if tls && f.clientCAFile == "" && f.tokenFile == "" && !loopbackListen(f.listen) {
		log.Warn("TLS without caller authentication: anyone who can reach the daemon may call it; give --client-ca-file or --token-file", "address", f.listen)
	}
	sec := &server.Security{CertFile: f.tlsCertFile, KeyFile: f.tlsKeyFile, ClientCAFile: f.clientCAFile, TokenFile: f.tokenFile, Log: log}
	opts, err := sec.ServerOptions()
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return opts, nil
}

func newServe() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: periodic runs, gRPC DiagnosticsService, health, reflection and metrics",
		Long: `Run the long-running daemon. It keeps every source warm (each regathered
on its own interval, BGP sessions up), runs the configured selection every
daemon.interval (default 60s) and keeps the latest report, a bounded
history and the status of every check. Support tools call
DiagnosticsService over gRPC (Diagnose, DiagnoseStream, GetLatestReport,
WatchReports, ListHistory, ListChecks); grpc.health.v1 answers per source
("vnodediag.source.kube") and overall, and server reflection lets grpcurl
work without .proto files.
SIGTERM or SIGINT ends the watch streams, drains running calls, stops the
BGP sessions with a Cease NOTIFICATION and exits within --shutdown-grace.
SIGHUP reloads the configuration file; a bad one is rejected and the old
one stays in force.

The default --listen is loopback. A non-loopback address needs TLS
(--tls-cert-file/--tls-key-file, reloaded when they change), best with
caller authentication (--client-ca-file for mTLS, --token-file for a bearer
token; health checks need neither); plaintext there needs --insecure-listen.
--metrics-address serves Prometheus metrics, --web-config-file gives that
listener TLS and basic auth (the exporter-toolkit web configuration).`,
		Example: `  # loopback, plaintext: for grpcurl and diagnose --server on this host
  vnodediag serve --config /etc/vnodediag/config.yaml
  grpcurl -plaintext 127.0.0.1:7443 list
  grpcurl -plaintext 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/GetLatestReport
  grpcurl -plaintext -d '{"only":["k8s"],"fresh":true}' 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/Diagnose
  kill -HUP $(pidof vnodediag)   # reload the configuration

  # on the network: TLS, mTLS callers, metrics for Prometheus
  vnodediag serve --config /etc/vnodediag/config.yaml --listen :7443 \
    --tls-cert-file tls.crt --tls-key-file tls.key --client-ca-file clients-ca.crt \
    --metrics-address :9470 --web-config-file web.yml
  grpcurl -cacert ca.crt -cert client.crt -key client.key daemon.example:7443 list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	f.sourceFlags.register(cmd)
	f.securityFlags.register(cmd)
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:7443", "gRPC listen address")
	cmd.Flags().DurationVar(&f.shutdownGrace, "shutdown-grace", 30*time.Second, "time the daemon gets to stop on SIGTERM: running calls finish, then BGP sessions are closed")
	return cmd
}

// The watch cache of the Kubernetes source is a warm source the daemon
// only reads, refreshes when asked and asks for its health.
var (
	_ daemon.Refresher      = (*kube.CachedProvider)(nil)
	_ daemon.HealthReporter = (*kube.CachedProvider)(nil)
	_ daemon.Observer       = (*metrics.Metrics)(nil)
)

// daemonOptions are the daemon's options for a configuration and its runner.
// m, when the metrics listener is on, observes the daemon's runs, refreshes
// and reloads.
func daemonOptions(cfg *config.Config, r *diag.Runner, log *slog.Logger, m *metrics.Metrics) daemon.Options {
	o := daemon.Options{Checks: allChecks(), Runner: r, Only: cfg.Runner.Only, Skip: cfg.Runner.Skip, Log: log,
		AfterFirstRun: debug.FreeOSMemory}
	if m != nil {
		o.Observer = m
	}
	if dc := config.SectionAs[*daemon.Config](cfg, daemon.SectionKey); dc != nil {
		o.Config = *dc
	}
	return o
}

func runServe(cmd *cobra.Command, f *serveFlags) error {
	if err := f.checkDurations(cmd); err != nil {
		return err
	}
	if f.shutdownGrace < 0 {
		return usageErr("--shutdown-grace %s: want a duration of 0 or more", f.shutdownGrace)
	}
	log := slog.Default()
	secOpts, err := f.security(log)
	if err != nil {
		return err
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageErr("--listen %s: %v", f.listen, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	r, err := runnerFor(cfg, true)
	if err != nil {
		lis.Close()
		return err
	}
	// r changes with a reload; the sessions it holds at the end close last,
	// after the calls that read them (BGP: a Cease NOTIFICATION per peer).
	defer func() { r.Close() }()
	errc := make(chan error, 2)
	var m *metrics.Metrics
	if f.metricsAddress != "" {
		m = metrics.New()
		m.TapRunner(r)
		ep, err := metrics.Listen(f.metricsAddress, f.webConfigFile, m.Handler(), log)
		if err != nil {
			lis.Close()
			return usageErr("--metrics-address %s: %v", f.metricsAddress, err)
		}
		go func() {
			if err := ep.Serve(); err != nil {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ep.Shutdown(ctx)
		}()
		log.Warn("serving metrics", "address", ep.Addr().String(), "web_config", f.webConfigFile != "")
		announce(cmd, "metrics", ep.Addr())
	}
	d, err := daemon.New(daemonOptions(cfg, r, log, m))
	if err != nil {
		lis.Close()
		return usageErr("%v", err)
	}
	d.Start()
	defer d.Abort()
	defer d.Stop()
	gs := server.New(&server.Service{Checks: allChecks(), Runner: r, Log: log, Daemon: d}, secOpts...)

	go func() {
		if err := gs.Serve(lis); err != nil {
			errc <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	dc := d.Config()
	log.Warn("serving", "address", lis.Addr().String(), "checks", len(allChecks()), "interval", dc.Interval.D(),
		"tls", f.tlsCertFile != "", "client_ca", f.clientCAFile != "", "token", f.tokenFile != "")
	announce(cmd, "gRPC", lis.Addr())

	for done := false; !done; {
		select {
		case err := <-errc:
			gs.Stop()
			return &exitError{code: exitSoftware, err: err}
		case <-ctx.Done():
			done = true
		case <-hup:
			if f.configPath == "" {
				d.NoteReload(fmt.Errorf("SIGHUP: serve runs without --config; there is no file to reload"))
				continue
			}
			if next, nr, err := reload(f, cfg, r, d, log, m); err == nil {
				cfg, r = next, nr
			}
		}
	}
	end := time.Now().Add(f.shutdownGrace)
	log.Warn("shutting down", "grace", f.shutdownGrace)
	// Watch streams never end by themselves: Stop ends them (UNAVAILABLE),
	// and the periodic runs, so that only calls remain to drain.
	d.Stop()
	drained := make(chan struct{})
	go func() { gs.GracefulStop(); close(drained) }()
	t := time.NewTimer(time.Until(end))
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		log.Warn("calls still running at the end of the grace period; cancelling them")
		gs.Stop()
		d.Abort()
	}
	return nil
}

// announce says where serve listens, whatever --log-level: a line for
// people and scripts ("vnodediag: serving gRPC on 127.0.0.1:7443"), or
// with --log-format json a record of its own ({"msg":"serving gRPC",
// "address":...}), so that every line on stderr parses as JSON.
func announce(cmd *cobra.Command, what string, addr net.Addr) {
	if f := cmd.Flag("log-format"); f != nil && f.Value.String() == "json" {
		recordLogger(cmd.ErrOrStderr()).Warn("serving "+what, "address", addr.String())
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "vnodediag: serving %s on %s\n", what, addr)
}

// reload loads the configuration file again through the same loader and
// flags, builds what changed and hands it to the daemon. Any failure keeps
// the old configuration, is logged and counted.
func reload(f *serveFlags, cur *config.Config, r *diag.Runner, d *daemon.Daemon, log *slog.Logger, m *metrics.Metrics) (*config.Config, *diag.Runner, error) {
	log.Warn("SIGHUP: reloading the configuration", "file", f.configPath)
	next, err := f.load()
	if err != nil {
		d.NoteReload(err)
		return nil, nil, err
	}
	nr, built, replaced, err := app.Rebuild(cur, r, next, diag.Env{Log: slog.Default(), Daemon: true})
	if err != nil {
		d.NoteReload(err)
		return nil, nil, err
	}
	if m != nil {
		m.TapRunner(nr)
	}
	if err := d.Reload(daemonOptions(next, nr, log, m)); err != nil {
		(&diag.Runner{Providers: built}).Close()
		return nil, nil, err
	}
	(&diag.Runner{Providers: replaced}).Close()
	return next, nr, nil
}
