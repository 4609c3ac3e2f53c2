// Package bgplab starts real BGP routers (BIRD 2, FRR bgpd) inside netlab
// test hosts, for the observer's tests, the benchmark and the demo. Each
// router runs in the foreground inside its namespace, with its config,
// control socket and log under the host's directory, and is stopped by
// PID when the host closes. It needs root (see netlab) and the Debian
// packages bird2 and frr.
package bgplab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vnodediag/vnodediag/test/netlab"
)

// Router is the configuration of one lab router. The router runs inside
// Host and peers with the observer at Neighbor (usually Host.RootAddr).
type Router struct {
	ASN         uint32
	Neighbor    netip.Addr
	NeighborASN uint32
	// NeighborPort is where the router dials the observer (0: 179).
	NeighborPort int
	// Passive makes the router wait for the observer to dial.
	Passive bool
	// Password is the TCP MD5 password ("" none).
	Password string
	// HoldTime in seconds (0: 3, which also makes BIRD send UPDATEs soon).
	HoldTime int
	// Routes are advertised (IPv4 and IPv6 prefixes).
	Routes []string
	// Bulk adds that many generated IPv4 /28 routes (10.0.0.0/28, ...).
	Bulk int
	// NoGracefulRestart disables the graceful-restart capability, so the
	// router sends no End-of-RIB.
	NoGracefulRestart bool
}

func (r *Router) holdTime() int {
	if r.HoldTime == 0 {
		return 3
	}
	return r.HoldTime
}

// split returns the IPv4 and IPv6 routes.
func (r *Router) split() (v4, v6 []string) {
	for _, s := range r.Routes {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Is6() {
			v6 = append(v6, s)
		} else {
			v4 = append(v4, s)
		}
	}
	return v4, v6
}

// BulkPrefix returns the i-th generated bulk route.
func BulkPrefix(i int) netip.Prefix {
	n := uint32(10)<<24 + uint32(i)*16
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 28)
}

// BIRD is a running BIRD 2.
type BIRD struct {
	Host *netlab.Host
	Conf string
	Ctl  string
	PID  int
	cfg  Router
}

// StartBIRD writes a config for r and starts bird -f in h.
func StartBIRD(h *netlab.Host, r Router) (*BIRD, error) {
	b := &BIRD{Host: h, Conf: h.Path("bird.conf"), Ctl: h.Path("bird.ctl"), cfg: r}
	if err := os.WriteFile(b.Conf, []byte(birdConfig(h, r)), 0o600); err != nil {
		return nil, err
	}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

func birdConfig(h *netlab.Host, r Router) string {
	v4, v6 := r.split()
	var c strings.Builder
	fmt.Fprintf(&c, "router id %s;\nprotocol device { }\n", h.HostAddr)
	c.WriteString("protocol static pods {\n  ipv4;\n")
	for _, s := range v4 {
		fmt.Fprintf(&c, "  route %s blackhole;\n", s)
	}
	for i := 0; i < r.Bulk; i++ {
		fmt.Fprintf(&c, "  route %s blackhole;\n", BulkPrefix(i))
	}
	c.WriteString("}\n")
	if len(v6) > 0 {
		c.WriteString("protocol static pods6 {\n  ipv6;\n")
		for _, s := range v6 {
			fmt.Fprintf(&c, "  route %s blackhole;\n", s)
		}
		c.WriteString("}\n")
	}
	port := ""
	if r.NeighborPort != 0 {
		port = fmt.Sprintf(" port %d", r.NeighborPort)
	}
	fmt.Fprintf(&c, "protocol bgp observer {\n  local %s as %d;\n  neighbor %s%s as %d;\n", h.HostAddr, r.ASN, r.Neighbor, port, r.NeighborASN)
	if r.Passive {
		c.WriteString("  passive on;\n")
	}
	if r.Password != "" {
		fmt.Fprintf(&c, "  password %q;\n", r.Password)
	}
	if r.NoGracefulRestart {
		c.WriteString("  graceful restart off;\n")
	}
	fmt.Fprintf(&c, "  connect retry time 1;\n  connect delay time 1;\n  error wait time 1, 2;\n  hold time %d;\n", r.holdTime())
	// import all: whatever the observer sent would show as imported.
	c.WriteString("  ipv4 { import all; export where proto = \"pods\"; };\n")
	if len(v6) > 0 {
		c.WriteString("  ipv6 { import all; export where proto = \"pods6\"; next hop address fd00::1; };\n")
	}
	c.WriteString("}\n")
	return c.String()
}

func (b *BIRD) start() error {
	if out, err := exec.Command("bird", "-p", "-c", b.Conf).CombinedOutput(); err != nil {
		return fmt.Errorf("bird config %s: %v: %s", b.Conf, err, out)
	}
	pid, err := b.Host.StartDaemon("bird.log", "bird", "-f", "-c", b.Conf, "-s", b.Ctl, "-P", b.Host.Path("bird.pid"))
	if err != nil {
		return err
	}
	b.PID = pid
	return poll(10*time.Second, func() error { _, err := b.Birdc("show", "status"); return err })
}

// Stop kills BIRD (the observer sees the session drop).
func (b *BIRD) Stop() { netlab.Kill(b.PID); b.PID = 0 }

// Restart stops BIRD and starts it again with the same config.
func (b *BIRD) Restart() error {
	b.Stop()
	return b.start()
}

// Birdc runs a birdc command against this BIRD.
func (b *BIRD) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Ctl}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

