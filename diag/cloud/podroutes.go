package cloud

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// podRoute is one ECS node's podCIDR that must be routed to its instance.
type podRoute struct {
	node      string
	instance  string
	cidr      netip.Prefix
	noRegion  bool   // the providerID lacks the region: the CCM cannot sync it
	condition string // NetworkUnavailable condition, when set
}

// evalPodRoutes is cloud.vpc-pod-routes: for every ECS node's podCIDR,
// every route table of the ECS nodes' vSwitches holds a custom entry for
// exactly that CIDR whose one next hop is the node's instance. Missing or
// wrong entries FAIL per table (naming table, CIDR and node, and the
// tables where the entry is present: the several-route-tables trap);
// instance routes inside the cluster's pod range for no current node WARN
// as stale; a table near its custom-entry quota WARNs.
func evalPodRoutes(s *Snapshot, nodes []*corev1.Node) []*pb.Result {
	for _, p := range []Part{PartVPC, PartTables} {
		if e := s.Errors[p]; e != nil && (p != PartVPC || s.VPCID == "") {
			return []*pb.Result{partResult(e)}
		}
	}
	all := ecsNodes(s, nodes)
	if len(all) == 0 {
		return []*pb.Result{diag.Skip("no ECS node: no node's providerID names an ECS instance")}
	}
	var out []*pb.Result
	var unread []string
	var routes []podRoute
	var routedCIDRs []netip.Prefix
	for _, n := range all {
		if n.inst == nil {
			if s.InstanceErrs[n.ref.instance] != nil {
				unread = append(unread, n.node.Name)
			}
			continue // not found: cloud.ecs-instances fails it
		}
		if n.inst.VPCID != s.VPCID {
			continue // another VPC: cloud.ecs-instances fails it
		}
		_, cond := noRouteCreated(n.node)
		for _, c := range kube.PodCIDRs(n.node) {
			routes = append(routes, podRoute{node: n.node.Name, instance: n.inst.ID, cidr: c, noRegion: n.ref.region == "", condition: cond})
			routedCIDRs = append(routedCIDRs, c)
		}
	}
	if len(unread) > 0 {
		var e *PartError
		for _, n := range all {
			if e = s.InstanceErrs[n.ref.instance]; e != nil {
				break
			}
		}
		r := diag.Errorf("the instances of %d ECS node(s) could not be read, so their routes were not checked: %s", len(unread), diag.JoinCapped(unread))
		r.Evidence = []*pb.Evidence{diag.Ev("RAM action "+e.Action, "allowed and answered", e.Err.Error())}
		r.Remediation = e.Fix()
		out = append(out, r)
	}
	tables, behind := clusterTables(s, all)
	if len(tables) == 0 {
		return append(out, diag.Skip("no ECS node's instance is in the cluster's VPC %s (see cloud.ecs-instances)", s.VPCID))
	}

	// state[table][i] is how table holds routes[i].
	state := map[string][]holding{}
	for _, t := range tables {
		if t.EntriesErr != nil {
			continue
		}
		ix := indexTable(t)
		hs := make([]holding, len(routes))
		for i, r := range routes {
			es := ix.exact(r.cidr)
			for _, e := range es {
				if toInstance(e, r.instance) {
					hs[i].good = true
					if e.Status != "" && e.Status != "Available" {
						hs[i].pending = e.Status
					}
				}
			}
			switch {
			case hs[i].good:
			case len(es) > 0:
				hs[i].observed = "wrong entry: " + es[0].String() + ownerOf(es[0], routes)
				hs[i].wrongID = es[0].ID
			default:
				lm := "none"
				if e := ix.longest(r.cidr); e != nil {
					lm = e.String()
				}
				hs[i].observed = "missing; longest match: " + lm
			}
		}
		state[t.ID] = hs
	}

	instanceNode := map[string]string{}
	nodeCIDR := map[netip.Prefix]bool{}
	for _, n := range nodes {
		for _, c := range kube.PodCIDRs(n) {
			nodeCIDR[c] = true
		}
	}
	for _, n := range all {
		if n.inst != nil {
			instanceNode[n.inst.ID] = n.node.Name
		}
	}
	r4, r6 := podRange(routedCIDRs)

	allGood := map[int]bool{}
	for i := range routes {
		allGood[i] = true
	}
	for _, t := range tables {
		label := tableLabel(t, behind[t.ID])
		if t.EntriesErr != nil {
			r := partResult(t.EntriesErr)
			r.Summary = fmt.Sprintf("%s: entries could not be read: %v", label, t.EntriesErr.Err)
			r.Objects = []*pb.Object{tableObj(t.ID)}
			out = append(out, r)
			continue
		}
		hs := state[t.ID]
		var bad []int
		var pending []string
		for i, h := range hs {
			if !h.good {
				bad = append(bad, i)
				allGood[i] = false
			} else if h.pending != "" {
				pending = append(pending, fmt.Sprintf("%s (node %s): %s", routes[i].cidr, routes[i].node, h.pending))
			}
		}
		if len(bad) > 0 {
			out = append(out, podRouteFailure(s, t, label, tables, state, routes, bad))
		} else {
			r := diag.Pass("%s: all %d ECS podCIDR(s) route to their instances", label, len(routes))
			r.Objects = []*pb.Object{tableObj(t.ID)}
			out = append(out, r)
		}
		if len(pending) > 0 {
			w := diag.Warn("%s: %d pod route(s) not yet Available: %s", label, len(pending), diag.JoinCapped(pending))
			w.Objects = []*pb.Object{tableObj(t.ID)}
			w.Remediation = "Route entries are Pending or Modifying for a short while after a change; re-run in a minute. If they stay so, check the VPC console > Route Tables > " + t.ID + "."
			out = append(out, w)
		}
		if w := staleRoutes(s, t, label, nodeCIDR, instanceNode, r4, r6); w != nil {
			out = append(out, w)
		}
		if w := quotaWarning(s, t, label, len(routes)); w != nil {
			out = append(out, w)
		}
	}

	// Routes present everywhere while the node still says NoRouteCreated:
	// the controller has not caught up, and the node stays tainted.
	var stuck []string
	for i, r := range routes {
		if allGood[i] && r.condition != "" {
			stuck = append(stuck, fmt.Sprintf("%s (%s)", r.node, r.condition))
		}
	}
	if len(stuck) > 0 {
		w := diag.Warn("%d node(s) are routed in every table but still report NetworkUnavailable: %s", len(stuck), diag.JoinCapped(stuck))
		w.Remediation = "cloud-controller-manager clears NetworkUnavailable after its route sync; check its logs (kubectl -n kube-system logs deploy/cloud-controller-manager) " +
			"and that it runs with --configure-cloud-routes=true. Until then the node keeps the node.kubernetes.io/network-unavailable taint."
		out = append(out, w)
	}
	return out
}

