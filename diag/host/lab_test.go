package host_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/host"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/hostlab"
	"github.com/vnodediag/vnodediag/test/netlab"
)

func gather(t *testing.T, cfg *host.Config) *host.Facts {
	t.Helper()
	p, err := host.NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return diagtest.GatherAs(t, ctx, p, host.Source)
}

func run(t *testing.T, f *host.Facts, id string) []*pb.Result {
	t.Helper()
	return diagtest.Run(t, context.Background(), host.Checks(), id, diag.NewInputs(host.Source.With(f)))
}

func summaries(rs []*pb.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Status.String()+" "+r.Summary)
	}
	return strings.Join(s, "\n")
}

// TestTreeFaults points hostRoot at the demo's node tree, where each host
// check has its fault.
func TestTreeFaults(t *testing.T) {
	dir := t.TempDir()
	if err := hostlab.Write(dir, hostlab.DemoNode("leased0")); err != nil {
		t.Fatal(err)
	}
	f := gather(t, &host.Config{HostRoot: dir, LeasedLineInterface: "leased0", LeasedLineCIDRs: []string{"192.168.0.0/16"}})

	got := run(t, f, host.CheckSysctls)
	if diagtest.StatusNames(got) != "FAIL,FAIL,PASS,FAIL" {
		t.Fatalf("sysctls:\n%s", summaries(got))
	}
	for i, want := range []string{
		"net.ipv4.ip_forward = 0: the node does not forward packets",
		"reverse-path filtering is strict (1) on net.ipv4.conf.leased0.rp_filter",
		"net.ipv4.tcp_tw_recycle is absent",
		"net.ipv4.ip_local_port_range 20000-60999 overlaps the NodePort range 30000-32767: outgoing connections may take ports 30000-32767",
	} {
		if !strings.HasPrefix(got[i].Summary, want) {
			t.Errorf("sysctls[%d]: %q, want %q", i, got[i].Summary, want)
		}
	}
	if got := run(t, f, host.CheckConntrack); diagtest.StatusNames(got) != "FAIL" || !strings.HasPrefix(got[0].Summary, "the conntrack table is 97.0 % full (254312 of 262144)") ||
		!strings.Contains(got[0].Remediation, "conntrack.maxPerCore") {
		t.Errorf("conntrack:\n%s", summaries(got))
	}
	got = run(t, f, host.CheckResolvConf)
	if diagtest.StatusNames(got) != "FAIL" || !strings.HasPrefix(got[0].Summary, "/etc/resolv.conf lists only loopback nameservers (127.0.0.53)") {
		t.Errorf("resolv-conf:\n%s", summaries(got))
	}
	if !hasEvidence(got[0], "systemd-resolved upstream (/run/systemd/resolve/resolv.conf)", "10.0.0.53, 10.0.0.54") {
		t.Errorf("resolv-conf evidence: %s", diagtest.Dump(got))
	}
	got = run(t, f, host.CheckFirewall)
	if diagtest.StatusNames(got) != "WARN" || !strings.HasPrefix(got[0].Summary, "firewalld is running (process 812 named in /run/firewalld.pid)") ||
		!hasEvidence(got[0], "zone drop (/etc/firewalld/zones/drop.xml)", "touches: source 192.168.0.0/16") {
		t.Errorf("firewall: %s", diagtest.Dump(got))
	}
}

func hasEvidence(r *pb.Result, label, substr string) bool {
	for _, e := range r.Evidence {
		if e.Label == label && strings.Contains(e.Observed, substr) {
			return true
		}
	}
	return false
}

// TestTreeGood: a node set up as the FAQ says passes every host check.
func TestTreeGood(t *testing.T) {
	dir := t.TempDir()
	n := hostlab.Node{
		Sysctls: map[string]string{
			"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "2", "net.ipv4.conf.eth1.100.rp_filter": "2",
			"net.ipv4.tcp_tw_recycle": "0", "net.ipv4.ip_local_port_range": "20000 60999", "net.ipv4.ip_local_reserved_ports": "30000-32767",
			"net.netfilter.nf_conntrack_count": "1200", "net.netfilter.nf_conntrack_max": "262144",
		},
		Stub: true, ResolvConf: "nameserver 127.0.0.53\n", Upstream: "nameserver 10.0.0.53\n",
		KubeletConfig: "kind: KubeletConfiguration\nresolvConf: /run/systemd/resolve/resolv.conf\n",
		Firewalld:     &hostlab.Firewalld{},
		UFW:           &hostlab.UFW{Enabled: false},
	}
	if err := hostlab.Write(dir, n); err != nil {
		t.Fatal(err)
	}
	f := gather(t, &host.Config{HostRoot: dir, LeasedLineInterface: "eth1.100"})
	for _, c := range host.Checks() {
		if got := run(t, f, c.ID); diagtest.StatusNames(got) != strings.Repeat("PASS,", len(got))[:5*len(got)-1] {
			t.Errorf("%s:\n%s", c.ID, summaries(got))
		}
	}
	if got := run(t, f, host.CheckResolvConf); got[0].Summary != "/run/systemd/resolve/resolv.conf gives pods the nameservers 10.0.0.53" {
		t.Errorf("resolv-conf: %s", got[0].Summary)
	}
}