var birdRoutes = regexp.MustCompile(`Routes:\s+(\d+) imported,.*?(\d+) exported`)

// Counts returns the routes BIRD imported from the observer and exported to
// it, over all channels, and whether the session is Established.
func (b *BIRD) Counts() (imported, exported int, established bool, err error) {
	out, err := b.Birdc("show", "protocols", "all", "observer")
	if err != nil {
		return 0, 0, false, err
	}
	for _, m := range birdRoutes.FindAllStringSubmatch(out, -1) {
		i, _ := strconv.Atoi(m[1])
		e, _ := strconv.Atoi(m[2])
		imported += i
		exported += e
	}
	return imported, exported, strings.Contains(out, "Established"), nil
}

// FRR is a running FRR bgpd (standalone, no zebra).
type FRR struct {
	Host *netlab.Host
	Conf string
	VTY  string
	PID  int
	cfg  Router
}

// StartFRR writes a config for r and starts bgpd in h.
func StartFRR(h *netlab.Host, r Router) (*FRR, error) {
	f := &FRR{Host: h, Conf: h.Path("frr.conf"), VTY: h.Path("frr"), cfg: r}
	if err := os.MkdirAll(f.VTY, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(f.Conf, []byte(frrConfig(h, r)), 0o600); err != nil {
		return nil, err
	}
	if err := f.start(); err != nil {
		return nil, err
	}
	return f, nil
}

func frrConfig(h *netlab.Host, r Router) string {
	v4, v6 := r.split()
	n := r.Neighbor.String()
	var c strings.Builder
	fmt.Fprintf(&c, "frr defaults traditional\nhostname lab-frr\nlog file %s informational\n", h.Path("frr.log"))
	fmt.Fprintf(&c, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n coalesce-time 0\n", r.ASN, h.HostAddr)
	if r.NoGracefulRestart {
		c.WriteString(" bgp graceful-restart-disable\n")
	}
	fmt.Fprintf(&c, " neighbor %s remote-as %d\n neighbor %s timers 1 %d\n neighbor %s timers connect 1\n neighbor %s advertisement-interval 0\n",
		n, r.NeighborASN, n, r.holdTime(), n, n)
	if r.NeighborPort != 0 {
		fmt.Fprintf(&c, " neighbor %s port %d\n", n, r.NeighborPort)
	}
	if r.Passive {
		fmt.Fprintf(&c, " neighbor %s passive\n", n)
	}
	if r.Password != "" {
		fmt.Fprintf(&c, " neighbor %s password %s\n", n, r.Password)
	}
	c.WriteString(" address-family ipv4 unicast\n")
	for _, s := range v4 {
		fmt.Fprintf(&c, "  network %s\n", s)
	}
	for i := 0; i < r.Bulk; i++ {
		fmt.Fprintf(&c, "  network %s\n", BulkPrefix(i))
	}
	c.WriteString(" exit-address-family\n")
	if len(v6) > 0 {
		fmt.Fprintf(&c, " address-family ipv6 unicast\n  neighbor %s activate\n", n)
		for _, s := range v6 {
			fmt.Fprintf(&c, "  network %s\n", s)
		}
		c.WriteString(" exit-address-family\n")
	}
	c.WriteString("exit\n")
	return c.String()
}

func (f *FRR) start() error {
	pid, err := f.Host.StartDaemon("bgpd.out", "/usr/lib/frr/bgpd", "-Z", "-S", "-P", "0", "-f", f.Conf,
		"-i", f.Host.Path("bgpd.pid"), "--vty_socket", f.VTY)
	if err != nil {
		return err
	}
	f.PID = pid
	return poll(15*time.Second, func() error { _, err := f.Vtysh("show bgp summary"); return err })
}

// Stop kills bgpd.
func (f *FRR) Stop() { netlab.Kill(f.PID); f.PID = 0 }

// Vtysh runs one vtysh command against this bgpd.
func (f *FRR) Vtysh(cmd string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.VTY, "-d", "bgpd", "-c", cmd).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %q: %v: %s", cmd, err, out)
	}
	return string(out), nil
}

var frrPfxRcd = regexp.MustCompile(`"pfxRcd":\s*(\d+)`)
var frrState = regexp.MustCompile(`"state":\s*"(\w+)"`)

// Received returns the routes bgpd received from the observer over all
// families, and whether the session is Established.
func (f *FRR) Received() (received int, established bool, err error) {
	out, err := f.Vtysh("show bgp summary json")
	if err != nil {
		return 0, false, err
	}
	for _, m := range frrPfxRcd.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		received += n
	}
	for _, m := range frrState.FindAllStringSubmatch(out, -1) {
		if m[1] == "Established" {
			established = true
		}
	}
	return received, established, nil
}

// poll calls f until it succeeds or d passes.
func poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", d, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
