package cloud

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const tVBR = "vbr-uf6line"

func toLine() NextHop {
	return NextHop{Type: "PhysicalConnectionInterface", ID: "pc-uf6line", Enabled: true}
}

func toVRouter() NextHop {
	return NextHop{Type: "RouterInterface", ID: "ri-uf6tovpc", OppositeType: "VRouter", OppositeID: "vrt-uf6test", Enabled: true}
}

// leasedSnapshot is snapshot() with one VBR of learned routes, its peer
// and its networks.
func leasedSnapshot(instances []*Instance, vbrRoutes []RouteEntry, nets []string, tables ...*RouteTable) *Snapshot {
	s := snapshot(instances, tables...)
	s.VBRs = []*VBR{{ID: tVBR, Status: "active", LocalGatewayIP: "10.254.255.1", PeerGatewayIP: "10.254.255.2",
		Table: &RouteTable{ID: "vtb-uf6line", RouterType: "VBR", RouterID: tVBR, Entries: vbrRoutes}}}
	s.BGPPeers = []BGPPeer{{ID: "bgp-uf6peer", VBRID: tVBR, PeerIP: "10.254.255.2", PeerASN: 65001, LocalASN: 45104, BGPStatus: "Established", Status: "Available"}}
	for _, n := range nets {
		s.BGPNetworks = append(s.BGPNetworks, BGPNetwork{VBRID: tVBR, VPCID: tVPC, Status: "Available", Dest: netip.MustParsePrefix(n)})
	}
	return s
}

// observer is a BGP table as the observer would have it: routes by peer.
func observer(routes map[string][]string) *bgp.Table {
	t := &bgp.Table{Peers: []bgp.PeerStatus{{Name: "onprem", Address: netip.MustParseAddr("10.0.0.1"), ASN: 65001, State: "ESTABLISHED"}}}
	for peer, ps := range routes {
		for _, p := range ps {
			t.Routes = append(t.Routes, bgp.Route{Prefix: netip.MustParsePrefix(p), Peer: peer})
		}
	}
	return t
}

// rowsOf is the path table's verdict per prefix: "172.21.0.0/24=ok".
func rowsOf(s *Snapshot, nodes []*corev1.Node, tbl *bgp.Table) map[string]string {
	out := map[string]string{}
	for _, r := range pathRows(s, nodes, s.VBRs, tbl) {
		v := "ok"
		if r.lost >= 0 {
			v = "lost@" + hopNames[r.lost]
		}
		out[r.prefix.String()] = v
	}
	return out
}

