package bgp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/bgplab"
)

func onPremNode(name, podCIDR string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}}}
}

func TestBIRDSessionAndRoutes(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26", "172.23.0.64/26", "100.64.0.0/10", "192.168.10.0/24"}})
	cfg := observerConfig(p)
	cfg.CloudPrefixes = []string{"192.168.10.0/24"}
	o := startObserver(t, cfg)
	waitReady(t, o, 20*time.Second)
	tb := table(t, o)
	if len(tb.Peers) != 1 || !tb.Peers[0].Established() || !tb.Peers[0].Families[0].EndOfRIB {
		t.Fatalf("peers = %+v", tb.Peers)
	}
	if got := len(tb.Routes); got != 4 {
		t.Fatalf("routes = %v, want 4", tb.Routes)
	}
	diagtest.At(t, bgp.EvaluateSessions(tb), 0, pb.Status_PASS)
	cr := bgp.EvaluateCloudRoutes(tb)
	diagtest.At(t, cr, 0, pb.Status_PASS)
	diagtest.At(t, cr, 1, pb.Status_PASS)
	nodes := []*corev1.Node{onPremNode("op-1", "172.23.0.0/26"), onPremNode("op-2", "172.23.0.64/26")}
	diagtest.At(t, bgp.EvaluatePodCIDRs(context.Background(), tb, nodes), 0, pb.Status_PASS)
	imp, exp, est, err := p.bird.Counts()
	if err != nil || !est || imp != 0 || exp != 4 {
		t.Fatalf("bird: imported %d exported %d established %v err %v; want 0, 4, true", imp, exp, est, err)
	}
}

// TestAdvertisesNothing: routes from BIRD and FRR sit in the observer's RIB,
// yet neither router receives a single route from it.
func TestAdvertisesNothing(t *testing.T) {
	t.Parallel()
	b := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26", "100.64.0.0/10"}})
	f := frrPeer(t, bgplab.Router{Routes: []string{"172.23.1.0/26", "10.10.0.0/16"}})
	o := startObserver(t, observerConfig(b, f))
	waitReady(t, o, 20*time.Second)
	tb := table(t, o)
	if len(tb.Routes) != 4 {
		t.Fatalf("observer RIB = %v, want 4 routes from two peers", tb.Routes)
	}
	if tb.ExportPolicy != "REJECT" {
		t.Errorf("export policy = %q", tb.ExportPolicy)
	}
	imp, exp, est, err := b.bird.Counts()
	if err != nil || !est || imp != 0 || exp != 2 {
		t.Fatalf("bird: imported %d exported %d established %v err %v; want 0 imported", imp, exp, est, err)
	}
	// FRR would pass BIRD's routes on if the observer re-advertised them.
	rcv, est, err := f.frr.Received()
	if err != nil || !est || rcv != 0 {
		t.Fatalf("frr: PfxRcd %d established %v err %v; want 0", rcv, est, err)
	}
}

func TestWrongASN(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}})
	p.peer.ASN = 65099
	o := startObserver(t, observerConfig(p))
	waitFor(t, 15*time.Second, "bad peer AS reported", func() (bool, string) {
		tb := table(t, o)
		return strings.Contains(tb.Peers[0].LastError, "as number mismatch expected 65099, received 65001"), tb.Peers[0].LastError
	})
	r := diagtest.At(t, bgp.EvaluateSessions(table(t, o)), 0, pb.Status_FAIL)
	if !strings.Contains(r.Remediation, "AS number mismatch") || len(r.Snippets) != 4 ||
		!strings.Contains(r.Snippets[0].Text, "local as 65099;") || r.Snippets[0].Language != "bird" {
		t.Fatalf("remediation = %s, snippets %v", r.Remediation, r.Snippets)
	}
}

