// Package dnslab runs real resolvers for tests, benchmarks and the demo: an
// on-prem unbound and a cloud "PrivateZone" dnsmasq, each in its own network
// namespace (test/netlab), linked directly so that each forwards the other's
// zone to it. The test process, in the root namespace, reaches both. Needs
// root; daemons run in the foreground and are stopped by PID.
package dnslab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// The lab's zones and names.
const (
	OnPremZone  = "corp.example"
	PrivateZone = "svc.cloud.internal"
	// DataZone is a second PrivateZone zone; unbound forwards it only
	// with Options.ForwardDataZone.
	DataZone = "data.cloud.internal"
)

// Records of the lab.
var (
	OnPremA  = map[string]string{"db.corp.example": "10.255.1.10", "ldap.corp.example": "10.255.1.11"}
	PrivateA = map[string]string{"api.svc.cloud.internal": "10.255.2.20", "cache.svc.cloud.internal": "10.255.2.21", "pg.data.cloud.internal": "10.255.3.30"}
)

// BigName has BigCount A records: its answer does not fit a 1232-byte UDP
// reply, so a client must retry over TCP.
const (
	BigName  = "big.corp.example"
	BigCount = 100
)

// Options shape the lab.
type Options struct {
	// NoOnPremForward leaves out unbound's forward-zone for the PrivateZone.
	NoOnPremForward bool
	// NoCloudForward leaves out dnsmasq's server= line for the on-prem zone.
	NoCloudForward bool
	// ForwardDataZone adds a forward-zone for DataZone to unbound.
	ForwardDataZone bool
	// WrongPrivateA makes dnsmasq answer api.svc.cloud.internal with this
	// address instead of the right one.
	WrongPrivateA string
}

// Lab is a running pair of resolvers.
type Lab struct {
	OnPrem, Cloud *netlab.Host
	// OnPremAddr and CloudAddr are the resolvers' host:port.
	OnPremAddr, CloudAddr string
	onPremPID, cloudPID   int
}

// Start starts the lab. Close it when done.
func Start(opts Options) (*Lab, error) {
	if why := netlab.Available(); why != "" {
		return nil, fmt.Errorf("dns lab: %s", why)
	}
	for _, bin := range []string{"unbound", "dnsmasq"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("dns lab: %s not installed", bin)
		}
	}
	l := &Lab{}
	var err error
	if l.OnPrem, err = netlab.NewHost("dnsop"); err != nil {
		return nil, fmt.Errorf("dns lab: %w", err)
	}
	if l.Cloud, err = netlab.NewHost("dnscl"); err != nil {
		l.Close()
		return nil, fmt.Errorf("dns lab: %w", err)
	}
	if err := netlab.Link(l.OnPrem, l.Cloud); err != nil {
		l.Close()
		return nil, fmt.Errorf("dns lab: %w", err)
	}
	// A dead daemon must show as "connection refused" every time: the
	// kernel's ICMP rate limits (per namespace) would otherwise drop some
	// port-unreachable replies when the prober sends a burst to one host.
	for _, h := range []*netlab.Host{l.OnPrem, l.Cloud} {
		if _, err := h.Run("sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv4.icmp_msgs_per_sec=100000", "net.ipv4.icmp_msgs_burst=100000"); err != nil {
			l.Close()
			return nil, fmt.Errorf("dns lab: %w", err)
		}
	}
	l.OnPremAddr = hostPort(l.OnPrem.HostAddr)
	l.CloudAddr = hostPort(l.Cloud.HostAddr)
	if err := l.StartOnPrem(opts); err != nil {
		l.Close()
		return nil, err
	}
	if err := l.StartCloud(opts); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// StartT starts a lab for one test and closes it at the end; the test is
