package bgp

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// routerSnippets is the configuration the router needs for the observer's
// session, in BIRD 2, FRR, Cisco IOS and Junos form, built from the
// configured ASNs, the observer's address and its listen port. The password
// is never filled in: the user knows it, the report must not.
func routerSnippets(t *Table, p *PeerStatus) (intro string, snips []*pb.Snippet) {
	obs := t.LocalAddress
	if obs == "" {
		obs = "<observer-address>"
	}
	birdPort, frrPort, iosPort := "", "", ""
	if t.ListenPort > 0 && t.ListenPort != privilegedPort {
		// When the router dials, it must use the observer's port.
		birdPort = fmt.Sprintf(" port %d", t.ListenPort)
		frrPort = fmt.Sprintf("\n neighbor %s port %d", obs, t.ListenPort)
		iosPort = fmt.Sprintf("\n! the observer listens on port %d: IOS dials 179 only, so let the observer dial (bgp.peers[].passive: false)", t.ListenPort)
	}
	birdPassive := "  passive on;   # the observer dials; remove when the router should connect\n"
	frrPassive := fmt.Sprintf("\n neighbor %s passive", obs)
	junosPassive := "\nset protocols bgp group vnodediag passive"
	if p.Passive {
		birdPassive, frrPassive, junosPassive = "", "", ""
	}
	fam := "ipv4"
	birdChannels := "  ipv4 { import none; export all; };\n"
	for _, f := range p.Families {
		if f.Family == FamilyIPv6Unicast {
			fam = "ipv4 + ipv6"
			birdChannels += "  ipv6 { import none; export all; };\n"
		}
	}
	intro = fmt.Sprintf("The router %s (AS %d) needs a neighbor for the observer %s (AS %d, %s); its configuration is below, "+
		"full examples in deploy/router/.", p.Label(), p.ASN, obs, t.LocalASN, fam)
	snips = []*pb.Snippet{
		{Title: "BIRD 2: the observer's session", Language: "bird", Text: fmt.Sprintf(
			"protocol bgp vnodediag {\n  local as %d;\n  neighbor %s%s as %d;\n%s  # password \"<secret>\";   # when bgp.peers[].password is set\n%s}",
			p.ASN, obs, birdPort, t.LocalASN, birdPassive, birdChannels)},
		{Title: "FRR: the observer's session", Language: "frr", Text: fmt.Sprintf(
			"router bgp %d\n no bgp ebgp-requires-policy\n neighbor %s remote-as %d%s%s\n ! neighbor %s password <secret>",
			p.ASN, obs, t.LocalASN, frrPort, frrPassive, obs)},
		{Title: "Cisco IOS: the observer's session", Language: "ios", Text: fmt.Sprintf(
			"router bgp %d\n neighbor %s remote-as %d\n neighbor %s description vnodediag observer (read-only)\n ! neighbor %s password <secret>%s",
			p.ASN, obs, t.LocalASN, obs, obs, iosPort)},
		{Title: "Junos: the observer's session", Language: "junos", Text: fmt.Sprintf(
			"set protocols bgp group vnodediag type external\nset protocols bgp group vnodediag peer-as %d\nset protocols bgp group vnodediag neighbor %s%s\n# set protocols bgp group vnodediag authentication-key \"<secret>\"",
			t.LocalASN, obs, junosPassive)},
	}
	return intro, snips
}

// staticRoute is a route the on-prem router must originate: a podCIDR
// toward its node.
type staticRoute struct {
	prefix netip.Prefix
	via    string // the node's InternalIP, or a placeholder
}

// routerASN is the on-prem router's AS number when the configuration names
// one for every peer, else a placeholder.
func routerASN(t *Table) string {
	var asn uint32
	for _, p := range t.Peers {
		if asn != 0 && p.ASN != asn {
			return "<router-AS>"
		}
		asn = p.ASN
	}
	if asn == 0 {
		return "<router-AS>"
	}
	return fmt.Sprint(asn)
}

// advertiseSnippets originates routes from the on-prem router and exports
// them to BGP, in BIRD 2, FRR, Cisco IOS and Junos form; at most
// diag.ListLimit routes are written out.
func advertiseSnippets(t *Table, what string, routes []staticRoute) []*pb.Snippet {
	if len(routes) > diag.ListLimit {
		routes = routes[:diag.ListLimit]
	}
	asn := routerASN(t)
	var bird, frrStatic, frrNet, ios, iosNet, junos strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&bird, "  route %s via %s;\n", r.prefix, r.via)
		fmt.Fprintf(&frrStatic, "ip route %s %s\n", r.prefix, r.via)
		fmt.Fprintf(&frrNet, "  network %s\n", r.prefix)
		addr, mask := netMask(r.prefix)
		fmt.Fprintf(&ios, "ip route %s %s %s\n", addr, mask, r.via)
		fmt.Fprintf(&iosNet, " network %s mask %s\n", addr, mask)
		fmt.Fprintf(&junos, "set routing-options static route %s next-hop %s\n", r.prefix, r.via)
		fmt.Fprintf(&junos, "set policy-options policy-statement vnodediag-%s term routes from route-filter %s exact\n", what, r.prefix)
	}
	return []*pb.Snippet{
		{Title: "BIRD 2: originate the " + what + " and export them toward the VBR", Language: "bird", Text: fmt.Sprintf(
			"protocol static %s {\n  ipv4;\n%s}\n# in the BGP protocol toward the VBR:\n#   ipv4 { export where proto = \"%s\"; };", birdName(what), bird.String(), birdName(what))},
		{Title: "FRR: originate the " + what, Language: "frr", Text: fmt.Sprintf(
			"%srouter bgp %s\n address-family ipv4 unicast\n%s exit-address-family", frrStatic.String(), asn, frrNet.String())},
		{Title: "Cisco IOS: originate the " + what, Language: "ios", Text: fmt.Sprintf(
			"%srouter bgp %s\n%s", ios.String(), asn, strings.TrimSuffix(iosNet.String(), "\n"))},
		{Title: "Junos: originate the " + what, Language: "junos", Text: fmt.Sprintf(
			"%sset policy-options policy-statement vnodediag-%s term routes then accept\n# add vnodediag-%s to the export policy of the BGP group toward the VBR",
			junos.String(), what, what)},
	}
}

func birdName(what string) string { return strings.ReplaceAll(what, "-", "_") }

// netMask is a prefix as IOS writes it: address and dotted mask.
func netMask(p netip.Prefix) (string, string) {
	p = p.Masked()
	if !p.Addr().Is4() {
		return p.String(), ""
	}
	m := ^uint32(0) << (32 - p.Bits())
	if p.Bits() == 0 {
		m = 0
	}
	return p.Addr().String(), fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&0xff, m>>8&0xff, m&0xff)
}