func TestPeerDown(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}})
	p.bird.Stop()
	cfg := observerConfig(p)
	cfg.EstablishTimeout = diag.Duration(4 * time.Second)
	start := time.Now()
	v := oneShot(t, cfg, testLogger(t))
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("one-shot took %s with a 4s establish timeout", d)
	}
	tb := v.(*bgp.Table)
	r := diagtest.At(t, bgp.EvaluateSessions(tb), 0, pb.Status_FAIL)
	if !strings.Contains(r.Summary, "connection refused") {
		t.Fatalf("summary = %s", r.Summary)
	}
	diagtest.At(t, bgp.EvaluateCloudRoutes(tb), 0, pb.Status_ERROR)
}

func TestPeerRestartCountsFlap(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}})
	// The daemon's source: the observer runs for the provider's life and
	// each Gather reads its table.
	prov, err := bgp.NewProvider(observerConfig(p), diag.Env{Daemon: true, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.(interface{ Close() }).Close()
	gather := func() *bgp.Table { return diagtest.GatherAs(t, context.Background(), prov, bgp.Source) }
	waitFor(t, 20*time.Second, "session up", func() (bool, string) {
		pe := gather().Peers[0]
		return pe.Established(), pe.State
	})
	if err := p.bird.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "flap counted and session back", func() (bool, string) {
		tb := gather()
		pe := tb.Peers[0]
		return pe.Flaps == 1 && pe.Established() && len(tb.Routes) == 1, pe.State
	})
	tb := gather()
	r := diagtest.At(t, bgp.EvaluateSessions(tb), 0, pb.Status_WARN)
	if !strings.Contains(r.Summary, "flapped 1 times") || tb.Peers[0].LastError == "" {
		t.Fatalf("result = %v, last error %q", r, tb.Peers[0].LastError)
	}
}

func TestMD5Mismatch(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-on-router"
	const wrong = "wr0ng-in-observer"
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}, Password: secret})
	p.peer.Password = wrong
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := observerConfig(p)
	cfg.EstablishTimeout = diag.Duration(5 * time.Second)
	v := oneShot(t, cfg, lg)
	tb := v.(*bgp.Table)
	r := diagtest.At(t, bgp.EvaluateSessions(tb), 0, pb.Status_FAIL)
	if !strings.Contains(r.Remediation, "MD5") {
		t.Fatalf("remediation does not mention MD5: %s", r.Remediation)
	}
	out, _ := protojson.Marshal(&pb.Report{Results: bgp.EvaluateSessions(tb)})
	for _, s := range []string{wrong, secret} {
		if strings.Contains(string(out), s) || strings.Contains(logs.String(), s) || strings.Contains(tb.Peers[0].LastError, s) {
			t.Fatalf("password %q leaked (report or logs)", s)
		}
	}
	// With the right password the same router comes up.
	p.peer.Password = secret
	o := startObserver(t, observerConfig(p))
	waitReady(t, o, 20*time.Second)
}

func TestMissingPodCIDRAndCGNAT(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26", "100.100.0.0/16"}})
	o := startObserver(t, observerConfig(p))
	waitReady(t, o, 20*time.Second)
	tb := table(t, o)
	nodes := []*corev1.Node{onPremNode("op-1", "172.23.0.0/26"), onPremNode("op-2", "172.23.0.64/26"),
		{ObjectMeta: metav1.ObjectMeta{Name: "vk", Labels: map[string]string{"type": "virtual-kubelet"}}}}
	r := diagtest.At(t, bgp.EvaluatePodCIDRs(context.Background(), tb, nodes), 0, pb.Status_FAIL)
	if len(r.Objects) != 1 || r.Objects[0].Name != "op-2" {
		t.Fatalf("objects = %v", r.Objects)
	}
	r = diagtest.At(t, bgp.EvaluateCloudRoutes(tb), 0, pb.Status_WARN)
	if !strings.Contains(r.Summary, "100.64.0.0/11") || strings.Contains(r.Summary, "affects") {
		t.Fatalf("summary = %s", r.Summary)
	}
}

