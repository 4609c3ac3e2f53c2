package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// onTerminal runs the binary with stderr (and stdout when both is set) on
// a pseudo-terminal of cols columns, as a user's shell would.
type onTerminal struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	term   bytes.Buffer // what the terminal received
	done   chan struct{}
	read   chan struct{}
}

func startOnTerminal(t *testing.T, cols uint16, both bool, env []string, args ...string) *onTerminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: cols}); err != nil {
		t.Fatal(err)
	}
	o := &onTerminal{cmd: exec.Command(binPath, args...), done: make(chan struct{}), read: make(chan struct{})}
	o.cmd.Env = append(append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG=", "TERM=xterm"), env...)
	o.cmd.Stderr = tty
	o.cmd.Stdout = &o.stdout
	if both {
		o.cmd.Stdout = tty
	}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	go func() {
		defer close(o.read)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			o.mu.Lock()
			o.term.Write(buf[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { _ = o.cmd.Wait(); close(o.done) }()
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			_ = o.cmd.Process.Kill()
			<-o.done
		}
		ptmx.Close()
		<-o.read
	})
	return o
}

// wait waits for the exit (killing the process after limit) and for the
// terminal to be drained, and returns the exit code and what the terminal got.
func (o *onTerminal) wait(t *testing.T, limit time.Duration) (int, string) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(limit):
		_ = o.cmd.Process.Kill()
		<-o.done
		t.Errorf("still running after %s; killed", limit)
	}
	select {
	case <-o.read:
	case <-time.After(5 * time.Second):
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cmd.ProcessState.ExitCode(), o.term.String()
}

func (o *onTerminal) seen(s string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Contains(o.term.String(), s)
}

// On a terminal, diagnose shows each source while it gathers (here the
// BGP observer waiting for a mute peer and the kube source waiting for a
// mute API server), erases the lines, and on Ctrl-C says "interrupted",
// reports what finished and exits 130. The report on stdout has no
// terminal codes.
func TestProgressOnTerminalAndInterrupt(t *testing.T) {
	cfgs := hungConfigs(t)
	o := startOnTerminal(t, 100, false, nil, "diagnose", "--config", cfgs["all"], "-o", "json", "--timeout", "5m")
	deadline := time.Now().Add(20 * time.Second)
	for !o.seen("hung: Active") && !o.seen("hung: Connect") && !o.seen("hung: Opensent") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // one more redraw of the seconds counter
	_ = o.cmd.Process.Signal(syscall.SIGINT)
	code, term := o.wait(t, 20*time.Second)
	if code != 130 {
		t.Errorf("exit %d, want 130; terminal: %q", code, term)
	}
	for _, want := range []string{"\x1b[2K… bgp", "… kube", "gathering", "vnodediag: interrupted; reporting what finished"} {
		if !strings.Contains(term, want) {
			t.Errorf("terminal lacks %q:\n%q", want, term)
		}
	}
	// The live lines are erased before the interrupt notice.
	i := strings.LastIndex(term, "\x1b[J")
	if j := strings.Index(term, "vnodediag: interrupted"); i < 0 || j < i {
		t.Errorf("progress not erased before the notice: %q", term)
	}
	if strings.Contains(o.stdout.String(), "\x1b") || !strings.Contains(o.stdout.String(), `"results"`) {
		t.Errorf("stdout is not the plain JSON report: %q", o.stdout.String())
	}
}

// --progress=never on a terminal, and auto on a pipe, draw nothing.
func TestProgressOff(t *testing.T) {
	cfgs := hungConfigs(t)
	o := startOnTerminal(t, 100, false, nil, "diagnose", "--config", cfgs["dns"], "-o", "json", "--timeout", "2s", "--progress", "never")
	if _, term := o.wait(t, 20*time.Second); strings.Contains(term, "\x1b[") {
		t.Errorf("--progress=never drew: %q", term)
	}
	_, stderr, _ := runBin(t, nil, "diagnose", "--config", cfgs["dns"], "-o", "json", "--timeout", "2s")
	if strings.Contains(stderr, "\x1b[") {
		t.Errorf("auto drew on a pipe: %q", stderr)
	}
}

