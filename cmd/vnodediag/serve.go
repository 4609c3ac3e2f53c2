package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/daemon"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/server"
)

type serveFlags struct {
	sourceFlags
	listen        string
	shutdownGrace time.Duration
}

func newServe() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: periodic runs, gRPC DiagnosticsService, health and reflection",
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
one stays in force.`,
		Example: `  vnodediag serve --config /etc/vnodediag/config.yaml
  grpcurl -plaintext 127.0.0.1:7443 list
  grpcurl -plaintext 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/GetLatestReport
  grpcurl -plaintext -d '{"only":["k8s"],"fresh":true}' 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/Diagnose
  kill -HUP $(pidof vnodediag)   # reload the configuration`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:7443", "gRPC listen address")
	cmd.Flags().DurationVar(&f.shutdownGrace, "shutdown-grace", 30*time.Second, "time the daemon gets to stop on SIGTERM: running calls finish, then BGP sessions are closed")
	return cmd
}

// The watch cache of the Kubernetes source is a warm source the daemon
// only reads, refreshes when asked and asks for its health.
var (
	_ daemon.Refresher      = (*kube.CachedProvider)(nil)
	_ daemon.HealthReporter = (*kube.CachedProvider)(nil)
)

// daemonOptions are the daemon's options for a configuration and its runner.
func daemonOptions(cfg *config.Config, r *diag.Runner, log *slog.Logger) daemon.Options {
	o := daemon.Options{Checks: allChecks(), Runner: r, Only: cfg.Runner.Only, Skip: cfg.Runner.Skip, Log: log}
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
	log := slog.Default()
	d, err := daemon.New(daemonOptions(cfg, r, log))
	if err != nil {
		lis.Close()
		return usageErr("%v", err)
	}
	d.Start()
	defer d.Abort()
	defer d.Stop()
	gs := server.New(&server.Service{Checks: allChecks(), Runner: r, Log: log, Daemon: d})

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	dc := d.Config()
	log.Warn("serving", "address", lis.Addr().String(), "checks", len(allChecks()), "interval", dc.Interval.D())
	fmt.Fprintf(cmd.ErrOrStderr(), "vnodediag: serving gRPC on %s\n", lis.Addr())

	for done := false; !done; {
		select {
		case err := <-errc:
			return &exitError{code: exitSoftware, err: fmt.Errorf("grpc server: %w", err)}
		case <-ctx.Done():
			done = true
		case <-hup:
			if f.configPath == "" {
				d.NoteReload(fmt.Errorf("SIGHUP: serve runs without --config; there is no file to reload"))
				continue
			}
			if next, nr, err := reload(f, cfg, r, d, log); err == nil {
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

// reload loads the configuration file again through the same loader and
// flags, builds what changed and hands it to the daemon. Any failure keeps
// the old configuration, is logged and counted.
func reload(f *serveFlags, cur *config.Config, r *diag.Runner, d *daemon.Daemon, log *slog.Logger) (*config.Config, *diag.Runner, error) {
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
	if err := d.Reload(daemonOptions(next, nr, log)); err != nil {
		(&diag.Runner{Providers: built}).Close()
		return nil, nil, err
	}
	(&diag.Runner{Providers: replaced}).Close()
	return next, nr, nil
}