func TestCGNATMissingAndMoreSpecificOnly(t *testing.T) {
	t.Parallel()
	missing := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}})
	split := birdPeer(t, bgplab.Router{Routes: []string{"100.64.0.0/11", "100.96.0.0/11"}})
	o1 := startObserver(t, observerConfig(missing))
	o2 := startObserver(t, observerConfig(split))
	waitReady(t, o1, 20*time.Second)
	waitReady(t, o2, 20*time.Second)
	r := diagtest.At(t, bgp.EvaluateCloudRoutes(table(t, o1)), 0, pb.Status_FAIL)
	if !strings.Contains(r.Summary, "100.100.2.136") {
		t.Fatalf("summary does not name the affected service address: %s", r.Summary)
	}
	r = diagtest.At(t, bgp.EvaluateCloudRoutes(table(t, o2)), 0, pb.Status_PASS)
	if !strings.Contains(r.Summary, "more specific routes only") {
		t.Fatalf("summary = %s", r.Summary)
	}
}

func TestIPv6Prefixes(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"bird", "frr"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			r := bgplab.Router{Routes: []string{"172.23.0.0/26", "fd00:23::/64", "fd00:24::/64"}}
			var p *labPeer
			if kind == "bird" {
				p = birdPeer(t, r)
			} else {
				p = frrPeer(t, r)
			}
			p.peer.Families = []string{bgp.FamilyIPv4Unicast, bgp.FamilyIPv6Unicast}
			o := startObserver(t, observerConfig(p))
			waitReady(t, o, 20*time.Second)
			tb := table(t, o)
			v6 := 0
			for _, r := range tb.Routes {
				if r.Prefix.Addr().Is6() {
					v6++
				}
			}
			if v6 != 2 || len(tb.Routes) != 3 {
				t.Fatalf("routes = %v", tb.Routes)
			}
			nodes := []*corev1.Node{
				{ObjectMeta: metav1.ObjectMeta{Name: "op-1"}, Spec: corev1.NodeSpec{PodCIDR: "172.23.0.0/26", PodCIDRs: []string{"172.23.0.0/26", "fd00:23::/64"}}},
				{ObjectMeta: metav1.ObjectMeta{Name: "op-2"}, Spec: corev1.NodeSpec{PodCIDR: "fd00:25::/64", PodCIDRs: []string{"fd00:25::/64"}}},
			}
			res := diagtest.At(t, bgp.EvaluatePodCIDRs(context.Background(), tb, nodes), 0, pb.Status_FAIL)
			if len(res.Objects) != 1 || res.Objects[0].Name != "op-2" {
				t.Fatalf("objects = %v", res.Objects)
			}
		})
	}
}

func TestMaxPrefixes(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Bulk: 500})
	p.peer.MaxPrefixes = 100
	o := startObserver(t, observerConfig(p))
	waitReady(t, o, 20*time.Second) // a cut peer counts as ready: nothing more will come
	// The speaker reports the cut a moment before the session leaves
	// Established: from the cut on, every read says so and keeps none of
	// the session's routes.
	var tb *bgp.Table
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		tb = table(t, o)
		if !tb.Peers[0].MaxPrefixExceeded {
			t.Fatalf("ready, but the cut is not reported: peer = %+v", tb.Peers[0])
		}
		if len(tb.Routes) != 0 {
			t.Fatalf("routes kept from a cut session (state %s): %d", tb.Peers[0].State, len(tb.Routes))
		}
		r := diagtest.At(t, bgp.EvaluateSessions(tb), 0, pb.Status_FAIL)
		if !strings.Contains(r.Summary, "more than 100 prefixes") {
			t.Fatalf("summary = %s", r.Summary)
		}
		if !tb.Peers[0].Established() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cut session is still Established 10 s on: %+v", tb.Peers[0])
		}
	}
}

