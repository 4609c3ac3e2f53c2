package bgp

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The observer builds its copy of each peer's Adj-RIB-In from a BMP
// (RFC 7854) route-monitoring stream that the embedded speaker sends to a
// loopback listener in the same process. BMP carries the routers' UPDATE
// messages as received, so decoding only the prefixes is cheap; reading
// the table through the gobgp API instead converts every path to protobuf,
// which for 100,000 routes costs seconds.

// BMP message types (RFC 7854 section 4.1).
const (
	bmpRouteMonitoring = 0
	bmpPeerDown        = 2
	bmpPeerUp          = 3
	bmpInitiation      = 4
	bmpInfoSysDescr    = 1 // Initiation information TLV type (RFC 7854 section 4.4)
	bmpCommonHeaderLen = 6
	bmpPeerHeaderLen   = 42
	bgpHeaderLen       = 19
)

// Size limits. Only a Route Monitoring message is kept whole, and it
// carries one BGP UPDATE; every other message is skipped past its per-peer
// header, so no buffer grows beyond maxRouteMonitoring.
const (
	// maxBGPMessage is the largest BGP message: 4,096 bytes (RFC 4271), or
	// 65,535 with the extended message capability (RFC 8654); the BGP
	// header's length field cannot say more.
	maxBGPMessage      = 65535
	maxRouteMonitoring = bmpCommonHeaderLen + bmpPeerHeaderLen + maxBGPMessage
	// maxBMPMessage bounds the others: a Peer Up, the largest, holds the
	// per-peer header, addresses and ports (20 bytes), the two OPENs and
	// a few information TLVs.
	maxBMPMessage = bmpCommonHeaderLen + bmpPeerHeaderLen + 20 + 2*maxBGPMessage + 4096
	// maxInitiation bounds the first message of a connection, which is
	// read before the token is checked (the speaker's is about 60 bytes).
	maxInitiation = 512
	// streamBufferSize is the read buffer of the identified stream (one at
	// a time): large reads keep a 100,000-route replay cheap.
	streamBufferSize = 256 << 10
)

// bmpSink receives what the stream says about a peer.
type bmpSink interface {
	// update applies one UPDATE's announced and withdrawn prefixes.
	update(peer netip.Addr, announced, withdrawn []netip.Prefix)
	// reset forgets a peer's routes (session up or down).
	reset(peer netip.Addr)
	// stream reports that a BMP stream started (err == nil; every table
	// is about to be replayed from empty) or ended with err.
	stream(err error)
}

// bmpReader reads BMP messages, reusing its buffers.
type bmpReader struct {
	br  *bufio.Reader
	hdr [bmpCommonHeaderLen]byte
	buf []byte
}

func newBMPReader(r io.Reader) *bmpReader {
	return &bmpReader{br: bufio.NewReaderSize(r, streamBufferSize), buf: make([]byte, 0, 8192)}
}

// next returns the next message's type and body (valid until the next
// call). The body of a Peer Up or Peer Down is cut to its per-peer header,
// and other messages but Route Monitoring come back with an empty body:
// nothing else is read.
func (m *bmpReader) next() (byte, []byte, error) {
	if _, err := io.ReadFull(m.br, m.hdr[:]); err != nil {
		return 0, nil, err
	}
	n, typ := int(binary.BigEndian.Uint32(m.hdr[1:5])), m.hdr[5]
	if m.hdr[0] != 3 || n < bmpCommonHeaderLen || n > maxBMPMessage {
		return 0, nil, fmt.Errorf("bmp: bad header (version %d, length %d)", m.hdr[0], n)
	}
	body := n - bmpCommonHeaderLen
	keep := 0
	switch typ {
	case bmpRouteMonitoring:
		if n > maxRouteMonitoring {
			return 0, nil, fmt.Errorf("bmp: route monitoring message of %d bytes; one BGP message makes at most %d", n, maxRouteMonitoring)
		}
		keep = body
	case bmpPeerUp, bmpPeerDown:
		keep = min(body, bmpPeerHeaderLen)
	}
	if cap(m.buf) < keep {
		m.buf = make([]byte, keep)
	}
	b := m.buf[:keep]
	if _, err := io.ReadFull(m.br, b); err != nil {
		return 0, nil, err
	}
	if _, err := m.br.Discard(body - keep); err != nil {
		return 0, nil, err
	}
	return typ, b, nil
}