// TestPathTable is the three-way comparison: each prefix against the
// observer's table, the VBR and the VPC route tables, lost at the first
// hop of its direction that lacks it.
func TestPathTable(t *testing.T) {
	nodes := []*corev1.Node{
		onPremNode("dc-ok", "172.21.0.0/24"),
		onPremNode("dc-norouter", "172.21.1.0/24"),
		onPremNode("dc-novbr", "172.21.2.0/24"),
		onPremNode("dc-novpc", "172.21.3.0/24"),
		onPremNode("dc-aggregate", "172.21.4.0/24"),
		testECSNode("ecs-ok", tI1, "172.22.0.0/24", "192.168.0.11"),
		testECSNode("ecs-novpc", tI2, "172.22.1.0/24", "192.168.1.12"),
		testECSNode("ecs-norouter", tI3, "172.22.2.0/24", "192.168.0.13"),
	}
	ins := []*Instance{inst(tI1, tVswA, "192.168.0.11"), inst(tI2, tVswB, "192.168.1.12"), inst(tI3, tVswA, "192.168.0.13")}
	vpcRoutes := []RouteEntry{
		route("172.21.0.0/24", "BGP", toVBR()), route("172.21.1.0/24", "BGP", toVBR()), route("172.21.2.0/24", "BGP", toVBR()),
		route("172.21.4.0/22", "BGP", toVBR()), route("0.0.0.0/0", "Custom", hop("NatGateway", "ngw-1")),
		route("172.22.0.0/24", "Custom", toInst(tI1)), route("172.22.2.0/24", "Custom", toInst(tI3)),
	}
	sys := sysTable(append(vpcRoutes, route("172.22.1.0/24", "Custom", toInst(tI2)))...)
	custom := customTable(vpcRoutes...) // lacks ecs-novpc's route
	vbr := []RouteEntry{
		route("172.21.0.0/24", "BGP", toLine()), route("172.21.1.0/24", "BGP", toLine()), route("172.21.3.0/24", "BGP", toLine()),
		route("172.21.4.0/22", "BGP", toLine()), route("192.168.0.0/16", "Custom", toVRouter()),
		// A route back into the VPC does not count as learned from on-prem.
		route("172.21.2.0/24", "Custom", toVRouter()),
	}
	s := leasedSnapshot(ins, vbr, []string{"192.168.0.0/16", "172.22.0.0/16"}, sys, custom)
	tbl := observer(map[string][]string{
		"onprem": {"172.21.0.0/24", "172.21.2.0/24", "172.21.3.0/24", "172.21.4.0/22", "192.168.0.0/16", "172.22.0.0/24", "172.22.1.0/24"},
	})
	want := map[string]string{
		"172.21.0.0/24":  "ok",
		"172.21.1.0/24":  "lost@on-prem router",
		"172.21.2.0/24":  "lost@VBR",
		"172.21.3.0/24":  "lost@VPC route tables",
		"172.21.4.0/24":  "ok", // aggregates at every hop
		"192.168.0.0/16": "ok",
		"172.22.0.0/24":  "ok",
		"172.22.1.0/24":  "lost@VPC route tables",
		"172.22.2.0/24":  "lost@on-prem router",
	}
	got := rowsOf(s, nodes, tbl)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %s, want %s", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("rows %v", got)
	}

	r := pathTable(s, nodes, s.VBRs, "test", tbl)
	if r.Status != pb.Status_FAIL || !strings.HasPrefix(r.Summary, "5 of 9 prefixes do not cross the leased line: 172.21.1.0/24 (dc-norouter) at the on-prem router") {
		t.Fatalf("%s", diagtest.Dump([]*pb.Result{r}))
	}
	table := r.Evidence[0].Observed
	if !strings.HasPrefix(table, "\n  prefix") || !containsAll(table, "172.21.4.0/24", "from onprem (172.21.4.0/22)", "learned by BGP (172.21.4.0/22)", "advertised (172.22.0.0/16)",
		"MISSING in vtb-uf6custom000001", "LOST at on-prem router") {
		t.Errorf("table:%s", table)
	}
	for _, line := range strings.Split(table, "\n")[1:] {
		if !strings.HasPrefix(line, "  ") {
			t.Errorf("line %q is not indented: the renderer would wrap it", line)
		}
	}
	d := diagtest.Dump([]*pb.Result{r})
	if !containsAll(d, "172.22.2.0/24 (ecs-norouter): want at every hop got lost at the on-prem router: MISSING; the VBR advertises it, so the on-prem router's import policy",
		"Advertise 172.21.1.0/24 from the on-prem router over BGP", "accept it in the router's import policy from the VBR") {
		t.Errorf("%s", d)
	}

	// Without the bgp section the router hop is unknown: on-prem
	// prefixes are judged from the VBR on, cloud prefixes up to it.
	got = rowsOf(s, nodes, nil)
	if got["172.21.1.0/24"] != "ok" || got["172.22.2.0/24"] != "ok" || got["172.21.3.0/24"] != "lost@VPC route tables" || got["172.21.2.0/24"] != "lost@VBR" {
		t.Errorf("without bgp: %v", got)
	}
	// A VBR whose table was not read is unknown, never lost.
	s.VBRs[0].Table = nil
	got = rowsOf(s, nodes, tbl)
	if got["172.21.2.0/24"] != "ok" || got["172.21.3.0/24"] != "lost@VPC route tables" {
		t.Errorf("VBR table unread: %v", got)
	}
}

func TestPathTableAllGood(t *testing.T) {
	nodes := []*corev1.Node{onPremNode("dc-1", "172.21.0.0/24"), testECSNode("ecs-1", tI1, "172.22.0.0/24", "192.168.0.11")}
	s := leasedSnapshot([]*Instance{inst(tI1, tVswA, "192.168.0.11")},
		[]RouteEntry{route("172.21.0.0/24", "BGP", toLine())}, []string{"192.168.0.0/16", "172.22.0.0/24"},
		sysTable(route("172.21.0.0/24", "BGP", toVBR()), route("172.22.0.0/24", "Custom", toInst(tI1))))
	tbl := observer(map[string][]string{"onprem": {"172.21.0.0/24"}, "vbr": {"192.168.0.0/16", "172.22.0.0/24"}})
	rs := evalVBRBGP(s, nodes, tbl)
	if diagtest.StatusNames(rs) != "PASS,PASS" || !strings.Contains(rs[1].Summary, "all 3 prefixes cross the leased line at every hop") {
		t.Errorf("%s", diagtest.Dump(rs))
	}
}

