package vnodelab

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/vnodediag/vnodediag/diag/agent/probe"
)

// childEnv marks a test binary started as the lab's agent container.
const childEnv = "VNODELAB_AGENT_CHILD"

// SelfExec runs the agent image as the current test binary: call
// RunAgentIfChild first thing in that package's TestMain. The child is
// `vnodediag agent` without the cobra layer: the same flags, the same
// library (probe), a real process in the namespace.
func SelfExec(string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return []string{"/usr/bin/env", childEnv + "=1", self}, nil
}

// BinaryExec runs the agent image as a vnodediag binary (make demo).
func BinaryExec(bin string) Exec {
	return func(string) ([]string, error) { return []string{bin}, nil }
}

// RunAgentIfChild runs the agent and exits when this process was started
// by SelfExec; otherwise it returns at once.
func RunAgentIfChild() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	os.Exit(agentMain(os.Args[1:]))
}

func agentMain(args []string) int {
	if len(args) == 0 || args[0] != "agent" {
		fmt.Fprintln(os.Stderr, "vnodelab agent: want `agent` and its flags, got", args)
		return 64
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	config := fs.String("config", "", "")
	listen := fs.String("listen", fmt.Sprintf(":%d", probe.DefaultPort), "")
	logFormat := fs.String("log-format", "text", "")
	cert, key, clientCA := fs.String("tls-cert", "", ""), fs.String("tls-key", "", ""), fs.String("tls-client-ca", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 64
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	if *logFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	cfg, err := probe.Load(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64
	}
	creds, err := probe.ServerTLS(*cert, *key, *clientCA)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64
	}
	a, err := probe.New(cfg, probe.Options{Out: os.Stdout, Log: slog.New(h), Identity: probe.IdentityFromEnv()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 64
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Serve(ctx, lis, creds); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 70
	}
	return 0
}
