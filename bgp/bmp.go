package bgp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
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
	bmpCommonHeaderLen = 6
	bmpPeerHeaderLen   = 42
	bgpHeaderLen       = 19
	maxBMPMessage      = 1 << 20
)

// bmpSink receives what the stream says about a peer.
type bmpSink interface {
	// update applies one UPDATE's announced and withdrawn prefixes.
	update(peer netip.Addr, announced, withdrawn []netip.Prefix)
	// reset forgets a peer's routes (session up or down).
	reset(peer netip.Addr)
}

// readBMP reads BMP messages from r until it fails or ends.
func readBMP(r io.Reader, sink bmpSink) error {
	br := bufio.NewReaderSize(r, 256<<10)
	hdr := make([]byte, bmpCommonHeaderLen)
	buf := make([]byte, 0, 8192)
	var ann, wd []netip.Prefix
	for {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:5]))
		if hdr[0] != 3 || n < bmpCommonHeaderLen || n > maxBMPMessage {
			return fmt.Errorf("bmp: bad header (version %d, length %d)", hdr[0], n)
		}
		if cap(buf) < n-bmpCommonHeaderLen {
			buf = make([]byte, n-bmpCommonHeaderLen)
		}
		body := buf[:n-bmpCommonHeaderLen]
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		typ := hdr[5]
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
type bmpStation struct {
	ln   net.Listener
	mu   sync.Mutex
	conn net.Conn
}

func newBMPStation() (*bmpStation, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bgp observer: bmp listener: %w", err)
	}
	return &bmpStation{ln: ln}, nil
}

func (b *bmpStation) port() uint32 { return uint32(b.ln.Addr().(*net.TCPAddr).Port) }

// serve accepts the one connection of the speaker and reads it; it
// returns when the connection or the listener closes.
func (b *bmpStation) serve(sink bmpSink) error {
	conn, err := b.ln.Accept()
	b.ln.Close()
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.conn = conn
	b.mu.Unlock()
	defer conn.Close()
	return readBMP(conn, sink)
}

func (b *bmpStation) close() {
	b.ln.Close()
	b.mu.Lock()
	if b.conn != nil {
		b.conn.Close()
	}
	b.mu.Unlock()
}
