package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag/diagtest"
)

// proc is a vnodediag process whose output is read while it runs.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr diagtest.SyncBuffer
	done           chan struct{}
	ended          time.Time
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG=")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); p.ended = time.Now(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitFor waits until the process's stderr matches re (at most 20 s) and
// returns the match's first group.
func (p *proc) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case <-p.done:
			t.Fatalf("exited (%s) before %s: %s", p.cmd.ProcessState, re, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in 20 s: %s", re, p.stderr.String())
		}
	}
}

// exit waits for the process to end (at most limit from now) and returns
// its exit code.
func (p *proc) exit(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("still running after %s: %s", limit, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// hungServe starts serve against an API server that accepts and never
// answers, so that a fresh Diagnose of a kube check runs until its
// deadline, and waits for a fresh call of the CLI to be running in it.
func hungServe(t *testing.T, grace time.Duration, callTimeout string) (daemon, call *proc) {
	t.Helper()
	cfgs := hungConfigs(t)
	daemon = startProc(t, "serve", "--config", cfgs["kube"], "--kubeconfig", hungKubeconfig(t, cfgs), "--listen", "127.0.0.1:0",
		"--shutdown-grace", grace.String())
	addr := daemon.waitFor(t, regexp.MustCompile(`serving gRPC on (\S+)`))
	call = startProc(t, "diagnose", "--server", addr, "--fresh", "--only", "k8s.providerid-format", "-o", "json", "--progress", "always",
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
	code := call.exit(t, 15*time.Second)
	if !strings.Contains(call.stdout.String(), `"results"`) {
		t.Errorf("the call running at SIGTERM got no report: exit %d, stdout %q, stderr %q", code, call.stdout.String(), call.stderr.String())
	}
	if code := daemon.exit(t, grace); code != 0 {
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
	if code := daemon.exit(t, grace+10*time.Second); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM: %s", code, daemon.stderr.String())
	}
	if took := daemon.ended.Sub(term); took < grace {
		t.Errorf("the daemon stopped %s after SIGTERM, before its grace period of %s", took, grace)
	}
	if !strings.Contains(daemon.stderr.String(), "calls still running at the end of the grace period; cancelling them") {
		t.Errorf("the daemon does not say it cancelled the call: %s", daemon.stderr.String())
	}
	if code := call.exit(t, 10*time.Second); code != 69 {
		t.Errorf("the cancelled call: exit %d, want 69; stderr %q", code, call.stderr.String())
	}
}