// TestListenerPassive: the router dials the observer's high port.
func TestListenerPassive(t *testing.T) {
	t.Parallel()
	needBinary(t, "/usr/sbin/bird")
	p := birdPeer(t, bgplab.Router{})
	p.bird.Stop()
	h := p.host
	// Restart BIRD as the active side, dialing the observer's high port.
	b, err := bgplab.StartBIRD(h, bgplab.Router{ASN: routerASN, Neighbor: h.RootAddr, NeighborASN: observerASN,
		NeighborPort: 11179, Routes: []string{"172.23.0.0/26"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = b
	cfg := observerConfig(p)
	cfg.ListenPort, cfg.ListenAddress = 11179, h.RootAddr.String()
	cfg.Peers[0].Passive = true
	o := startObserver(t, cfg)
	waitReady(t, o, 20*time.Second)
	if tb := table(t, o); len(tb.Routes) != 1 || tb.Listener != netip.AddrPortFrom(h.RootAddr, 11179).String() {
		t.Fatalf("routes %v listener %s", tb.Routes, tb.Listener)
	}
}

// TestNoGracefulRestart: a router without the graceful-restart capability
// sends no End-of-RIB; the one-shot run ends at its deadline with the
// routes it has and says the table may be incomplete.
func TestNoGracefulRestart(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}, NoGracefulRestart: true})
	cfg := observerConfig(p)
	cfg.EstablishTimeout = diag.Duration(5 * time.Second)
	v := oneShot(t, cfg, testLogger(t))
	tb := v.(*bgp.Table)
	r := bgp.EvaluateSessions(tb)[0]
	t.Logf("%s: %s (routes %d)", r.Status, r.Summary, len(tb.Routes))
	if len(tb.Routes) != 1 || r.Status != pb.Status_WARN {
		t.Fatalf("got %s with %d routes", r.Status, len(tb.Routes))
	}
}

// oneShot gathers the BGP source once, as `diagnose` does.
func oneShot(t *testing.T, cfg *bgp.Config, lg *slog.Logger) any {
	t.Helper()
	prov, err := bgp.NewProvider(cfg, diag.Env{Log: lg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := prov.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRouteStreamRecovers: a local process that connects to the observer's
// BMP port first cannot feed the table, and when the speaker's stream
// drops, the table reads as incomplete (an error, not a silent stale copy)
// until the speaker reconnects and replays every route — through 800
// local connections that hold the port open with garbage.
func TestRouteStreamRecovers(t *testing.T) {
	t.Parallel()
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26", "172.23.0.64/26", "100.64.0.0/10"}})
	o := startObserver(t, observerConfig(p))
	station := fmt.Sprintf("127.0.0.1:%d", bgp.RouteStreamPort(o))
	foreign, err := net.DialTimeout("tcp", station, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if _, err := foreign.Write([]byte{3, 0, 0, 0, 6, 4}); err != nil { // an Initiation without the token
		t.Fatal(err)
	}
	waitReady(t, o, 20*time.Second)
	if n := len(table(t, o).Routes); n != 3 {
		t.Fatalf("routes = %d, want 3", n)
	}
	for i := 0; i < 800; i++ {
		c, err := net.DialTimeout("tcp", station, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		if i%2 == 0 {
			_, _ = c.Write([]byte{3, 0, 0x10, 0, 0, 4}) // an Initiation of 1 MiB that never comes
		}
	}
	if !bgp.DropRouteStream(o) {
		t.Fatal("no route stream to drop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "table reports the dropped stream", func() (bool, string) {
		_, err := o.Table(ctx)
		return err != nil && strings.Contains(err.Error(), "route stream ended"), fmt.Sprint(err)
	})
	waitFor(t, 30*time.Second, "routes replayed after the speaker reconnects", func() (bool, string) {
		tb, err := o.Table(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(tb.Routes) == 3, fmt.Sprint(tb.Routes)
	})
}
