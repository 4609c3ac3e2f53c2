package bgp

import (
	"bytes"
	"net/netip"
	"testing"
)

// fuzzToken is the station token the committed corpus was written with.
const fuzzToken = "00112233445566778899aabbccddeeff"

// checkSink checks every prefix a stream delivers.
type checkSink struct{ t *testing.T }

func (s checkSink) update(peer netip.Addr, ann, wd []netip.Prefix) {
	if !peer.IsValid() {
		s.t.Fatalf("invalid peer address")
	}
	checkPrefixes(s.t, ann)
	checkPrefixes(s.t, wd)
}
func (checkSink) reset(netip.Addr) {}
func (checkSink) stream(error)     {}

func checkPrefixes(t *testing.T, ps []netip.Prefix) {
	t.Helper()
	for _, p := range ps {
		if !p.IsValid() || p.Masked() != p {
			t.Fatalf("prefix %v is not a valid masked prefix", p)
		}
	}
}

// FuzzBMPStream feeds arbitrary bytes to what a BMP connection meets: the
// identification (read before any token is known) and the message reader
// and UPDATE decoder behind it. Nothing may panic, no buffer may grow past
// the largest message BMP carries, and every prefix is valid.
func FuzzBMPStream(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readInitiation(bytes.NewReader(b), fuzzToken)
		m := newBMPReader(bytes.NewReader(b))
		if err := readBMP(m, checkSink{t}); err == nil {
			t.Fatal("readBMP ended without an error")
		}
		if cap(m.buf) > maxRouteMonitoring {
			t.Fatalf("message buffer grew to %d bytes", cap(m.buf))
		}
	})
}

// FuzzParseUpdate feeds arbitrary BGP messages to the UPDATE prefix
// decoder: no panic, and only valid, masked prefixes come out.
func FuzzParseUpdate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ann, wd, _ := parseUpdate(b, nil, nil)
		checkPrefixes(t, ann)
		checkPrefixes(t, wd)
	})
}
