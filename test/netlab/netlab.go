// Package netlab makes throwaway test hosts for real-peer tests: a network
// namespace joined to the test's own (root) namespace by a veth pair, with
// daemons (BIRD, FRR, unbound, dnsmasq) started inside it and stopped by PID.
// Names and addresses are unique per run so parallel test packages and
// leftovers of a killed run never collide. Needs root (ip netns, veth).
package netlab

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Host is a network namespace with one veth link to the root namespace.
type Host struct {
	// Name of the namespace (vnd-<id>-<suffix>).
	Name string
	// HostAddr is the address inside the namespace; RootAddr the root side.
	HostAddr netip.Addr
	RootAddr netip.Addr
	// Dir is a per-host directory for configs, sockets, logs and pidfiles.
	Dir string

	rootIf string
	mu     sync.Mutex
	pids   []int
}

var (
	runID = randomID()
	seqMu sync.Mutex
	seq   int
)

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Available reports why real-network tests cannot run here ("" when they can).
func Available() string {
	if os.Geteuid() != 0 {
		return "needs root for ip netns and veth"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2 (ip) not installed"
	}
	return ""
}

// NewHost creates a namespace and a veth link whose /30 is the first one in
// 10.254.0.0/16 that no interface of the root namespace uses. Allocation
// holds a lock file until the address is assigned, so test processes
// running at once never pick the same /30.
func NewHost(suffix string) (*Host, error) {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	unlock, err := lockAllocation()
	if err != nil {
		return nil, err
	}
	defer unlock()
	base, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	h := &Host{
		Name:     fmt.Sprintf("vnd-%s-%d%s", runID, n, suffix),
		RootAddr: base.Next(),
		HostAddr: base.Next().Next(),
		rootIf:   fmt.Sprintf("vd%s%dr", runID, n),
	}
	if len(h.rootIf) > 15 {
		h.rootIf = h.rootIf[:15]
	}
	nsIf := strings.TrimSuffix(h.rootIf, "r") + "n"
	dir, err := os.MkdirTemp("", h.Name+"-")
	if err != nil {
		return nil, err
	}
	h.Dir = dir
	steps := [][]string{
		{"netns", "add", h.Name},
		{"link", "add", h.rootIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", h.Name},
		{"addr", "add", h.RootAddr.String() + "/30", "dev", h.rootIf},
		{"link", "set", h.rootIf, "up"},
		{"-n", h.Name, "addr", "add", h.HostAddr.String() + "/30", "dev", nsIf},
		{"-n", h.Name, "link", "set", "lo", "up"},
		{"-n", h.Name, "link", "set", nsIf, "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			h.Close()
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	return h, nil
}

// lockAllocation takes the machine-wide lock that serialises /30 choices.
func lockAllocation() (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "vnodediag-netlab.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

var labNet = netip.MustParsePrefix("10.254.0.0/16")

// freeSubnet returns the base of a /30 in labNet that no root-namespace
// address lies in.
func freeSubnet() (netip.Addr, error) {
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").Output()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ip addr show: %w", err)
	}
	used := map[netip.Addr]bool{}
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil && labNet.Contains(p.Addr()) {
			b := p.Addr().As4()
			b[3] &^= 3
			used[netip.AddrFrom4(b)] = true
		}
	}
	a := labNet.Addr()
	for i := 0; i < 1<<14; i++ {
		if !used[a] {
			return a, nil
		}
		for k := 0; k < 4; k++ {
			a = a.Next()
		}
	}
	return netip.Addr{}, fmt.Errorf("no free /30 left in %s", labNet)
}

// NewHostT creates a host for one test and removes it at the end; the test
// is skipped when the machine cannot make namespaces.
func NewHostT(t testing.TB, suffix string) *Host {
	t.Helper()
	if why := Available(); why != "" {
		t.Skipf("netlab: %s", why)
	}
	h, err := NewHost(suffix)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// Path returns a file name inside the host's directory.
func (h *Host) Path(name string) string { return filepath.Join(h.Dir, name) }

// Command returns a command that runs inside the namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (h *Host) Run(name string, args ...string) (string, error) {
	out, err := h.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// StartDaemon runs a daemon in the foreground inside the namespace (use the
// daemon's no-fork flag) and remembers its PID for Close.
func (h *Host) StartDaemon(logName, name string, args ...string) (int, error) {
	cmd := h.Command(name, args...)
	logf, err := os.Create(h.Path(logName))
	if err != nil {
		return 0, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("start %s in %s: %w", name, h.Name, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	h.mu.Lock()
	h.pids = append(h.pids, cmd.Process.Pid)
	h.mu.Unlock()
	return cmd.Process.Pid, nil
}

// TrackPIDFile remembers the PID a forking daemon wrote, for Close.
func (h *Host) TrackPIDFile(path string, wait time.Duration) (int, error) {
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				h.mu.Lock()
				h.pids = append(h.pids, pid)
				h.mu.Unlock()
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pid in %s after %s", path, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops one process (SIGTERM, then SIGKILL after 3 s) and waits for it.
func Kill(pid int) {
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 150; i++ {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Close kills the host's processes by PID and deletes the namespace (which
// deletes the veth pair) and its directory.
func (h *Host) Close() {
	h.mu.Lock()
	pids := h.pids
	h.pids = nil
	h.mu.Unlock()
	for _, p := range pids {
		Kill(p)
	}
	_ = exec.Command("ip", "link", "del", h.rootIf).Run()
	_ = exec.Command("ip", "netns", "del", h.Name).Run()
	if h.Dir != "" {
		_ = os.RemoveAll(h.Dir)
	}
}

// Link joins two hosts directly with a second veth pair (a /30 in
// 10.253.0.0/16) and routes each host's HostAddr to the other over it, so a
// daemon in a can reach one in b at b.HostAddr, the same address the root
// namespace uses. Everything lives inside the two namespaces: deleting
// either one (Close) removes the link and its routes.
func Link(a, b *Host) error {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	id, _ := hex.DecodeString(runID)
	third := id[0] ^ id[1] ^ id[2]
	base := netip.AddrFrom4([4]byte{10, 253, third, byte((n % 64) * 4)})
	aAddr, bAddr := base.Next(), base.Next().Next()
	ifA := fmt.Sprintf("vl%s%da", runID, n)
	if len(ifA) > 15 {
		ifA = ifA[:15]
	}
	ifB := strings.TrimSuffix(ifA, "a") + "b"
	steps := [][]string{
		{"-n", a.Name, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.Name},
		{"-n", a.Name, "addr", "add", aAddr.String() + "/30", "dev", ifA},
		{"-n", b.Name, "addr", "add", bAddr.String() + "/30", "dev", ifB},
		{"-n", a.Name, "link", "set", ifA, "up"},
		{"-n", b.Name, "link", "set", ifB, "up"},
		{"-n", a.Name, "route", "add", b.HostAddr.String() + "/32", "via", bAddr.String(), "dev", ifA},
		{"-n", b.Name, "route", "add", a.HostAddr.String() + "/32", "via", aAddr.String(), "dev", ifB},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			_ = exec.Command("ip", "-n", a.Name, "link", "del", ifA).Run()
			return fmt.Errorf("link %s and %s: ip %s: %v: %s", a.Name, b.Name, strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}