// skipped where namespaces or the daemons are not available.
func StartT(t testing.TB, opts Options) *Lab {
	t.Helper()
	if why := netlab.Available(); why != "" {
		t.Skipf("dnslab: %s", why)
	}
	for _, bin := range []string{"unbound", "dnsmasq"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("dnslab: %s not installed", bin)
		}
	}
	l, err := Start(opts)
	if err != nil {
		t.Fatalf("dnslab: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// Close stops the daemons and removes the namespaces.
func (l *Lab) Close() {
	if l.OnPrem != nil {
		l.OnPrem.Close()
	}
	if l.Cloud != nil {
		l.Cloud.Close()
	}
}

func hostPort(a netip.Addr) string { return netip.AddrPortFrom(a, 53).String() }

// StartOnPrem (re)starts unbound in the on-prem host.
func (l *Lab) StartOnPrem(opts Options) error {
	h := l.OnPrem
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  interface: %s
  port: 53
  access-control: 10.0.0.0/8 allow
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  username: ""
  chroot: ""
  directory: "%s"
  pidfile: "%s"
  use-syslog: no
  logfile: ""
  verbosity: 1
  log-queries: yes
  module-config: "iterator"
  do-not-query-localhost: no
  qname-minimisation: no
  num-threads: 1
  infra-host-ttl: 1
  local-zone: "%s." static
  local-data: "%s. 3600 IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60"
`, h.HostAddr, h.Dir, h.Path("unbound.pid"), OnPremZone, OnPremZone, OnPremZone, OnPremZone)
	for name, ip := range OnPremA {
		fmt.Fprintf(&b, "  local-data: \"%s. 60 IN A %s\"\n", name, ip)
	}
	for i := 0; i < BigCount; i++ {
		fmt.Fprintf(&b, "  local-data: \"%s. 60 IN A 10.255.9.%d\"\n", BigName, i+1)
	}
	for _, z := range []string{PrivateZone, DataZone} {
		fmt.Fprintf(&b, "  domain-insecure: \"%s.\"\n  private-domain: \"%s.\"\n", z, z)
	}
	if !opts.NoOnPremForward {
		fmt.Fprintf(&b, "forward-zone:\n  name: \"%s.\"\n  forward-addr: %s@53\n", PrivateZone, l.Cloud.HostAddr)
	}
	if opts.ForwardDataZone {
		fmt.Fprintf(&b, "forward-zone:\n  name: \"%s.\"\n  forward-addr: %s@53\n", DataZone, l.Cloud.HostAddr)
	}
	b.WriteString("remote-control:\n  control-enable: no\n")
	conf := h.Path("unbound.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	pid, err := h.StartDaemon("unbound.log", "unbound", "-d", "-c", conf)
	if err != nil {
		return fmt.Errorf("dns lab: %w", err)
	}
	l.onPremPID = pid
	if err := waitAnswer(l.OnPremAddr, OnPremZone+".", dns.TypeSOA); err != nil {
		log, _ := os.ReadFile(h.Path("unbound.log"))
		return fmt.Errorf("dns lab: unbound on %s: %w; log: %s", l.OnPremAddr, err, strings.TrimSpace(string(log)))
	}
	return nil
}

// StartCloud (re)starts dnsmasq in the cloud host. It does not cache, so an
// outage behind it is never hidden.
func (l *Lab) StartCloud(opts Options) error {
	h := l.Cloud
	var b strings.Builder
	fmt.Fprintf(&b, `port=53
listen-address=%s
bind-interfaces
no-resolv
no-hosts
no-poll
user=root
cache-size=0
pid-file=%s
log-queries
log-facility=%s
`, h.HostAddr, h.Path("dnsmasq.pid"), h.Path("dnsmasq-queries.log"))
	for _, z := range []string{PrivateZone, DataZone} {
		fmt.Fprintf(&b, "local=/%s/\n", z)
	}
	for name, ip := range PrivateA {
		if name == "api."+PrivateZone && opts.WrongPrivateA != "" {
			ip = opts.WrongPrivateA
		}
		fmt.Fprintf(&b, "host-record=%s,%s\n", name, ip)
	}
	if !opts.NoCloudForward {
		fmt.Fprintf(&b, "server=/%s/%s\n", OnPremZone, l.OnPrem.HostAddr)
	}
	conf := h.Path("dnsmasq.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	pid, err := h.StartDaemon("dnsmasq.log", "dnsmasq", "-k", "-C", conf)
	if err != nil {
		return fmt.Errorf("dns lab: %w", err)
	}
	l.cloudPID = pid
	if err := waitAnswer(l.CloudAddr, "api."+PrivateZone+".", dns.TypeA); err != nil {
		log, _ := os.ReadFile(h.Path("dnsmasq.log"))
		return fmt.Errorf("dns lab: dnsmasq on %s: %w; log: %s", l.CloudAddr, err, strings.TrimSpace(string(log)))
	}
	return nil
}

// StopOnPrem kills unbound: its address then refuses connections.
func (l *Lab) StopOnPrem() { netlab.Kill(l.onPremPID); l.onPremPID = 0 }

// StopCloud kills dnsmasq.
func (l *Lab) StopCloud() { netlab.Kill(l.cloudPID); l.cloudPID = 0 }

// waitAnswer polls a server until it replies, for at most 5 s.
func waitAnswer(server, name string, t uint16) error {
	deadline := time.Now().Add(5 * time.Second)
	p := &dnsprobe.Prober{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		o := p.Query(ctx, server, name, t)
		cancel()
		if o.Kind.Responded() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no reply to %s within 5s: %s", name, o.Summary())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Config is a dns section for the lab: the on-prem unbound, the cloud
// dnsmasq (reachable from the root namespace), both zones with their forward
// targets, and the names each side must resolve.
func (l *Lab) Config() *dnsprobe.Config {
	return &dnsprobe.Config{
		OnPremResolvers:  []dnsprobe.Resolver{{Name: "onprem-unbound", Address: l.OnPremAddr}},
		CloudResolvers:   []dnsprobe.Resolver{{Name: "cloud-dnsmasq", Address: l.CloudAddr}},
		CloudReachable:   dnsprobe.ReachYes,
		PrivateZones:     []string{PrivateZone},
		OnPremZones:      []string{OnPremZone},
		PrivateZoneNames: []dnsprobe.Name{{Name: "api." + PrivateZone, Expect: []string{PrivateA["api."+PrivateZone]}}},
		OnPremNames:      []dnsprobe.Name{{Name: "db." + OnPremZone, Expect: []string{OnPremA["db."+OnPremZone]}}},
		Forwarders: []dnsprobe.Forwarder{
			{Zone: PrivateZone, Targets: []string{l.CloudAddr}},
			{Zone: OnPremZone, Targets: []string{l.OnPremAddr}},
		},
		Timeout: diag.Duration(2 * time.Second),
	}
}

// Demo starts the lab for `make demo` with one deliberate fault: the on-prem
// unbound has no forward-zone for the second PrivateZone zone
// (data.cloud.internal), so dns.privatezone-from-onprem FAILs for
// pg.data.cloud.internal with the stanza to add, while everything else
// passes. It returns the dns section to use and a stop function.
func Demo() (*dnsprobe.Config, func(), error) {
	l, err := Start(Options{})
	if err != nil {
		return nil, nil, err
	}
	c := l.Config()
	c.PrivateZones = append(c.PrivateZones, DataZone)
	c.PrivateZoneNames = append(c.PrivateZoneNames, dnsprobe.Name{Name: "pg." + DataZone, Expect: []string{PrivateA["pg."+DataZone]}})
	c.Forwarders = append(c.Forwarders, dnsprobe.Forwarder{Zone: DataZone, Targets: []string{l.CloudAddr}})
	return c, l.Close, nil
}

// CoreDNSConfigMap is a kube-system/coredns ConfigMap whose Corefile forwards
// every zone of c where dns.coredns-forward expects it, with the cluster
// domain cluster.local; for the demo's API server. c is the lab's own
// configuration (Config and its variants): an address in it that does not
// parse is a bug in the lab, and panics.
func CoreDNSConfigMap(c *dnsprobe.Config) *corev1.ConfigMap {
	var b strings.Builder
	stanza := func(z string, private bool) {
		_, targets, err := dnsprobe.ExpectedForward(c, z, private)
		if err != nil {
			panic("dnslab: " + err.Error())
		}
		b.WriteString(dnsprobe.Stanza(z, targets))
	}
	for _, z := range c.OnPremZones {
		stanza(z, false)
	}
	for _, z := range c.PrivateZones {
		stanza(z, true)
	}
	b.WriteString(`.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
`)
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"},
		Data:       map[string]string{"Corefile": b.String()},
	}
}
