package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// verdict is how a route leaves the VPC.
type verdict int

const (
	leasedLine verdict = iota // toward the VBR / the leased line
	viaVPN                    // over an IPsec VPN gateway: works, not the leased line
	elsewhere                 // somewhere that does not reach on-prem
)

// judge says where traffic to a CIDR goes when e is its longest match:
// toward the leased line (a BGP, CEN or ECR route learned from it, or a
// custom route whose next hops are the VBR's router interface, an Express
// Connect Router or a transit router), over a VPN gateway, or elsewhere
// (nowhere, an instance, a NAT gateway, a peer VPC, a system route ...).
func judge(e *RouteEntry) (verdict, string) {
	if e == nil {
		return elsewhere, "no route: the VPC drops it"
	}
	switch e.Type {
	case "BGP":
		return leasedLine, "learned by BGP: " + e.String()
	case "CEN", "ECR":
		return leasedLine, "learned from " + e.Type + ": " + e.String()
	case "System":
		if e.Dest == cloudnet.CGNAT {
			return elsewhere, "the system route for Alibaba Cloud services " + e.Dest.String() + ": the CIDR overlaps 100.64.0.0/10"
		}
		return elsewhere, "the system route " + e.Dest.String() + " of a vSwitch: the CIDR overlaps the VPC"
	}
	if len(e.NextHops) == 0 {
		return elsewhere, e.String() + " (no next hop)"
	}
	worst := leasedLine
	for _, h := range e.NextHops {
		switch {
		case h.Type == "RouterInterface" && (h.OppositeType == "VirtualBorderRouter" || h.OppositeType == "VBR" || h.OppositeType == ""):
		case h.Type == "Ecr", h.Type == "Attachment", h.Type == "VBR":
		case h.Type == "VpnGateway":
			worst = max(worst, viaVPN)
		default:
			worst = elsewhere
		}
	}
	switch worst {
	case leasedLine:
		return leasedLine, "static route: " + e.String()
	case viaVPN:
		return viaVPN, "over a VPN gateway, not the leased line: " + e.String()
	}
	return elsewhere, e.String()
}

