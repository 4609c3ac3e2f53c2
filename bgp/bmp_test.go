package bgp

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"
)

func TestParseUpdate(t *testing.T) {
	msgs := []*bgp.BGPMessage{
		bgp.NewBGPUpdateMessage(
			[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(24, "10.9.9.0")},
			[]bgp.PathAttributeInterface{
				bgp.NewPathAttributeOrigin(0),
				bgp.NewPathAttributeNextHop("10.0.0.1"),
				bgp.NewPathAttributeMpReachNLRI("fd00::1", []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(64, "fd00:23::"), bgp.NewIPv6AddrPrefix(48, "fd00:24::")}),
				bgp.NewPathAttributeMpUnreachNLRI([]bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(64, "fd00:99::")}),
			},
			[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(26, "172.23.0.0"), bgp.NewIPAddrPrefix(0, "0.0.0.0")}),
		bgp.NewEndOfRib(bgp.RF_IPv4_UC),
	}
	want := []string{"[0.0.0.0/0 172.23.0.0/26 fd00:23::/64 fd00:24::/48] [10.9.9.0/24 fd00:99::/64]", "[] []"}
	for i, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		ann, wd, err := parseUpdate(b, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ann, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		if got := fmt.Sprint(ann) + " " + fmt.Sprint(wd); got != want[i] {
			t.Errorf("message %d: got %v %v, want %s", i, ann, wd, want[i])
		}
	}
}

func TestBMPPeerAddr(t *testing.T) {
	hdr := func(flags byte, addr [16]byte) []byte {
		h := make([]byte, bmpPeerHeaderLen)
		h[1] = flags
		copy(h[10:26], addr[:])
		return h
	}
	v4 := [16]byte{12: 10, 13: 254, 14: 0, 15: 2}
	v6 := netip.MustParseAddr("fd00::2").As16()
	cases := []struct {
		flags byte
		addr  [16]byte
		want  string
	}{
		{0, v4, "10.254.0.2"},
		{0x80, v4, "10.254.0.2"}, // gobgp sets V for IPv6 routes of an IPv4 peer
		{0x80, netip.MustParseAddr("::ffff:10.254.0.2").As16(), "10.254.0.2"},
		{0x80, v6, "fd00::2"},
	}
	for _, tc := range cases {
		if got := bmpPeerAddr(hdr(tc.flags, tc.addr)).String(); got != tc.want {
			t.Errorf("flags %#x %v: got %s, want %s", tc.flags, tc.addr, got, tc.want)
		}
	}
}

// recordSink counts what a stream delivers.
type recordSink struct {
	mu      sync.Mutex
	streams []error
	routes  []netip.Prefix
}

func (r *recordSink) update(_ netip.Addr, ann, _ []netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = append(r.routes, ann...)
}
func (r *recordSink) reset(netip.Addr) {}
func (r *recordSink) stream(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.streams = append(r.streams, err)
}
func (r *recordSink) snapshot() (int, []netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.streams), slices.Clone(r.routes)
}

// bmpMessages serializes an Initiation with sysDescr descr and one route
// monitoring message announcing prefix, as gobgp's BMP client writes them.
func bmpMessages(t *testing.T, descr, prefix string) []byte {
	t.Helper()
	p := netip.MustParsePrefix(prefix)
	upd := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("10.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())})
	msgs := []*bmp.BMPMessage{
		bmp.NewBMPInitiation([]bmp.BMPInfoTLVInterface{
			bmp.NewBMPInfoTLVString(bmp.BMP_INIT_TLV_TYPE_SYS_NAME, "vnodediag"),
			bmp.NewBMPInfoTLVString(bmp.BMP_INIT_TLV_TYPE_SYS_DESCR, descr),
		}),
		bmp.NewBMPRouteMonitoring(*bmp.NewBMPPeerHeader(bmp.BMP_PEER_TYPE_GLOBAL, 0, 0, "10.254.0.2", 65010, "10.254.0.2", 0), upd),
	}
	var out []byte
	for _, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// TestBMPStationTakesOnlyItsSpeaker: connections that do not present the
// station's token are refused without touching the table; the speaker's
// stream is taken, and a second one from it replaces the first.
func TestBMPStationTakesOnlyItsSpeaker(t *testing.T) {
	st, err := newBMPStation(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	sink := &recordSink{}
	go st.serve(sink)
	addr := st.ln.Addr().String()
	dial := func(payload []byte) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A foreign process: the wrong token, then garbage; then one that only
	// stalls (it must not block the speaker).
	dial(bmpMessages(t, "not-the-token", "10.66.0.0/16"))
	dial([]byte("GET / HTTP/1.1\r\n\r\n"))
	dial(nil)
	dial(bmpMessages(t, st.token, "172.23.0.0/26"))
	waitFor(t, 5*time.Second, "first stream taken", func() (bool, string) { n, r := sink.snapshot(); return n == 1 && len(r) == 1, fmt.Sprint(n, r) })
	second := dial(bmpMessages(t, st.token, "172.23.0.64/26"))
	waitFor(t, 5*time.Second, "second stream replaces it", func() (bool, string) { n, r := sink.snapshot(); return n == 2 && len(r) == 2, fmt.Sprint(n, r) })
	n, routes := sink.snapshot()
	if fmt.Sprint(routes) != "[172.23.0.0/26 172.23.0.64/26]" {
		t.Fatalf("routes = %v after %d streams; the foreign connections must add nothing", routes, n)
	}
	// The current stream ending is reported once, as an error.
	second.Close()
	waitFor(t, 5*time.Second, "end of stream reported", func() (bool, string) { n, r := sink.snapshot(); return n == 3, fmt.Sprint(n, r) })
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.streams[0] != nil || sink.streams[1] != nil || sink.streams[2] == nil {
		t.Fatalf("stream events = %v, want [nil nil error]", sink.streams)
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s (last: %s)", what, d, last)
}
