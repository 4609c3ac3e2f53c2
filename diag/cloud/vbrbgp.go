package cloud

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// evalVBRBGP is cloud.vbr-bgp: for each VBR of the leased line, every BGP
// peer is Established with the expected AS and address; then one table of
// every prefix that must cross the line, hop by hop — on-prem prefixes
// (on-prem pod CIDRs, cloud.onPremCIDRs) from the on-prem router (as the
// BGP observer received them, when the bgp section is configured) to the
// VBR's learned routes to the VPC route tables; cloud prefixes (VPC CIDRs,
// ECS pod CIDRs) from the VPC route tables to the VBR's advertised
// networks to the on-prem router. A prefix that disappears FAILs at the
// first hop that lacks it. tbl is nil without the bgp section.
func evalVBRBGP(s *Snapshot, nodes []*corev1.Node, tbl *bgp.Table) []*pb.Result {
	for _, p := range []Part{PartVBRs, PartBGPPeers, PartBGPNetworks} {
		if e := s.Errors[p]; e != nil {
			return []*pb.Result{partResult(e)}
		}
	}
	vbrs, how, missing := leasedLineVBRs(s, tbl)
	var out []*pb.Result
	for _, id := range missing {
		r := diag.Fail("VBR %s (cloud.vbrIds) does not exist in %s, or the RAM policy hides it", id, s.Region)
		r.Objects = []*pb.Object{diag.Obj("VirtualBorderRouter", "", id)}
		r.Evidence = []*pb.Evidence{diag.Ev("VBR "+id, "listed by DescribeVirtualBorderRouters", "not listed")}
		r.Remediation = fmt.Sprintf("Correct cloud.vbrIds (Express Connect console > Virtual Border Routers, region %s; aliyun vpc DescribeVirtualBorderRouters --RegionId %s), "+
			"or allow vpc:DescribeVirtualBorderRouters on it.", s.Region, s.Region)
		out = append(out, r)
	}
	if len(vbrs) == 0 {
		if len(out) > 0 {
			return out
		}
		return []*pb.Result{diag.Skip("no VBR of %s serves VPC %s: none advertises a network of it, none is a next hop of its route tables%s; set cloud.vbrIds",
			s.Region, s.VPCID, map[bool]string{true: ", none peers with the bgp section's routers", false: ""}[tbl != nil])}
	}
	for _, v := range vbrs {
		out = append(out, peerResults(s, v, tbl)...)
	}
	return append(out, pathTable(s, nodes, vbrs, how, tbl))
}

// leasedLineVBRs are the VBRs the checks judge: cloud.vbrIds, else those
// that advertise a network of the VPC, that the VPC's route tables route to,
// or whose BGP peers are the bgp section's routers. missing are configured
// IDs that were not listed.
func leasedLineVBRs(s *Snapshot, tbl *bgp.Table) (vbrs []*VBR, how string, missing []string) {
	byID := map[string]*VBR{}
	for _, v := range s.VBRs {
		byID[v.ID] = v
	}
	if ids := s.Expect.VBRIDs; len(ids) > 0 {
		for _, id := range ids {
			if v := byID[id]; v != nil {
				vbrs = append(vbrs, v)
			} else {
				missing = append(missing, id)
			}
		}
		return vbrs, "cloud.vbrIds", missing
	}
	why := map[string][]string{}
	for _, n := range s.BGPNetworks {
		if n.VPCID == s.VPCID && s.VPCID != "" {
			why[n.VBRID] = append(why[n.VBRID], "advertises "+n.Dest.String())
		}
	}
	for _, t := range s.Tables {
		for _, e := range t.Entries {
			for _, h := range e.NextHops {
				if isVBRHop(h) {
					why[h.OppositeID] = append(why[h.OppositeID], "next hop of "+t.ID)
				}
			}
		}
	}
	if tbl != nil {
		for _, p := range s.BGPPeers {
			for _, op := range tbl.Peers {
				if op.Address.String() == p.PeerIP {
					why[p.VBRID] = append(why[p.VBRID], "peers with "+op.Label())
				}
			}
		}
	}
	var reasons []string
	for id, w := range why {
		if v := byID[id]; v != nil {
			vbrs = append(vbrs, v)
			reasons = append(reasons, id+": "+strings.Join(dedupe(w), ", "))
		}
	}
	sort.Slice(vbrs, func(i, j int) bool { return vbrs[i].ID < vbrs[j].ID })
	sort.Strings(reasons)
	return vbrs, strings.Join(reasons, "; "), nil
}