// ownerOf names the node whose instance an entry points at, if any.
func ownerOf(e *RouteEntry, routes []podRoute) string {
	if len(e.NextHops) != 1 || e.NextHops[0].Type != "Instance" {
		return ""
	}
	for _, r := range routes {
		if r.instance == e.NextHops[0].ID {
			return " (node " + r.node + "'s instance)"
		}
	}
	return " (no current node's instance)"
}

// holding is how one table holds one pod route.
type holding struct {
	good     bool
	pending  string // the good entry's status when not Available
	observed string // what the table has instead
	wrongID  string // the entry with the right destination and a wrong next hop
}

func podRouteFailure(s *Snapshot, t *RouteTable, label string, tables []*RouteTable, state map[string][]holding, routes []podRoute, bad []int) *pb.Result {
	var names, cmds, noRegion []string
	elsewhere := 0
	var ev []*pb.Evidence
	for _, i := range bad {
		r, h := routes[i], state[t.ID][i]
		names = append(names, fmt.Sprintf("%s (node %s)", r.cidr, r.node))
		var in []string
		for _, o := range tables {
			if o.ID != t.ID && state[o.ID] != nil && state[o.ID][i].good {
				in = append(in, o.ID)
			}
		}
		obs := h.observed
		if len(in) > 0 {
			elsewhere++
			obs += "; present in " + strings.Join(in, ", ")
		}
		if r.condition != "" {
			obs += "; node reports " + r.condition
		}
		if r.noRegion {
			noRegion = append(noRegion, r.node)
		}
		if len(ev) < diag.ListLimit {
			ev = append(ev, diag.Ev(fmt.Sprintf("%s (node %s)", r.cidr, r.node), "Custom -> Instance "+r.instance, obs))
		}
		if h.wrongID != "" {
			cmds = append(cmds, fmt.Sprintf("aliyun vpc DeleteRouteEntry --RegionId %s --RouteTableId %s --RouteEntryId %s", s.Region, t.ID, h.wrongID))
		}
		cmds = append(cmds, fmt.Sprintf("aliyun vpc CreateRouteEntry --RegionId %s --RouteTableId %s --DestinationCidrBlock %s --NextHopType Instance --NextHopId %s",
			s.Region, t.ID, r.cidr, r.instance))
	}
	summary := fmt.Sprintf("%s: %d of %d ECS podCIDR(s) not routed to their instance: %s", label, len(bad), len(routes), diag.JoinCapped(names))
	if elsewhere > 0 {
		summary += fmt.Sprintf(" (%d of them present in another route table of the VPC)", elsewhere)
	}
	f := diag.Fail("%s", summary)
	f.Objects = []*pb.Object{tableObj(t.ID)}
	for _, i := range bad {
		if len(f.Objects) > diag.ListLimit {
			break
		}
		f.Objects = append(f.Objects, nodeObj(routes[i].node))
	}
	f.Evidence = ev
	var fix []string
	if len(tables) > 1 {
		ids := make([]string, len(tables))
		for i, o := range tables {
			ids[i] = o.ID
		}
		fix = append(fix, fmt.Sprintf("The ECS nodes' vSwitches use %d route tables (%s); cloud-controller-manager writes pod routes only to the tables it is configured with: "+
			"set routeTableIDs: \"%s\" in its cloud-config (or --route-table-ids) so it keeps every table in sync.", len(tables), strings.Join(ids, ", "), strings.Join(ids, ",")))
	}
	if len(noRegion) > 0 {
		fix = append(fix, fmt.Sprintf("The providerID of %s has no region, so the controller cannot map the node to its instance: fix it first (cloud.ecs-instances).", diag.JoinFirst(noRegion, 5)))
	}
	fix = append(fix, fmt.Sprintf("To add the routes now (VPC console > Route Tables > %s > Custom Route > Add Route Entry, next hop ECS instance): %s", t.ID, diag.JoinFirst(cmds, 6)))
	f.Remediation = strings.Join(fix, " ")
	return f
}