// readInitiation reads the first message of a connection straight from r,
// into a buffer of at most maxInitiation bytes, and checks that it is an
// Initiation whose sysDescr is token. Nothing larger is allocated before
// the token has matched.
func readInitiation(r io.Reader, token string) error {
	var hdr [bmpCommonHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:5]))
	if hdr[0] != 3 || hdr[5] != bmpInitiation {
		return fmt.Errorf("first message is not a BMP Initiation (version %d, type %d)", hdr[0], hdr[5])
	}
	if n < bmpCommonHeaderLen || n > maxInitiation {
		return fmt.Errorf("initiation of %d bytes (at most %d)", n, maxInitiation)
	}
	var buf [maxInitiation]byte
	body := buf[:n-bmpCommonHeaderLen]
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	for len(body) >= 4 {
		t, l := binary.BigEndian.Uint16(body), int(binary.BigEndian.Uint16(body[2:]))
		if len(body) < 4+l {
			break
		}
		if t == bmpInfoSysDescr && subtle.ConstantTimeCompare(body[4:4+l], []byte(token)) == 1 {
			return nil
		}
		body = body[4+l:]
	}
	return errors.New("the Initiation does not carry this process's token")
}

// readBMP reads BMP messages from m until it fails or ends.
func readBMP(m *bmpReader, sink bmpSink) error {
	var ann, wd []netip.Prefix
	for {
		typ, body, err := m.next()
		if err != nil {
			return err
		}
		if typ != bmpRouteMonitoring && typ != bmpPeerDown && typ != bmpPeerUp {
			continue
		}
		if len(body) < bmpPeerHeaderLen {
			return errors.New("bmp: short per-peer header")
		}
		peer := bmpPeerAddr(body[:bmpPeerHeaderLen])
		switch typ {
		case bmpPeerUp, bmpPeerDown:
			sink.reset(peer)
		case bmpRouteMonitoring:
			ann, wd = ann[:0], wd[:0]
			var err error
			ann, wd, err = parseUpdate(body[bmpPeerHeaderLen:], ann, wd)
			if err != nil {
				return fmt.Errorf("bmp: peer %s: %w", peer, err)
			}
			sink.update(peer, ann, wd)
		}
	}
}

func bmpPeerAddr(h []byte) netip.Addr {
	raw := [16]byte(h[10:26])
	// RFC 7854 puts an IPv4 peer in the last 4 bytes with the V flag clear;
	// gobgp sets the V flag by the route's family, not the peer's, so an
	// IPv4 peer also shows as ::a.b.c.d (or ::ffff:a.b.c.d).
	if h[1]&0x80 == 0 || [12]byte(raw[:12]) == [12]byte{} {
		return netip.AddrFrom4([4]byte(raw[12:]))
	}
	return netip.AddrFrom16(raw).Unmap()
}

// parseUpdate appends an UPDATE's announced and withdrawn unicast prefixes
// (IPv4 in the body, IPv4/IPv6 in MP_REACH/MP_UNREACH), without decoding
// any other attribute.
func parseUpdate(m []byte, ann, wd []netip.Prefix) ([]netip.Prefix, []netip.Prefix, error) {
	if len(m) < bgpHeaderLen || m[18] != 2 {
		return ann, wd, nil // not an UPDATE
	}
	m = m[bgpHeaderLen:]
	if len(m) < 2 {
		return ann, wd, errors.New("short UPDATE")
	}
	wl := int(binary.BigEndian.Uint16(m))
	if len(m) < 2+wl+2 {
		return ann, wd, errors.New("bad withdrawn length")
	}
	var err error
	if wd, err = appendPrefixes(wd, m[2:2+wl], false); err != nil {
		return ann, wd, err
	}
	m = m[2+wl:]
	al := int(binary.BigEndian.Uint16(m))
	if len(m) < 2+al {
		return ann, wd, errors.New("bad attribute length")
	}
	attrs, nlri := m[2:2+al], m[2+al:]
	for len(attrs) >= 3 {
		flags, typ := attrs[0], attrs[1]
		hl, vl := 3, int(attrs[2])
		if flags&0x10 != 0 { // extended length
			if len(attrs) < 4 {
				return ann, wd, errors.New("short attribute")
			}
			hl, vl = 4, int(binary.BigEndian.Uint16(attrs[2:4]))
		}
		if len(attrs) < hl+vl {
			return ann, wd, errors.New("attribute overruns UPDATE")
		}
		v := attrs[hl : hl+vl]
		switch typ {
		case 14: // MP_REACH_NLRI: afi(2) safi(1) nhlen(1) nh reserved(1) nlri
			if len(v) >= 5 && v[2] == 1 {
				nh := int(v[3])
				if len(v) >= 5+nh {
					if ann, err = appendPrefixes(ann, v[5+nh:], binary.BigEndian.Uint16(v) == 2); err != nil {
						return ann, wd, err
					}
				}
			}
		case 15: // MP_UNREACH_NLRI: afi(2) safi(1) withdrawn
			if len(v) >= 3 && v[2] == 1 {
				if wd, err = appendPrefixes(wd, v[3:], binary.BigEndian.Uint16(v) == 2); err != nil {
					return ann, wd, err
				}
			}
		}
		attrs = attrs[hl+vl:]
	}
	ann, err = appendPrefixes(ann, nlri, false)
	return ann, wd, err
}