// isVBRHop reports a VPC next hop toward a VBR.
func isVBRHop(h NextHop) bool {
	return h.Type == "RouterInterface" && (h.OppositeType == "VirtualBorderRouter" || h.OppositeType == "VBR") && h.OppositeID != ""
}

// expectedASNs is the AS every VBR peer must have: cloud.onPremASN, else
// the ASNs of the bgp section's peers; nil when neither says.
func expectedASNs(s *Snapshot, tbl *bgp.Table) []uint32 {
	if s.Expect.OnPremASN != 0 {
		return []uint32{s.Expect.OnPremASN}
	}
	var out []uint32
	if tbl != nil {
		for _, p := range tbl.Peers {
			if !slices.Contains(out, p.ASN) {
				out = append(out, p.ASN)
			}
		}
	}
	return out
}

// peerResults judges the BGP peers of one VBR.
func peerResults(s *Snapshot, v *VBR, tbl *bgp.Table) []*pb.Result {
	obj := diag.Obj("VirtualBorderRouter", "", v.ID)
	var peers []BGPPeer
	for _, p := range s.BGPPeers {
		if p.VBRID == v.ID {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 {
		r := diag.Warn("VBR %s has no BGP peer: routes cross the leased line only by static routes", v.ID)
		r.Objects = []*pb.Object{obj}
		r.Remediation = fmt.Sprintf("Configure BGP on the VBR (Express Connect console > Virtual Border Routers > %s > BGP Peers > Add BGP Peer, peer IP %s), "+
			"as the hybrid-cluster FAQ recommends, or keep the static routes in step by hand.", v.ID, v.PeerGatewayIP)
		return []*pb.Result{r}
	}
	asns := expectedASNs(s, tbl)
	var observerAddrs []string
	if tbl != nil {
		for _, op := range tbl.Peers {
			observerAddrs = append(observerAddrs, op.Address.String())
		}
	}
	var out []*pb.Result
	for _, p := range peers {
		objs := []*pb.Object{obj, diag.Obj("BGPPeer", "", p.ID)}
		var problems, fixes []string
		ev := []*pb.Evidence{diag.Ev("BGP status", "Established", p.BGPStatus)}
		status := pb.Status_PASS
		if p.BGPStatus != "Established" {
			status = pb.Status_FAIL
			problems = append(problems, "is "+orNone(p.BGPStatus)+", not Established")
			fixes = append(fixes, fmt.Sprintf("On the on-prem router, the neighbor %s remote-as %d must be configured on the interface with %s (the VBR's on-prem gateway), "+
				"with the same MD5 key as the peer; the router's log names the NOTIFICATION if it refuses the session.", v.LocalGatewayIP, p.LocalASN, p.PeerIP))
		}
		if len(asns) > 0 && !slices.Contains(asns, p.PeerASN) {
			status = pb.Status_FAIL
			want := make([]string, len(asns))
			for i, a := range asns {
				want[i] = fmt.Sprint(a)
			}
			problems = append(problems, fmt.Sprintf("has peer AS %d, but the on-prem router is AS %s", p.PeerASN, strings.Join(want, " or ")))
			ev = append(ev, diag.Ev("peer AS", strings.Join(want, " or "), fmt.Sprint(p.PeerASN)))
			fixes = append(fixes, fmt.Sprintf("aliyun vpc ModifyBgpPeerAttribute --RegionId %s --BgpPeerId %s --PeerAsn %s (Express Connect console > Virtual Border Routers > %s > BGP Peers > Edit).",
				s.Region, p.ID, want[0], v.ID))
		}
		if v.PeerGatewayIP != "" && p.PeerIP != v.PeerGatewayIP && !slices.Contains(observerAddrs, p.PeerIP) {
			if status == pb.Status_PASS {
				status = pb.Status_WARN
			}
			problems = append(problems, fmt.Sprintf("peers with %s, not the VBR's on-prem gateway %s", p.PeerIP, v.PeerGatewayIP))
			ev = append(ev, diag.Ev("peer IP", v.PeerGatewayIP, p.PeerIP))
			fixes = append(fixes, "A peer address other than the on-prem gateway needs multihop on both sides; if that is not intended, "+
				fmt.Sprintf("aliyun vpc ModifyBgpPeerAttribute --RegionId %s --BgpPeerId %s --PeerIpAddress %s.", s.Region, p.ID, v.PeerGatewayIP))
		}
		label := fmt.Sprintf("VBR %s BGP peer %s (%s, AS %d)", v.ID, p.ID, p.PeerIP, p.PeerASN)
		var r *pb.Result
		if status == pb.Status_PASS {
			r = diag.Pass("%s is Established (%d routes received, %d advertised)", label, p.Received, p.Advertised)
		} else {
			r = diag.Res(status, "%s %s", label, strings.Join(problems, "; "))
			r.Remediation = strings.Join(fixes, " ")
		}
		r.Objects, r.Evidence = objs, ev
		out = append(out, r)
	}
	return out
}

// The hops of the path table, in column order.
const (
	hopRouter = iota
	hopVBR
	hopVPC
	hops
)

var hopNames = [hops]string{"on-prem router", "VBR", "VPC route tables"}

// cell is one hop of one prefix.
type cell struct {
	state int // present, absent or unknown
	text  string
}

const (
	present = iota
	absent
	unknown
)

// pathRow is one prefix of the path table.
type pathRow struct {
	prefix netip.Prefix
	origin string // on-prem or cloud
	who    string
	cells  [hops]cell
	lost   int // the first hop (in the prefix's direction) that lacks it; -1: none
}

// order is the hops a prefix crosses: on-prem prefixes from the router to
// the VPC, cloud prefixes from the VPC to the router.
func (r *pathRow) order() []int {
	if r.origin == "on-prem" {
		return []int{hopRouter, hopVBR, hopVPC}
	}
	return []int{hopVPC, hopVBR, hopRouter}
}

// pathTable is the hop-by-hop result: one result whose evidence is the
// table, and one line per lost prefix.
func pathTable(s *Snapshot, nodes []*corev1.Node, vbrs []*VBR, how string, tbl *bgp.Table) *pb.Result {
	rows := pathRows(s, nodes, vbrs, tbl)
	var lost []*pathRow
	for i := range rows {
		if rows[i].lost >= 0 {
			lost = append(lost, &rows[i])
		}
	}
	ids := make([]string, len(vbrs))
	for i, v := range vbrs {
		ids[i] = v.ID
	}
	router := "the on-prem router (as the BGP observer received it)"
	if tbl == nil {
		router = "the on-prem router (not seen: no bgp section)"
	}
	tableEv := diag.Ev(fmt.Sprintf("prefixes across the leased line: %s | VBR %s | VPC %s route tables", router, strings.Join(ids, ", "), s.VPCID),
		"", renderPathTable(rows, tbl != nil))
	var r *pb.Result
	if len(lost) == 0 {
		r = diag.Pass("all %d prefixes cross the leased line at every hop (VBR %s)", len(rows), strings.Join(ids, ", "))
		r.Evidence = []*pb.Evidence{tableEv, diag.Ev("VBRs judged", "", how)}
		return r
	}
	var names, fixes []string
	seen := map[string]bool{}
	r = diag.Fail("")
	r.Evidence = []*pb.Evidence{tableEv}
	for _, row := range lost {
		why := lostWhy(row)
		names = append(names, fmt.Sprintf("%s (%s) at the %s", row.prefix, row.who, hopNames[row.lost]))
		if len(r.Evidence) <= diag.ListLimit {
			r.Evidence = append(r.Evidence, diag.Ev(fmt.Sprintf("%s (%s)", row.prefix, row.who), "at every hop", "lost at the "+hopNames[row.lost]+": "+why))
		}
		if f := pathFix(s, row, vbrs); !seen[f] {
			seen[f] = true
			fixes = append(fixes, f)
		}
		r.Objects = append(r.Objects, diag.Obj("Prefix", "", row.prefix.String()))
	}
	r.Summary = fmt.Sprintf("%d of %d prefixes do not cross the leased line: %s", len(lost), len(rows), diag.JoinFirst(names, 5))
	r.Evidence = append(r.Evidence, diag.Ev("VBRs judged", "", how))
	r.Remediation = strings.Join(fixes, " ")
	return r
}

// lostWhy is what the first missing hop shows, with the import-policy
// diagnosis for a cloud prefix the VBR advertises but the router lacks.
func lostWhy(row *pathRow) string {
	why := row.cells[row.lost].text
	if row.origin == "cloud" && row.lost == hopRouter && row.cells[hopVBR].state == present {
		why += "; the VBR advertises it, so the on-prem router's import policy toward the VBR (or its export to the observer) filters it"
	}
	if row.prefix.Overlaps(cloudnet.CGNAT) {
		why += "; it overlaps 100.64.0.0/10 (see k8s.podcidr-overlap)"
	}
	return why
}

// pathFix is the fix for one lost prefix, by the hop that lost it.
func pathFix(s *Snapshot, row *pathRow, vbrs []*VBR) string {
	p := row.prefix
	switch {
	case row.origin == "on-prem" && row.lost == hopRouter:
		return fmt.Sprintf("Advertise %s from the on-prem router over BGP (see bgp.podcidr-advertised).", p)
	case row.origin == "on-prem" && row.lost == hopVBR:
		has := "The on-prem router has %s but the VBR did not learn it"
		if row.cells[hopRouter].state == unknown {
			has = "The VBR did not learn %s"
		}
		return fmt.Sprintf(has+": advertise it to the VBR (the router's export policy toward neighbor %s), and mind the VBR peer's limit of 110 routes.",
			p, vbrs[0].LocalGatewayIP)
	case row.origin == "on-prem":
		return fmt.Sprintf("The VBR learned %s but the VPC does not route it to the leased line: see cloud.vpc-onprem-routes for the route to add.", p)
	case row.lost == hopVPC:
		return fmt.Sprintf("The VPC route tables do not all route %s: see cloud.vpc-pod-routes.", p)
	case row.lost == hopVBR:
		return fmt.Sprintf("Advertise %s from the VBR: aliyun vpc AddBgpNetwork --RegionId %s --RouterId %s --DstCidrBlock %s "+
			"(Express Connect console > Virtual Border Routers > %s > BGP Networks > Advertise BGP Network).", p, s.Region, vbrs[0].ID, p, vbrs[0].ID)
	}
	return fmt.Sprintf("The VBR advertises %s but the on-prem router does not have it: accept it in the router's import policy from the VBR (and export it to the observer).", p)
}

// pathRows builds the rows: on-prem pod CIDRs and networks, then the VPC
// CIDRs and ECS pod CIDRs, each with its hops.
func pathRows(s *Snapshot, nodes []*corev1.Node, vbrs []*VBR, tbl *bgp.Table) []pathRow {
	var rows []pathRow
	seen := map[netip.Prefix]int{}
	add := func(p netip.Prefix, origin, who string) {
		if i, ok := seen[p]; ok {
			rows[i].who += ", " + who
			return
		}
		seen[p] = len(rows)
		rows = append(rows, pathRow{prefix: p, origin: origin, who: who, lost: -1})
	}
	for _, n := range nodes {
		if kube.ClassOf(n) == kube.ClassOnPrem {
			for _, c := range kube.PodCIDRs(n) {
				add(c, "on-prem", n.Name)
			}
		}
	}
	for _, c := range s.OnPremCIDRs {
		add(c, "on-prem", "cloud.onPremCIDRs")
	}
	if s.VPC != nil {
		for _, c := range append([]string{s.VPC.CIDR}, s.VPC.SecondaryCIDRs...) {
			if p, err := netip.ParsePrefix(c); err == nil {
				add(p.Masked(), "cloud", "VPC CIDR")
			}
		}
	}
	ecs := ecsNodes(s, nodes)
	instanceOf := map[netip.Prefix]string{}
	for _, n := range ecs {
		if n.inst != nil && n.inst.VPCID == s.VPCID {
			for _, c := range kube.PodCIDRs(n.node) {
				add(c, "cloud", n.node.Name)
				instanceOf[c] = n.inst.ID
			}
		}
	}
	tables, _ := clusterTables(s, ecs)
	if len(tables) == 0 {
		for _, t := range s.Tables {
			if t.AssociateType != "Gateway" {
				tables = append(tables, t)
			}
		}
	}
	var ixs []*tableIndex
	for _, t := range tables {
		if t.EntriesErr == nil {
			ixs = append(ixs, indexTable(t))
		}
	}
	for i := range rows {
		r := &rows[i]
		r.cells[hopRouter] = routerCell(r.prefix, tbl)
		if r.origin == "on-prem" {
			r.cells[hopVBR] = vbrLearned(r.prefix, vbrs)
			r.cells[hopVPC] = vpcToLine(r.prefix, ixs)
		} else {
			r.cells[hopVBR] = vbrAdvertises(r.prefix, vbrs, s.BGPNetworks)
			r.cells[hopVPC] = vpcHas(r.prefix, instanceOf[r.prefix], ixs)
		}
		for _, h := range r.order() {
			if r.cells[h].state == absent {
				r.lost = h
				break
			}
		}
	}
	return rows
}

// routerCell: the observer holds a route covering p.
func routerCell(p netip.Prefix, tbl *bgp.Table) cell {
	if tbl == nil {
		return cell{unknown, "-"}
	}
	i, match, ok := tbl.Set().Longest(p)
	if !ok {
		return cell{absent, "MISSING"}
	}
	c := cell{present, "from " + tbl.Routes[i].Peer}
	if match != p {
		c.text += " (" + match.String() + ")"
	}
	return c
}

// vbrLearned: a VBR's route table routes p toward on-prem (not back into
// the VPC).
func vbrLearned(p netip.Prefix, vbrs []*VBR) cell {
	unread := false
	for _, v := range vbrs {
		if v.Table == nil {
			unread = true
			continue
		}
		e := indexTable(v.Table).longest(p)
		if e == nil || slices.ContainsFunc(e.NextHops, func(h NextHop) bool { return h.Type == "RouterInterface" && h.OppositeType == "VRouter" }) {
			continue
		}
		kind := "static"
		if e.Type == "BGP" {
			kind = "learned by BGP"
		}
		if e.Dest != p {
			kind += " (" + e.Dest.String() + ")"
		}
		return cell{present, kind}
	}
	if unread {
		return cell{unknown, "table not read"}
	}
	return cell{absent, "MISSING"}
}

// vbrAdvertises: a VBR advertises a network covering p.
func vbrAdvertises(p netip.Prefix, vbrs []*VBR, nets []BGPNetwork) cell {
	for _, n := range nets {
		if n.Dest.Bits() <= p.Bits() && n.Dest.Contains(p.Addr()) && slices.ContainsFunc(vbrs, func(v *VBR) bool { return v.ID == n.VBRID }) {
			text := "advertised"
			if n.Dest != p {
				text += " (" + n.Dest.String() + ")"
			}
			return cell{present, text}
		}
	}
	return cell{absent, "MISSING"}
}

// vpcToLine: every route table the cluster's traffic leaves by sends p to
// the leased line.
func vpcToLine(p netip.Prefix, ixs []*tableIndex) cell {
	if len(ixs) == 0 {
		return cell{unknown, "tables not read"}
	}
	var bad []string
	for _, ix := range ixs {
		e := ix.longest(p)
		if v, _ := judge(e); v != leasedLine {
			bad = append(bad, ix.t.ID+" -> "+shortEntry(e))
		}
	}
	switch {
	case len(bad) == len(ixs):
		return cell{absent, "MISSING (" + bad[0] + ")"}
	case len(bad) > 0:
		return cell{absent, fmt.Sprintf("MISSING in %d of %d tables (%s)", len(bad), len(ixs), bad[0])}
	}
	if e := ixs[0].longest(p); e != nil && e.Type == "BGP" {
		return cell{present, "BGP"}
	}
	return cell{present, "static to the VBR"}
}

// shortEntry is a route entry in a few words: "0.0.0.0/0 NatGateway".
func shortEntry(e *RouteEntry) string {
	switch {
	case e == nil:
		return "no route"
	case len(e.NextHops) > 0:
		return e.Dest.String() + " " + e.NextHops[0].Type
	}
	return e.Dest.String() + " " + e.Type
}

// vpcHas: the VPC holds p: its own CIDR, or the ECS pod CIDR routed to
// its instance in every route table of the nodes' vSwitches.
func vpcHas(p netip.Prefix, instance string, ixs []*tableIndex) cell {
	if instance == "" {
		return cell{present, "VPC CIDR"}
	}
	if len(ixs) == 0 {
		return cell{unknown, "tables not read"}
	}
	var missing []string
	for _, ix := range ixs {
		if !slices.ContainsFunc(ix.exact(p), func(e *RouteEntry) bool { return toInstance(e, instance) }) {
			missing = append(missing, ix.t.ID)
		}
	}
	if len(missing) == 0 {
		return cell{present, "-> " + instance}
	}
	return cell{absent, fmt.Sprintf("MISSING in %s", strings.Join(missing, ", "))}
}

// renderPathTable draws the rows as an indented text table (indented
// lines are printed as they are by the table renderer). Lost prefixes come
// first; at most 40 rows.
func renderPathTable(rows []pathRow, withRouter bool) string {
	const maxRows = 40
	sorted := append([]pathRow(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].lost >= 0 && sorted[j].lost < 0 })
	head := []string{"prefix", "from", "on-prem router", "VBR", "VPC", "verdict"}
	lines := [][]string{head}
	for i, r := range sorted {
		if i == maxRows {
			lines = append(lines, []string{fmt.Sprintf("... and %d more", len(sorted)-maxRows), "", "", "", "", ""})
			break
		}
		verdict := "ok"
		if r.lost >= 0 {
			verdict = "LOST at " + hopNames[r.lost]
		}
		lines = append(lines, []string{r.prefix.String(), r.origin + " " + r.who, r.cells[hopRouter].text, r.cells[hopVBR].text, r.cells[hopVPC].text, verdict})
	}
	if !withRouter {
		for _, l := range lines[1:] {
			l[2] = "(no bgp section)"
		}
	}
	width := make([]int, len(head))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\n  ")
		for i, c := range l {
			if i == len(l)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", width[i]-len(c)+2))
		}
	}
	return strings.TrimRight(b.String(), " ")
}
