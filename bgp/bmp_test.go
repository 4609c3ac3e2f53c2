package bgp

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
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
	st.start(sink)
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

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestBMPStationFlood: 800 local connections that never identify (idle,
// garbage, and Initiations claiming 1 MiB) cost the station no stream
// buffers and a bounded heap, and the speaker still gets through while
// they stay open.
func TestBMPStationFlood(t *testing.T) {
	const conns = 800
	st, err := newBMPStation(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	sink := &recordSink{}
	st.start(sink)
	addr := st.ln.Addr().String()
	base := heapInUse()
	payloads := [][]byte{
		nil,                              // connects and stays silent
		{3, 0, 0x10, 0, 0, 4},            // an Initiation of 1 MiB, never sent
		{3, 0, 0x10, 0, 0, 0},            // a Route Monitoring of 1 MiB
		[]byte("GET / HTTP/1.1\r\n\r\n"), // not BMP at all
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
		if p := payloads[i%len(payloads)]; p != nil {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 20*time.Second, "every connection accepted", func() (bool, string) {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.accepted == conns, fmt.Sprint(st.accepted)
	})
	grown := int64(heapInUse()) - int64(base)
	st.mu.Lock()
	maxPending, streams := st.maxPending, st.streams
	st.mu.Unlock()
	t.Logf("%d connections open: heap grew by %.1f MiB; at most %d waited to identify", conns, float64(grown)/(1<<20), maxPending)
	if maxPending > maxPendingConns || streams != 0 {
		t.Errorf("pending connections peaked at %d (cap %d); streams taken %d (want 0)", maxPending, maxPendingConns, streams)
	}
	// 800 x (256 KiB reader + up to 1 MiB message) before the token was
	// checked came to about 1 GB; what may remain is a few handlers.
	if grown > 8<<20 {
		t.Errorf("heap grew by %d bytes for %d connections that never identified", grown, conns)
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(bmpMessages(t, st.token, "172.23.0.0/26")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the speaker's stream taken", func() (bool, string) {
		n, r := sink.snapshot()
		return n == 1 && len(r) == 1, fmt.Sprint(n, r)
	})
}

// TestBMPReaderBounds: a message longer than BMP can carry is refused from
// its header, before anything is allocated for it, and the parts the
// observer does not use are skipped, not buffered.
func TestBMPReaderBounds(t *testing.T) {
	hdr := func(typ byte, n int) []byte {
		return []byte{3, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), typ}
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"route monitoring over 64 KiB", hdr(bmpRouteMonitoring, maxRouteMonitoring+1), "route monitoring message of 65584 bytes"},
		{"any message over the bound", hdr(bmpPeerUp, 1<<20), "bad header (version 3, length 1048576)"},
		{"not version 3", []byte{2, 0, 0, 0, 100, bmpRouteMonitoring}, "bad header (version 2, length 100)"},
	} {
		m := newBMPReader(bytes.NewReader(tc.in))
		_, _, err := m.next()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: next() = %v, want %q", tc.name, err, tc.want)
		}
		if cap(m.buf) > 8192 {
			t.Errorf("%s: buffer grew to %d bytes", tc.name, cap(m.buf))
		}
	}
	// A statistics report of 100 KiB and a Peer Up of 100 KiB: skipped
	// (Peer Up down to its per-peer header), then the next message reads.
	var in []byte
	in = append(in, hdr(1, 6+100<<10)...)
	in = append(in, make([]byte, 100<<10)...)
	in = append(in, hdr(bmpPeerUp, 6+100<<10)...)
	in = append(in, make([]byte, 100<<10)...)
	in = append(in, hdr(bmpInitiation, 6)...)
	m := newBMPReader(bytes.NewReader(in))
	for i, want := range []struct {
		typ byte
		n   int
	}{{1, 0}, {bmpPeerUp, bmpPeerHeaderLen}, {bmpInitiation, 0}} {
		typ, body, err := m.next()
		if err != nil || typ != want.typ || len(body) != want.n {
			t.Fatalf("message %d: type %d, %d bytes, %v; want type %d, %d bytes", i, typ, len(body), err, want.typ, want.n)
		}
	}
	if cap(m.buf) > 8192 {
		t.Errorf("buffer grew to %d bytes", cap(m.buf))
	}
}

// TestReadInitiationBounds: the first message is read into a small fixed
// buffer; a larger one is refused from its header.
func TestReadInitiationBounds(t *testing.T) {
	big := []byte{3, 0, 0x10, 0, 0, bmpInitiation}
	if err := readInitiation(bytes.NewReader(big), "tok"); err == nil || !strings.Contains(err.Error(), "initiation of 1048576 bytes (at most 512)") {
		t.Errorf("1 MiB Initiation: %v", err)
	}
	if err := readInitiation(bytes.NewReader(bmpMessages(t, "tok", "10.0.0.0/8")), "tok"); err != nil {
		t.Errorf("the speaker's Initiation: %v", err)
	}
	if err := readInitiation(bytes.NewReader(bmpMessages(t, "tok2", "10.0.0.0/8")), "tok"); err == nil {
		t.Error("a wrong token was taken")
	}
}
