package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vnodediag/vnodediag/diag/agent/probe"
)

type agentFlags struct {
	config                     string
	listen                     string
	tlsCert, tlsKey, tlsClient string
	once                       bool
}

func newAgent() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the cloud-side agent (in a pod on a VNode): probes from inside the VPC",
		Long: `Run the cloud-side agent. Deployed by the operator on the VNodes
(deploy/agent), it runs the probe plan of its configuration every interval:
DNS queries through the pod's resolv.conf, the VPC DNS and the on-prem DNS,
TCP connects to on-prem targets, the pod's interfaces, routes and MTU, and the
ECI metadata. Each round is written to stdout as one JSON line (vnodediag reads
it through pods/log) and ProbeService serves it on --listen (vnodediag dials it
over the leased line). It only queries and connects; it writes nothing.`,
		Example: `  vnodediag agent --config /etc/vnodediag-agent/plan.yaml --listen $(POD_IP):7444
  vnodediag agent --config plan.yaml --once | jq .connects`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "probe plan file (YAML, strict); required")
	fl.StringVar(&f.listen, "listen", fmt.Sprintf(":%d", probe.DefaultPort), "ProbeService listen address; empty serves nothing")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate of ProbeService")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS key of ProbeService")
	fl.StringVar(&f.tlsClient, "tls-client-ca", "", "admit only clients with a certificate signed by this CA (mutual TLS)")
	fl.BoolVar(&f.once, "once", false, "run one round, print it and exit (serves nothing)")
	return cmd
}

func runAgent(cmd *cobra.Command, f *agentFlags) error {
	if f.config == "" {
		return usageErr("agent: --config is required")
	}
	cfg, err := probe.Load(f.config)
	if err != nil {
		return usageErr("%v", err)
	}
	creds, err := probe.ServerTLS(f.tlsCert, f.tlsKey, f.tlsClient)
	if err != nil {
		return usageErr("agent: %v", err)
	}
	a, err := probe.New(cfg, probe.Options{Out: cmd.OutOrStdout(), Log: slog.Default(), Identity: probe.IdentityFromEnv()})
	if err != nil {
		return usageErr("%v", err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.once {
		if err := a.RunOnce(ctx); err != nil {
			return &exitError{code: exitSoftware, err: err}
		}
		return nil
	}
	var lis net.Listener
	if f.listen != "" {
		if lis, err = net.Listen("tcp", f.listen); err != nil {
			return usageErr("--listen %s: %v", f.listen, err)
		}
	}
	if err := a.Serve(ctx, lis, creds); err != nil {
		return &exitError{code: exitSoftware, err: err}
	}
	return nil
}
