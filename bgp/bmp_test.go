package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
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