// appendPrefixes decodes RFC 4271 <length, prefix> NLRI encoding.
func appendPrefixes(out []netip.Prefix, b []byte, v6 bool) ([]netip.Prefix, error) {
	max := 32
	if v6 {
		max = 128
	}
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > max || len(b) < 1+n {
			return out, fmt.Errorf("bad prefix length %d", bits)
		}
		var a netip.Addr
		if v6 {
			var x [16]byte
			copy(x[:], b[1:1+n])
			a = netip.AddrFrom16(x)
		} else {
			var x [4]byte
			copy(x[:], b[1:1+n])
			a = netip.AddrFrom4(x)
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
		b = b[1+n:]
	}
	return out, nil
}

// bmpStation is the loopback listener the speaker's BMP client connects to.
// Any local process can connect to a loopback port, so a connection is
// taken only when its first message is an Initiation carrying a random
// token that only the speaker in this process was given (as its sysDescr);
// others are refused and logged. Until then a connection costs a goroutine
// and maxInitiation bytes, at most maxPendingConns of them wait at once (a
// new one pushes the oldest out, so idle connections cannot lock the
// speaker out), and each has handshakeTimeout to identify. gobgp's client
// reconnects after a drop and replays every table, so the station keeps
// accepting: each stream it takes replaces the one before and starts from
// empty tables. The identified stream has no idle deadline: the speaker
// is silent while no session is up, and it is the only writer.
type bmpStation struct {
	ln    net.Listener
	token string
	log   *slog.Logger
	wg    sync.WaitGroup // the accept loop and every handler

	streamMu sync.Mutex // held by the one reader feeding the sink
	mu       sync.Mutex
	conn     net.Conn   // the identified stream
	pending  []net.Conn // connections still identifying, oldest first
	ending   bool       // the observer is stopping: a stream end is expected
	closed   bool
	// Counters, for the log and the tests.
	accepted, refused, streams int
	maxPending                 int
}

// bmpStatsInterval (seconds) makes the speaker write a statistics report
// that often: gobgp notices a dropped stream only when a write fails, so
// without it a quiet network would never bring the stream back.
const bmpStatsInterval = 5

// handshakeTimeout bounds how long a new connection may take to identify;
// the speaker writes its Initiation as soon as it is connected.
const handshakeTimeout = 3 * time.Second

// maxPendingConns caps the connections waiting to identify. Only the
// speaker in this process should ever connect.
const maxPendingConns = 8

func newBMPStation(log *slog.Logger) (*bmpStation, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("bgp observer: bmp token: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bgp observer: bmp listener: %w", err)
	}
	return &bmpStation{ln: ln, token: hex.EncodeToString(tok), log: log}, nil
}

func (b *bmpStation) port() uint32 { return uint32(b.ln.Addr().(*net.TCPAddr).Port) }

// start accepts connections in the background until close.
func (b *bmpStation) start(sink bmpSink) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.serve(sink)
	}()
}

func (b *bmpStation) serve(sink bmpSink) {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			conn.Close()
			return
		}
		b.accepted++
		if len(b.pending) == maxPendingConns {
			// Its handler sees the read fail and counts it as refused.
			b.pending[0].Close()
			b.pending = append(b.pending[:0], b.pending[1:]...)
		}
		b.pending = append(b.pending, conn)
		b.maxPending = max(b.maxPending, len(b.pending))
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			b.handle(conn, sink)
		}()
	}
}

// handle identifies conn and, when it is the speaker's, feeds the sink
// from it until it ends.
func (b *bmpStation) handle(conn net.Conn, sink bmpSink) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	err := readInitiation(conn, b.token)
	b.mu.Lock()
	if i := slices.Index(b.pending, conn); i >= 0 {
		b.pending = slices.Delete(b.pending, i, i+1)
	} else if err == nil {
		err = errors.New("pushed out by newer connections")
	}
	if err != nil {
		b.refused++
		n := b.refused
		b.mu.Unlock()
		if n&(n-1) == 0 { // 1, 2, 4, 8 ...: a flood cannot flood the log
			b.log.Warn("bgp observer: refused a BMP connection that is not this process's speaker",
				"from", conn.RemoteAddr().String(), "reason", err, "refused_total", n)
		}
		return
	}
	if b.closed {
		b.mu.Unlock()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	old := b.conn
	b.conn = conn
	b.streams++
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	b.streamMu.Lock()
	defer b.streamMu.Unlock()
	sink.stream(nil)
	err = readBMP(newBMPReader(conn), sink)
	b.mu.Lock()
	current := b.conn == conn
	ending := b.ending || b.closed
	b.mu.Unlock()
	if !current || ending {
		return // replaced by a newer stream, or the observer is stopping
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	sink.stream(err)
}

// stopping marks the end of the speaker's stream as expected.
func (b *bmpStation) stopping() {
	b.mu.Lock()
	b.ending = true
	b.mu.Unlock()
}

// close stops accepting, closes every connection and waits for the
// handlers to return.
func (b *bmpStation) close() {
	b.ln.Close()
	b.mu.Lock()
	b.closed = true
	if b.conn != nil {
		b.conn.Close()
	}
	for _, c := range b.pending {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
