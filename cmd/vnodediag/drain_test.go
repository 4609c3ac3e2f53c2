package main

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hungServe starts serve against an API server that accepts and never
// answers, so that a fresh Diagnose of a kube check runs until its
// deadline, and waits for a fresh call of the CLI to be running in it.
func hungServe(t *testing.T, grace time.Duration, callTimeout string) (daemon, call *started) {
	t.Helper()
	cfgs := hungConfigs(t)
	daemon = startBin(t, "serve", "--config", cfgs["kube"], "--kubeconfig", hungKubeconfig(t, cfgs), "--listen", "127.0.0.1:0",
		"--shutdown-grace", grace.String())
	addr := daemon.waitFor(t, regexp.MustCompile(`serving gRPC on (\S+)`))
	call = startBin(t, "diagnose", "--server", addr, "--fresh", "--only", "k8s.providerid-format", "-o", "json", "--progress", "always",
		"--timeout", callTimeout)
	call.waitFor(t, regexp.MustCompile(`(… kube)`))
	return daemon, call
}

// SIGTERM drains: a call running when it comes (a fresh Diagnose held by
// a hung API server, its caller's deadline 4 s away) still gets its
// report, the daemon exits 0 once that call is done, well within the
// grace period, and says it drained nothing by force.
func TestSIGTERMDrainsCalls(t *testing.T) {
	const grace = 20 * time.Second
	daemon, call := hungServe(t, grace, "4s")
	term := time.Now()
	_ = daemon.cmd.Process.Signal(syscall.SIGTERM)
	_, code := call.wait(t, time.Now(), 15*time.Second)
	if !strings.Contains(call.stdout.String(), `"results"`) {
		t.Errorf("the call running at SIGTERM got no report: exit %d, stdout %q, stderr %q", code, call.stdout.String(), call.stderr.String())
	}
	if _, code := daemon.wait(t, time.Now(), grace); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM: %s", code, daemon.stderr.String())
	}
	if daemon.ended.Before(call.ended) {
		t.Errorf("the daemon ended %s before the call it had to drain", call.ended.Sub(daemon.ended))
	}
	if took := daemon.ended.Sub(term); took > grace/2 {
		t.Errorf("the daemon took %s to stop with one 4 s call to drain", took)
	}
	if strings.Contains(daemon.stderr.String(), "cancelling them") {
		t.Errorf("the call was cancelled, not drained: %s", daemon.stderr.String())
	}
}

// Past the grace period the calls still running are cancelled: a fresh
// Diagnose whose caller would wait a minute ends UNAVAILABLE (exit 69)
// soon after the grace period, and the daemon exits 0, saying so.
func TestSIGTERMCancelsPastGrace(t *testing.T) {
	const grace = time.Second
	daemon, call := hungServe(t, grace, "60s")
	term := time.Now()
	_ = daemon.cmd.Process.Signal(syscall.SIGTERM)
	if _, code := daemon.wait(t, time.Now(), grace+10*time.Second); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM: %s", code, daemon.stderr.String())
	}
	if took := daemon.ended.Sub(term); took < grace {
		t.Errorf("the daemon stopped %s after SIGTERM, before its grace period of %s", took, grace)
	}
	if !strings.Contains(daemon.stderr.String(), "calls still running at the end of the grace period; cancelling them") {
		t.Errorf("the daemon does not say it cancelled the call: %s", daemon.stderr.String())
	}
	if _, code := call.wait(t, time.Now(), 10*time.Second); code != 69 {
		t.Errorf("the cancelled call: exit %d, want 69; stderr %q", code, call.stderr.String())
	}
}