// TestHostRootNeverEscapes attacks the hostRoot: links that climb out of it
// or point at absolute paths resolve inside it, as they would on the node,
// so a file outside the tree is never read.
func TestHostRootNeverEscapes(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("nameserver 203.0.113.66\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"relative climb": "../../../../../../outside/secret",
		"absolute":       filepath.Join(outside, "secret"),
		"loop":           "/etc/resolv.conf",
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(name, " ", "-"))
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, "etc/resolv.conf")); err != nil {
				t.Fatal(err)
			}
			f := gather(t, &host.Config{HostRoot: dir})
			if f.EtcResolv.Err == "" || strings.Contains(strings.Join(f.EtcResolv.Nameservers, " "), "203.0.113.66") {
				t.Fatalf("read %+v through a link to %s", f.EtcResolv, target)
			}
			if got := run(t, f, host.CheckResolvConf); diagtest.StatusNames(got) != "FAIL" || !strings.HasPrefix(got[0].Summary, "cannot read /etc/resolv.conf") {
				t.Errorf("%s", summaries(got))
			}
		})
	}
}

// TestHostRootBoundsFiles: a file of 64 MiB costs at most 1 MiB.
func TestHostRootBoundsFiles(t *testing.T) {
	dir := t.TempDir()
	if err := hostlab.Write(dir, hostlab.Node{ResolvConf: "nameserver 10.0.0.53\n"}); err != nil {
		t.Fatal(err)
	}
	big, err := os.OpenFile(filepath.Join(dir, "etc/resolv.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	big.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := gather(t, &host.Config{HostRoot: dir})
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("gather allocated %d MiB reading a 64 MiB resolv.conf", got>>20)
	}
	if len(f.EtcResolv.Nameservers) != 1 {
		t.Errorf("nameservers %v", f.EtcResolv.Nameservers)
	}
}

// labHost is a network namespace with a leased-line interface (one end of a
// veth pair) and the sysctls given, set in its kernel.
func labHost(t *testing.T, kv ...string) *netlab.Host {
	t.Helper()
	h := netlab.NewHostT(t, "hst")
	if _, err := h.Run("ip", "link", "add", "leased0", "type", "veth", "peer", "name", "leased1"); err != nil {
		t.Fatal(err)
	}
	if err := hostlab.SetSysctls(h, kv...); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestNetnsKernelState reads the real kernel's sysctls of two network
// namespaces, one set as the FAQ says and one not, on a thread that has
// entered each.
func TestNetnsKernelState(t *testing.T) {
	good := labHost(t, "net.ipv4.ip_forward", "1", "net.ipv4.conf.all.rp_filter", "0", "net.ipv4.conf.leased0.rp_filter", "2",
		"net.ipv4.ip_local_port_range", "32768 60999")
	bad := labHost(t, "net.ipv4.ip_forward", "0", "net.ipv4.conf.all.rp_filter", "1", "net.ipv4.conf.leased0.rp_filter", "1",
		"net.ipv4.ip_local_port_range", "10000 65000", "net.ipv4.ip_local_reserved_ports", "30000-31000")
	cfg := func(h *netlab.Host) *host.Config {
		return &host.Config{Netns: "/var/run/netns/" + h.Name, LeasedLineInterface: "leased0", NodePortRange: "30000-32767"}
	}
	g := gather(t, cfg(good))
	if got := run(t, g, host.CheckSysctls); diagtest.StatusNames(got) != "PASS,PASS,PASS,PASS" {
		t.Errorf("good namespace:\n%s", summaries(got))
	}
	b := gather(t, cfg(bad))
	got := run(t, b, host.CheckSysctls)
	if diagtest.StatusNames(got) != "FAIL,FAIL,PASS,FAIL" ||
		!strings.HasPrefix(got[1].Summary, "reverse-path filtering is strict (1) on net.ipv4.conf.all.rp_filter, net.ipv4.conf.leased0.rp_filter") ||
		!strings.HasPrefix(got[3].Summary, "net.ipv4.ip_local_port_range 10000-65000 overlaps the NodePort range 30000-32767: outgoing connections may take ports 30000-32767") {
		t.Errorf("bad namespace:\n%s", summaries(got))
	}
	// The namespaces' own conntrack tables are nearly empty.
	if got := run(t, b, host.CheckConntrack); got[0].Status != pb.Status_PASS && got[0].Status != pb.Status_SKIP {
		t.Errorf("conntrack in a fresh namespace: %s", summaries(got))
	}
	// An interface that is not in the namespace.
	c := cfg(good)
	c.LeasedLineInterface = "eth9"
	if got := run(t, gather(t, c), host.CheckSysctls); got[1].Status != pb.Status_FAIL || !strings.Contains(got[1].Summary, "leased-line interface eth9 does not exist on this node") {
		t.Errorf("missing interface:\n%s", summaries(got))
	}
}

// TestNetnsThreadNeverReused attacks the namespace switch: after many
// gathers in a lab namespace, no goroutine of the process runs in it.
func TestNetnsThreadNeverReused(t *testing.T) {
	h := labHost(t)
	own := nsInode(t)
	for i := 0; i < 50; i++ {
		gather(t, &host.Config{Netns: "/var/run/netns/" + h.Name})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong int
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if nsInode(t) != own {
				mu.Lock()
				wrong++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wrong > 0 {
		t.Fatalf("%d goroutines ran in another network namespace after the gathers", wrong)
	}
}

func nsInode(t *testing.T) uint64 {
	fi, err := os.Stat("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestNetnsThatCannotBeEntered fails the source, naming the namespace.
func TestNetnsThatCannotBeEntered(t *testing.T) {
	p, err := host.NewProvider(&host.Config{Netns: "/var/run/netns/vnodediag-does-not-exist"}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Gather(context.Background()); err == nil || !strings.Contains(err.Error(), "host: netns /var/run/netns/vnodediag-does-not-exist") {
		t.Errorf("got %v", err)
	}
}
