// Package cloudnet holds the facts of Alibaba Cloud hybrid networking that
// several check families share: the 100.64.0.0/10 range where the cloud's
// service addresses live, the VPC DNS resolvers, and PrefixSet, which
// answers longest-match and coverage questions over a routing table.
package cloudnet

import (
	"fmt"
	"net/netip"
)

// CGNAT is 100.64.0.0/10, where Alibaba Cloud puts its service addresses
// (VPC DNS, OSS, SLS, RDS endpoints) and which must reach the leased line.
var CGNAT = netip.MustParsePrefix("100.64.0.0/10")

// VPCDNS are the VPC DNS resolvers every VPC has.
var VPCDNS = []netip.Addr{netip.MustParseAddr("100.100.2.136"), netip.MustParseAddr("100.100.2.138")}

// VPCDNSStrings is VPCDNS as strings, the form configuration defaults take.
func VPCDNSStrings() []string {
	out := make([]string, len(VPCDNS))
	for i, a := range VPCDNS {
		out[i] = a.String()
	}
	return out
}

// ParseAddr parses an IP address configured for a peer, resolver or route
// into its canonical form, so that one host has one spelling: IPv4-mapped
// IPv6 (::ffff:10.0.0.1) becomes IPv4. Zone-scoped addresses (fe80::1%eth0)
// are refused: a zone names an interface of this host only.
func ParseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone (%%%s): zone-scoped (link-local) addresses are not supported; use a global or unique-local address", s, a.Zone())
	}
	return a.Unmap(), nil
}
