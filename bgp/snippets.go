package bgp

import (
	"fmt"
	"strings"
)

// routerSnippet is the configuration the router needs for the observer's
// session, in BIRD 2, FRR and a generic Cisco/Juniper-style form. The
// password is never filled in: the user knows it, the report must not.
func routerSnippet(t *Table, p *PeerStatus) string {
	obs := t.LocalAddress
	if obs == "" {
		obs = "<observer-address>"
	}
	birdPort, frrPort := "", ""
	if t.ListenPort > 0 && t.ListenPort != privilegedPort {
		// When the router dials, it must use the observer's port.
		birdPort = fmt.Sprintf(" port %d", t.ListenPort)
		frrPort = fmt.Sprintf("\n neighbor %s port %d", obs, t.ListenPort)
	}
	birdPassive := "  passive on;   # the observer dials; remove when the router should connect\n"
	frrPassive := fmt.Sprintf("\n neighbor %s passive", obs)
	if p.Passive {
		birdPassive, frrPassive = "", ""
	}
	fam := "ipv4"
	for _, f := range p.Families {
		if f.Family == FamilyIPv6Unicast {
			fam = "ipv4 + ipv6"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The router %s (AS %d) needs a neighbor for the observer %s (AS %d, %s):\n", p.Label(), p.ASN, obs, t.LocalASN, fam)
	fmt.Fprintf(&b, "# BIRD 2\nprotocol bgp vnodediag {\n  local as %d;\n  neighbor %s%s as %d;\n%s  # password \"<secret>\";   # when bgp.peers[].password is set\n  ipv4 { import none; export all; };\n}\n",
		p.ASN, obs, birdPort, t.LocalASN, birdPassive)
	fmt.Fprintf(&b, "# FRR\nrouter bgp %d\n no bgp ebgp-requires-policy\n neighbor %s remote-as %d%s%s\n ! neighbor %s password <secret>\n",
		p.ASN, obs, t.LocalASN, frrPort, frrPassive, obs)
	fmt.Fprintf(&b, "# Cisco IOS-style\nrouter bgp %d\n neighbor %s remote-as %d\n neighbor %s description vnodediag observer (read-only)\n ! neighbor %s password <secret>\n",
		p.ASN, obs, t.LocalASN, obs, obs)
	fmt.Fprintf(&b, "# Junos-style\nset protocols bgp group vnodediag type external peer-as %d neighbor %s\n# set protocols bgp group vnodediag authentication-key \"<secret>\"\n",
		t.LocalASN, obs)
	b.WriteString("Full examples: deploy/router/.")
	return b.String()
}
