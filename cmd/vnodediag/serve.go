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
		Short: "Run the daemon: gRPC DiagnosticsService, health and reflection",
		Long: `Run the long-running daemon. Support tools call DiagnosticsService.Diagnose
and ListChecks over gRPC; the standard grpc.health.v1 service and server
reflection are on the same port, so grpcurl works without .proto files.
SIGTERM or SIGINT drains running calls, then stops.`,
		Example: `  vnodediag serve --config /etc/vnodediag/config.yaml --listen 0.0.0.0:7443
  grpcurl -plaintext 127.0.0.1:7443 list
  grpcurl -plaintext -d '{"only":["k8s"]}' 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/Diagnose`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, f) },
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:7443", "gRPC listen address")
	cmd.Flags().DurationVar(&f.shutdownGrace, "shutdown-grace", 30*time.Second, "time running calls get to finish on SIGTERM")
	return cmd
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
	r, err := runnerFor(cfg, true)
	if err != nil {
		lis.Close()
		return err
	}
	defer r.Close()
	log := slog.Default()
	gs := server.New(&server.Service{Checks: allChecks(), Runner: r, Log: log})

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	log.Warn("serving", "address", lis.Addr().String(), "checks", len(allChecks()))
	fmt.Fprintf(cmd.ErrOrStderr(), "vnodediag: serving gRPC on %s\n", lis.Addr())

	select {
	case err := <-errc:
		return &exitError{code: exitSoftware, err: fmt.Errorf("grpc server: %w", err)}
	case <-ctx.Done():
	}
	log.Warn("shutting down", "grace", f.shutdownGrace)
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(f.shutdownGrace):
		gs.Stop()
	}
	return nil
}
