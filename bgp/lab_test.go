package bgp_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/test/bgplab"
	"github.com/vnodediag/vnodediag/test/netlab"
)

const (
	observerASN = 65010
	routerASN   = 65001
)

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("BGP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// labPeer is one router in a netlab host and the observer's view of it.
type labPeer struct {
	host *netlab.Host
	bird *bgplab.BIRD
	frr  *bgplab.FRR
	peer bgp.PeerConfig
}

func needBinary(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// labHost makes the namespace a lab router runs in and fills the router's
// defaults: passive (the observer dials it, so no listener is needed), our
// root-side address as its neighbour, the lab's ASNs.
func labHost(t *testing.T, binary, name string, r *bgplab.Router) *netlab.Host {
	t.Helper()
	needBinary(t, binary)
	h := netlab.NewHostT(t, name)
	r.Neighbor, r.Passive = h.RootAddr, true
	if r.ASN == 0 {
		r.ASN = routerASN
	}
	if r.NeighborASN == 0 {
		r.NeighborASN = observerASN
	}
	return h
}

func labPeerConfig(name string, h *netlab.Host, r bgplab.Router) bgp.PeerConfig {
	return bgp.PeerConfig{Name: name, Address: h.HostAddr.String(), ASN: r.ASN, HoldTime: u32(3)}
}

// birdPeer starts BIRD as a passive lab router.
func birdPeer(t *testing.T, r bgplab.Router) *labPeer {
	t.Helper()
	h := labHost(t, "/usr/sbin/bird", "bird", &r)
	b, err := bgplab.StartBIRD(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return &labPeer{host: h, bird: b, peer: labPeerConfig("bird", h, r)}
}

// frrPeer starts FRR bgpd as a passive lab router.
func frrPeer(t *testing.T, r bgplab.Router) *labPeer {
	t.Helper()
	h := labHost(t, "/usr/lib/frr/bgpd", "frr", &r)
	f, err := bgplab.StartFRR(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return &labPeer{host: h, frr: f, peer: labPeerConfig("frr", h, r)}
}

func u32(v uint32) *uint32 { return &v }

func observerConfig(peers ...*labPeer) *bgp.Config {
	c := &bgp.Config{LocalASN: observerASN, RouterID: "192.0.2.10", ListenPort: -1, EstablishTimeout: diag.Duration(20 * time.Second)}
	for _, p := range peers {
		c.Peers = append(c.Peers, p.peer)
	}
	return c
}

func startObserver(t *testing.T, cfg *bgp.Config) *bgp.Observer {
	t.Helper()
	o, err := bgp.NewObserver(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Stop)
	return o
}

// waitFor polls cond until it holds or d passes (shared with the
// package's internal tests).
var waitFor = bgp.WaitFor

func table(t *testing.T, o *bgp.Observer) *bgp.Table {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tb, err := o.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func waitReady(t *testing.T, o *bgp.Observer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := o.WaitReady(ctx); err != nil {
		t.Fatalf("observer not ready after %s: %v; table: %+v", d, err, table(t, o).Peers)
	}
}

// TestOneShotBIRDLeavesNoGoroutines: a one-shot gather against a real
// router, session Established and routes received, leaves nothing running
// but gobgp's parked Serve loop. Not parallel: goleak sees the whole process.
func TestOneShotBIRDLeavesNoGoroutines(t *testing.T) {
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26", "100.64.0.0/10"}})
	ignore := goleak.IgnoreCurrent()
	tb := oneShot(t, observerConfig(p), testLogger(t)).(*bgp.Table)
	if len(tb.Routes) != 2 || !tb.Peers[0].Established() {
		t.Fatalf("peers %+v routes %v", tb.Peers, tb.Routes)
	}
	goleak.VerifyNone(t, ignore, bgp.IgnoreGoBGPServe)
}

// TestMD5Passive: the router dials the observer's listener with a TCP-MD5
// password (a common word, to boot) and the session comes up: the key is
// on the listener. Go's default Multipath TCP listener cannot carry one;
// the module's godebug turns that default off.
func TestMD5Passive(t *testing.T) {
	t.Parallel()
	needBinary(t, "/usr/sbin/bird")
	const password = "peer"
	p := birdPeer(t, bgplab.Router{})
	p.bird.Stop()
	h := p.host
	if _, err := bgplab.StartBIRD(h, bgplab.Router{ASN: routerASN, Neighbor: h.RootAddr, NeighborASN: observerASN,
		NeighborPort: 11180, Password: password, Routes: []string{"172.23.0.0/26"}}); err != nil {
		t.Fatal(err)
	}
	cfg := observerConfig(p)
	cfg.ListenPort, cfg.ListenAddress = 11180, h.RootAddr.String()
	cfg.Peers[0].Passive, cfg.Peers[0].Password = true, password
	o := startObserver(t, cfg)
	waitReady(t, o, 20*time.Second)
	if tb := table(t, o); len(tb.Routes) != 1 {
		t.Fatalf("routes %v", tb.Routes)
	}
}
