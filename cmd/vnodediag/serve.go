package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

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
	return err == nil && ip.IsLoopback()
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
		Short: "Run the daemon: gRPC DiagnosticsService, health and reflection",
		Long: `Run the long-running daemon. Support tools call DiagnosticsService.Diagnose
and ListChecks over gRPC; the standard grpc.health.v1 service and server
reflection are on the same port, so grpcurl works without .proto files.
SIGTERM or SIGINT drains running calls, then stops.

The default --listen is loopback. A non-loopback address needs TLS
(--tls-cert-file/--tls-key-file, reloaded when they change), best with
caller authentication (--client-ca-file for mTLS, --token-file for a bearer
token; health checks need neither); plaintext there needs --insecure-listen.
--metrics-address serves Prometheus metrics, --web-config-file gives that
listener TLS and basic auth (the exporter-toolkit web configuration).`,
		Example: `  # loopback, plaintext: for grpcurl and diagnose --server on this host
  vnodediag serve --config /etc/vnodediag/config.yaml
  grpcurl -plaintext 127.0.0.1:7443 list
  grpcurl -plaintext -d '{"only":["k8s"]}' 127.0.0.1:7443 vnodediag.v1.DiagnosticsService/Diagnose

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
	r, err := runnerFor(cfg, true)
	if err != nil {
		lis.Close()
		return err
	}
	defer r.Close()
	var runner server.Runner = r
	errc := make(chan error, 2)
	if f.metricsAddress != "" {
		m := metrics.New()
		for i, p := range r.Providers {
			r.Providers[i] = m.Tap(p)
		}
		runner = m.Wrap(r)
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
		fmt.Fprintf(cmd.ErrOrStderr(), "vnodediag: serving metrics on %s\n", ep.Addr())
	}
	gs := server.New(&server.Service{Checks: allChecks(), Runner: runner, Log: log}, secOpts...)

	go func() {
		if err := gs.Serve(lis); err != nil {
			errc <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	log.Warn("serving", "address", lis.Addr().String(), "checks", len(allChecks()), "tls", f.tlsCertFile != "",
		"client_ca", f.clientCAFile != "", "token", f.tokenFile != "")
	fmt.Fprintf(cmd.ErrOrStderr(), "vnodediag: serving gRPC on %s\n", lis.Addr())

	select {
	case err := <-errc:
		gs.Stop()
		return &exitError{code: exitSoftware, err: err}
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