// evalOnPremRoutes is cloud.vpc-onprem-routes: every on-prem node's
// podCIDR and each configured on-prem network is routed from the VPC
// toward the leased line in every route table the cluster's traffic
// leaves by (those of the ECS nodes' vSwitches; without ECS nodes, every
// vSwitch route table of the VPC). FAIL names each CIDR and what its
// longest match is instead.
func evalOnPremRoutes(s *Snapshot, nodes []*corev1.Node) []*pb.Result {
	for _, p := range []Part{PartVPC, PartTables} {
		if e := s.Errors[p]; e != nil && (p != PartVPC || s.VPCID == "") {
			return []*pb.Result{partResult(e)}
		}
	}
	sources := map[netip.Prefix][]string{}
	for _, n := range nodes {
		if kube.ClassOf(n) != kube.ClassOnPrem {
			continue
		}
		for _, c := range kube.PodCIDRs(n) {
			sources[c] = append(sources[c], "node "+n.Name)
		}
	}
	for _, c := range s.OnPremCIDRs {
		sources[c] = append(sources[c], "cloud.onPremCIDRs")
	}
	if len(sources) == 0 {
		return []*pb.Result{diag.Skip("no on-prem node has a podCIDR and cloud.onPremCIDRs is empty")}
	}
	cidrs := make([]netip.Prefix, 0, len(sources))
	for c := range sources {
		cidrs = append(cidrs, c)
	}
	sort.Slice(cidrs, func(i, j int) bool { return cidrs[i].String() < cidrs[j].String() })

	tables, _ := clusterTables(s, ecsNodes(s, nodes))
	scope := "route tables of the ECS nodes' vSwitches"
	if len(tables) == 0 {
		scope = "vSwitch route tables of " + s.VPCID
		for _, t := range s.Tables {
			if t.AssociateType != "Gateway" {
				tables = append(tables, t)
			}
		}
	}
	if len(tables) == 0 {
		return []*pb.Result{diag.Skip("the VPC %s has no vSwitch route table", s.VPCID)}
	}

	var out []*pb.Result
	var readable []*RouteTable
	var ixs []*tableIndex
	for _, t := range tables {
		if t.EntriesErr != nil {
			r := partResult(t.EntriesErr)
			r.Summary = fmt.Sprintf("route table %s: entries could not be read: %v", t.ID, t.EntriesErr.Err)
			r.Objects = []*pb.Object{tableObj(t.ID)}
			out = append(out, r)
			continue
		}
		readable = append(readable, t)
		ixs = append(ixs, indexTable(t))
	}
	if len(readable) == 0 {
		return out
	}
	vbrHop := vbrNextHop(readable)

	var good []string
	var goodEv []*pb.Evidence
	for _, c := range cidrs {
		who := diag.JoinFirst(sources[c], 5)
		status := pb.Status_PASS
		var ev []*pb.Evidence
		var order []string
		byHow := map[string][]string{} // what happens -> tables
		var failed []*RouteTable
		for i, t := range readable {
			v, how := judge(ixs[i].longest(c))
			ev = append(ev, diag.Ev("route table "+t.ID, "toward the leased line (BGP from the VBR, or a route to the VBR)", how))
			note := ""
			switch v {
			case elsewhere:
				status = pb.Status_FAIL
				note = "its longest match is " + how
				failed = append(failed, t)
			case viaVPN:
				status = max(status, pb.Status_WARN)
				note = "it goes " + how
			}
			for _, m := range ixs[i].moreSpecific(c) {
				if mv, mhow := judge(m); mv != leasedLine {
					status = max(status, pb.Status_WARN)
					if note != "" {
						note += "; "
					}
					note += fmt.Sprintf("part of it, %s, goes elsewhere: %s", m.Dest, mhow)
				}
			}
			if note != "" {
				if _, seen := byHow[note]; !seen {
					order = append(order, note)
				}
				byHow[note] = append(byHow[note], t.ID)
			}
		}
		var bad []string
		for _, note := range order {
			bad = append(bad, fmt.Sprintf("in %s %s", strings.Join(byHow[note], ", "), note))
		}
		switch status {
		case pb.Status_PASS:
			good = append(good, fmt.Sprintf("%s (%s)", c, who))
			if len(goodEv) < diag.ListLimit {
				goodEv = append(goodEv, ev[0])
				goodEv[len(goodEv)-1].Label = c.String() + " in " + readable[0].ID
			}
			continue
		case pb.Status_FAIL:
			r := diag.Fail("on-prem CIDR %s (%s) is not routed toward the leased line: %s", c, who, strings.Join(bad, "; "))
			r.Evidence = ev
			r.Remediation = onPremFix(s, failed, c, vbrHop)
			out = append(out, r)
		default:
			r := diag.Warn("on-prem CIDR %s (%s) does not wholly take the leased line: %s", c, who, strings.Join(bad, "; "))
			r.Evidence = ev
			r.Remediation = "Route it to the VBR instead (BGP from the on-prem router, or a static route to the VBR's router interface), " +
				"unless the VPN path is intended; delete more-specific entries that take part of it elsewhere."
			out = append(out, r)
		}
	}
	if len(good) > 0 {
		ids := make([]string, len(readable))
		for i, t := range readable {
			ids[i] = t.ID
		}
		r := diag.Pass("%d on-prem CIDR(s) route toward the leased line in the %s (%s): %s", len(good), scope, strings.Join(ids, ", "), diag.JoinCapped(good))
		r.Evidence = goodEv
		out = append(out, r)
	}
	return out
}

// vbrNextHop is a router interface toward a VBR that some entry of the
// tables already uses, to name in the fix.
func vbrNextHop(tables []*RouteTable) string {
	for _, t := range tables {
		for _, e := range t.Entries {
			for _, h := range e.NextHops {
				if h.Type == "RouterInterface" && (h.OppositeType == "VirtualBorderRouter" || h.OppositeType == "VBR") {
					return h.ID
				}
			}
		}
	}
	return ""
}

func onPremFix(s *Snapshot, tables []*RouteTable, c netip.Prefix, vbrHop string) string {
	if c.Overlaps(cloudnet.CGNAT) {
		return fmt.Sprintf("%s overlaps 100.64.0.0/10, which the VPC keeps for Alibaba Cloud services: renumber it (k8s.podcidr-overlap).", c)
	}
	if s.VPC != nil {
		for _, v := range append([]string{s.VPC.CIDR}, s.VPC.SecondaryCIDRs...) {
			if p, err := netip.ParsePrefix(v); err == nil && p.Overlaps(c) {
				return fmt.Sprintf("%s overlaps the VPC CIDR %s: traffic to it stays in the VPC; renumber one of them.", c, p)
			}
		}
	}
	hop := vbrHop
	if hop == "" {
		hop = "<router interface of the VBR>"
	}
	var ids, cmds []string
	for _, t := range tables {
		ids = append(ids, t.ID)
		cmds = append(cmds, fmt.Sprintf("aliyun vpc CreateRouteEntry --RegionId %s --RouteTableId %s --DestinationCidrBlock %s --NextHopType RouterInterface --NextHopId %s",
			s.Region, t.ID, c, hop))
	}
	return fmt.Sprintf("Advertise %s from the on-prem router to the VBR over BGP (it then appears as a BGP route; see bgp.podcidr-advertised), "+
		"or add a static route toward the VBR in %s (VPC console > Route Tables > table > Add Route Entry, next hop: router interface to the VBR): %s.",
		c, strings.Join(ids, ", "), strings.Join(cmds, "; "))
}