// staleRoutes WARNs about custom instance routes inside the cluster's pod
// range whose destination is no current node's podCIDR.
func staleRoutes(s *Snapshot, t *RouteTable, label string, nodeCIDR map[netip.Prefix]bool, instanceNode map[string]string, r4, r6 netip.Prefix) *pb.Result {
	var stale, fixes []string
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.Type != "Custom" || len(e.NextHops) != 1 || e.NextHops[0].Type != "Instance" || nodeCIDR[e.Dest] {
			continue
		}
		in := r4
		if e.Dest.Addr().Is6() {
			in = r6
		}
		if !in.IsValid() || !in.Contains(e.Dest.Addr()) || e.Dest.Bits() <= in.Bits() {
			continue
		}
		owner := "no current node's instance"
		if n := instanceNode[e.NextHops[0].ID]; n != "" {
			owner = "node " + n + "'s instance, which has another podCIDR now"
		}
		stale = append(stale, fmt.Sprintf("%s -> %s (%s)", e.Dest, e.NextHops[0].ID, owner))
		fixes = append(fixes, fmt.Sprintf("aliyun vpc DeleteRouteEntry --RegionId %s --RouteTableId %s --RouteEntryId %s", s.Region, t.ID, e.ID))
	}
	if len(stale) == 0 {
		return nil
	}
	sort.Strings(stale)
	w := diag.Warn("%s: %d stale pod route(s) for no current node: %s", label, len(stale), diag.JoinCapped(stale))
	w.Objects = []*pb.Object{tableObj(t.ID)}
	w.Evidence = []*pb.Evidence{diag.Ev("instance routes inside the cluster's pod range "+r4.String(), "one per current node podCIDR", diag.JoinCapped(stale))}
	w.Remediation = "They route pod traffic to instances that no longer run that podCIDR (a node was deleted or re-registered) and use route-table quota. " +
		"Delete them (VPC console > Route Tables > " + t.ID + " > Custom Route), e.g.: " + diag.JoinFirst(fixes, 5)
	return w
}

// quotaWarning WARNs when a table's custom entries reach 90 % of the quota,
// or when the ECS nodes alone need more than it allows.
func quotaWarning(s *Snapshot, t *RouteTable, label string, needed int) *pb.Result {
	custom := 0
	for _, e := range t.Entries {
		if e.Type == "Custom" {
			custom++
		}
	}
	q := s.RouteEntryQuota
	if q <= 0 || (custom*10 < q*9 && needed <= q) {
		return nil
	}
	w := diag.Warn("%s holds %d custom route entries of its quota %d (the ECS nodes need %d)", label, custom, q, needed)
	w.Objects = []*pb.Object{tableObj(t.ID)}
	w.Evidence = []*pb.Evidence{diag.Ev("custom route entries", fmt.Sprintf("below 90%% of %d", q), fmt.Sprint(custom))}
	w.Remediation = "Each ECS node needs one custom entry per route table; at the quota the cloud controller manager cannot route new nodes. " +
		"Raise the quota (Quota Center > VPC > vpc_quota_route_entrys_num) and set cloud.routeEntryQuota to the new value, or delete stale entries."
	return w
}