// TestLeasedLineVBRs: which VBRs are judged.
func TestLeasedLineVBRs(t *testing.T) {
	s := leasedSnapshot(nil, nil, nil, sysTable(route("10.0.0.0/8", "Custom", toVBR())))
	s.VBRs = append(s.VBRs, &VBR{ID: "vbr-uf6other"}, &VBR{ID: "vbr-uf6peered"})
	s.BGPPeers = append(s.BGPPeers, BGPPeer{ID: "bgp-2", VBRID: "vbr-uf6peered", PeerIP: "10.0.0.1"})
	// toVBR() names tVBR: the route makes it a VBR of the cluster.
	vbrs, how, _ := leasedLineVBRs(s, nil)
	if len(vbrs) != 1 || vbrs[0].ID != tVBR || !strings.Contains(how, "next hop of "+tSys) {
		t.Errorf("from routes: %v %q", vbrs, how)
	}
	vbrs, how, _ = leasedLineVBRs(s, observer(nil))
	if len(vbrs) != 2 || vbrs[1].ID != "vbr-uf6peered" || !strings.Contains(how, "peers with onprem") {
		t.Errorf("from the observer's peers: %v %q", vbrs, how)
	}
	s.Expect.VBRIDs = []string{"vbr-uf6other", "vbr-uf6gone"}
	vbrs, how, missing := leasedLineVBRs(s, nil)
	if len(vbrs) != 1 || vbrs[0].ID != "vbr-uf6other" || how != "cloud.vbrIds" || len(missing) != 1 || missing[0] != "vbr-uf6gone" {
		t.Errorf("configured: %v %q %v", vbrs, how, missing)
	}
	// None at all: SKIP with the way to name them.
	empty := snapshot(nil, sysTable())
	if r := evalVBRBGP(empty, nil, nil); diagtest.StatusNames(r) != "SKIP" || !strings.Contains(r[0].Summary, "set cloud.vbrIds") {
		t.Errorf("%s", diagtest.Dump(r))
	}
}

func TestPeerResults(t *testing.T) {
	s := leasedSnapshot(nil, nil, nil, sysTable())
	v := s.VBRs[0]
	cases := []struct {
		peer   BGPPeer
		asn    uint32
		tbl    *bgp.Table
		status pb.Status
		sub    string
	}{
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.254.255.2", PeerASN: 65001, BGPStatus: "Established"}, 0, nil, pb.Status_PASS, "is Established"},
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.254.255.2", PeerASN: 65001, BGPStatus: "Idle"}, 0, nil, pb.Status_FAIL, "is Idle, not Established"},
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.254.255.2", PeerASN: 65002, BGPStatus: "Established"}, 65001, nil, pb.Status_FAIL, "has peer AS 65002, but the on-prem router is AS 65001"},
		// The expected AS comes from the bgp section without cloud.onPremASN.
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.254.255.2", PeerASN: 65002, BGPStatus: "Established"}, 0, observer(nil), pb.Status_FAIL, "but the on-prem router is AS 65001"},
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.9.9.9", PeerASN: 65001, BGPStatus: "Established"}, 0, nil, pb.Status_WARN, "peers with 10.9.9.9, not the VBR's on-prem gateway 10.254.255.2"},
		// A loopback the observer peers with too is the router.
		{BGPPeer{ID: "p", VBRID: tVBR, PeerIP: "10.0.0.1", PeerASN: 65001, BGPStatus: "Established"}, 0, observer(nil), pb.Status_PASS, "is Established"},
	}
	for _, c := range cases {
		s.BGPPeers = []BGPPeer{c.peer}
		s.Expect.OnPremASN = c.asn
		rs := peerResults(s, v, c.tbl)
		if len(rs) != 1 || rs[0].Status != c.status || !strings.Contains(rs[0].Summary, c.sub) {
			t.Errorf("%+v: %s", c.peer, diagtest.Dump(rs))
		}
	}
	s.BGPPeers = nil
	if rs := peerResults(s, v, nil); rs[0].Status != pb.Status_WARN || !strings.Contains(rs[0].Summary, "has no BGP peer") {
		t.Errorf("no peer: %s", diagtest.Dump(rs))
	}
}