// NO_COLOR turns the table's colours off on a terminal; --color=always
// still wins.
func TestNoColor(t *testing.T) {
	kc := unreachableKubeconfig(t)
	args := []string{"diagnose", "--kubeconfig", kc, "--only", "k8s.podcidr-assigned", "--request-timeout", "1", "--progress", "never"}
	o := startOnTerminal(t, 100, true, []string{"NO_COLOR=1"}, args...)
	if _, term := o.wait(t, 30*time.Second); strings.Contains(term, "\x1b[") || !strings.Contains(term, "ERROR") {
		t.Errorf("NO_COLOR: %q", term)
	}
	o = startOnTerminal(t, 100, true, nil, args...)
	if _, term := o.wait(t, 30*time.Second); !strings.Contains(term, "\x1b[35;1mERROR") {
		t.Errorf("no colour on a terminal without NO_COLOR: %q", term)
	}
	o = startOnTerminal(t, 100, true, []string{"NO_COLOR=1"}, append(args, "--color", "always")...)
	if _, term := o.wait(t, 30*time.Second); !strings.Contains(term, "\x1b[35;1mERROR") {
		t.Errorf("--color=always under NO_COLOR: %q", term)
	}
}

// `checks` cuts titles to the terminal's width, and prints YAML and JSON.
func TestChecksWidthAndFormats(t *testing.T) {
	o := startOnTerminal(t, 70, true, nil, "checks")
	code, term := o.wait(t, 30*time.Second)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, term)
	}
	for _, line := range strings.Split(strings.TrimRight(term, "\r\n"), "\r\n") {
		if n := len([]rune(line)); n > 70 {
			t.Errorf("line of %d columns on a 70-column terminal: %q", n, line)
		}
	}
	out, _, code := runBin(t, nil, "checks", "-o", "yaml")
	if code != 0 || !strings.HasPrefix(out, "checks:\n- id: ") {
		t.Errorf("checks -o yaml: exit %d\n%s", code, out)
	}
	out, _, _ = runBin(t, nil, "checks")
	if !strings.Contains(out, "Cloud prefixes, 100.64.0.0/10 and the ECS nodes' podCIDRs are learned on-prem") {
		t.Errorf("a pipe gets titles cut:\n%s", out)
	}
}

// `config example` is a file `config validate` and diagnose accept.
func TestConfigExampleValidates(t *testing.T) {
	ex, _, code := runBin(t, nil, "config", "example")
	if code != 0 || !strings.Contains(ex, "\nbgp:") {
		t.Fatalf("config example: exit %d\n%s", code, ex)
	}
	path := writeFile(t, "example.yaml", ex)
	out, stderr, code := runBin(t, nil, "config", "validate", "-c", path)
	if code != 0 || !strings.Contains(out, "valid; sections: kubernetes, bgp, routing, host, dns, agent, cloud") {
		t.Errorf("validate the example: exit %d %s %s", code, out, stderr)
	}
	bad := writeFile(t, "bad.yaml", "kubernetes:\n  namespace: Not_A_Namespace\n")
	_, stderr, code = runBin(t, nil, "config", "validate", "-c", bad)
	if code != 64 || !strings.Contains(stderr, `kubernetes: namespace: "Not_A_Namespace" is not a namespace name`) {
		t.Errorf("validate a bad file: exit %d %s", code, stderr)
	}
}

// Usage errors of the Kubernetes flags and the progress flag.
func TestKubeFlagUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"diagnose", "--server", "127.0.0.1:7443", "-n", "x", "--context", "prod"}, "vnodediag: --server runs on the daemon's configuration; --context, --namespace cannot apply to it\n"},
		{[]string{"diagnose", "--request-timeout", "0"}, `vnodediag: --request-timeout "0": want a positive duration like 30s (every request has a deadline)` + "\n"},
		{[]string{"diagnose", "--request-timeout", "soon"}, `vnodediag: --request-timeout "soon": want a duration like 30s` + "\n"},
		{[]string{"diagnose", "--progress", "sometimes"}, `vnodediag: --progress "sometimes": want auto, always or never` + "\n"},
		{[]string{"diagnose", "--kubeconfig", unreachableKubeconfig(t), "--context", "nope"}, `context "nope"`},
		{[]string{"diagnose", "--only", "k8s.podcidr-asigned"}, `(did you mean "k8s.podcidr-assigned" for "k8s.podcidr-asigned"?)`},
	} {
		_, stderr, code := runBin(t, nil, tc.args...)
		if code != 64 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 64 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
