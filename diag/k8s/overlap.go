package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// claim is one prefix and who claims it: a node's podCIDR, a Service CIDR,
// or 100.64.0.0/10.
type claim struct {
	prefix  netip.Prefix
	node    string // empty for a Service CIDR or 100.64.0.0/10
	service bool
	cgnat   bool
}

// slot is one distinct prefix with every claim on it.
type slot struct {
	prefix  netip.Prefix
	nodes   []string
	service bool
	cgnat   bool
}

func (s *slot) reserved() bool { return s.service || s.cgnat }

// member is a node in a conflict, with the podCIDR that conflicts.
type member struct {
	node   string
	prefix netip.Prefix
}

// rangeGroup is a Service CIDR or 100.64.0.0/10 and the node podCIDRs that
// overlap it (inside it, equal to it or enclosing it).
type rangeGroup struct {
	slot    *slot
	members []member
}

// nestGroup is a node podCIDR and the other nodes' podCIDRs inside it.
type nestGroup struct {
	outer   *slot
	members []member
}

// evalPodCIDROverlap fails the node podCIDRs that overlap another node's, a
// Service CIDR, or 100.64.0.0/10, with one result per conflict: nodes sharing
// one podCIDR, nodes inside (or around) one reserved range, nodes inside one
// node's podCIDR. Sorting makes it O(n log n): once prefixes are sorted by
// address and length, a prefix can only lie inside the prefixes still on the
// stack of enclosing ones, and identical prefixes are merged first, so that
// stack is never deeper than the address has bits.
func evalPodCIDROverlap(ctx context.Context, nodes []*corev1.Node, serviceCIDRs []string) []*pb.Result {
	poll := diag.NewPoll(ctx)
	var claims []claim
	count := 0
	for _, n := range nodes {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		if kube.ClassOf(n) == kube.ClassVirtual {
			continue
		}
		for _, p := range kube.PodCIDRs(n) {
			claims = append(claims, claim{prefix: p, node: n.Name})
			count++
		}
	}
	services := map[netip.Prefix]bool{}
	for _, s := range serviceCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && !services[p.Masked()] {
			services[p.Masked()] = true
			claims = append(claims, claim{prefix: p.Masked(), service: true})
		}
	}
	claims = append(claims, claim{prefix: cloudnet.CGNAT, cgnat: true})

	slots := mergeClaims(claims)
	shared, ranges, nests, stopped := sweep(poll, slots)
	if stopped {
		return diag.Stopped(ctx)
	}
	var out []*pb.Result
	for _, s := range shared {
		out = append(out, sharedResult(s))
	}
	for _, g := range ranges {
		out = append(out, rangeResult(g))
	}
	for _, g := range nests {
		out = append(out, nestResult(g))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Summary < out[j].Summary })
	if len(out) == 0 {
		out = append(out, diag.Pass("%d node podCIDR(s) overlap neither each other, %d Service CIDR(s) nor %s", count, len(services), cloudnet.CGNAT))
	}
	return out
}

// mergeClaims sorts the claims and merges those on the same prefix.
func mergeClaims(claims []claim) []*slot {
	sort.Slice(claims, func(i, j int) bool {
		a, b := claims[i].prefix, claims[j].prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		if a.Bits() != b.Bits() {
			return a.Bits() < b.Bits()
		}
		return claims[i].node < claims[j].node
	})
	var slots []*slot
	for _, c := range claims {
		if len(slots) == 0 || slots[len(slots)-1].prefix != c.prefix {
			slots = append(slots, &slot{prefix: c.prefix})
		}
		s := slots[len(slots)-1]
		switch {
		case c.service:
			s.service = true
		case c.cgnat:
			s.cgnat = true
		case len(s.nodes) == 0 || s.nodes[len(s.nodes)-1] != c.node:
			s.nodes = append(s.nodes, c.node)
		}
	}
	return slots
}

// sweep finds the conflicts among sorted, merged slots.
func sweep(poll *diag.Poll, slots []*slot) (shared []*slot, ranges []*rangeGroup, nests []*nestGroup, stopped bool) {
	rangeOf := map[*slot]*rangeGroup{}
	nestOf := map[*slot]*nestGroup{}
	addRange := func(r *slot, nodes []string, p netip.Prefix) {
		g := rangeOf[r]
		if g == nil {
			g = &rangeGroup{slot: r}
			rangeOf[r] = g
			ranges = append(ranges, g)
		}
		for _, n := range nodes {
			g.members = append(g.members, member{n, p})
		}
	}
	var stack []*slot
	for _, s := range slots {
		if poll.Stop() {
			return nil, nil, nil, true
		}
		for len(stack) > 0 && !stack[len(stack)-1].prefix.Contains(s.prefix.Addr()) {
			stack = stack[:len(stack)-1]
		}
		if len(s.nodes) > 1 {
			shared = append(shared, s)
		}
		if len(s.nodes) > 0 {
			var outer *slot
			for _, e := range stack {
				if e.reserved() {
					addRange(e, s.nodes, s.prefix)
				}
				if outer == nil && len(e.nodes) > 0 {
					outer = e
				}
			}
			if outer != nil {
				g := nestOf[outer]
				if g == nil {
					g = &nestGroup{outer: outer}
					nestOf[outer] = g
					nests = append(nests, g)
				}
				for _, n := range s.nodes {
					g.members = append(g.members, member{n, s.prefix})
				}
			}
		}
		if s.reserved() {
			// Node podCIDRs around the range, then on it.
			for _, e := range stack {
				if len(e.nodes) > 0 {
					addRange(s, e.nodes, e.prefix)
				}
			}
			if len(s.nodes) > 0 {
				addRange(s, s.nodes, s.prefix)
			}
		}
		stack = append(stack, s)
	}
	return shared, ranges, nests, false
}

// shown is how many names a summary line carries.
const shown = 3

func memberStrings(ms []member) []string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = fmt.Sprintf("%s (%s)", m.node, m.prefix)
	}
	return s
}

// nodeObjects names at most listed nodes as the result's objects.
func nodeObjects(names []string) []*pb.Object {
	var objs []*pb.Object
	for _, n := range names[:min(len(names), diag.ListLimit)] {
		objs = append(objs, diag.Obj("Node", "", n))
	}
	return objs
}

const reRegister = "podCIDR cannot be changed once set: kubectl drain <node> --ignore-daemonsets, kubectl delete node <node>, " +
	"and restart its kubelet so that it re-registers and node IPAM gives it a free range; " +
	"do not set kubelet --pod-cidr by hand on nodes whose CIDRs the controller manager allocates."

func sharedResult(s *slot) *pb.Result {
	r := diag.Fail("podCIDR %s is shared by %d nodes: %s", s.prefix, len(s.nodes), diag.JoinFirst(s.nodes, shown))
	r.Objects = nodeObjects(s.nodes)
	r.Evidence = []*pb.Evidence{diag.Ev("nodes with podCIDR "+s.prefix.String(), "1", fmt.Sprintf("%d: %s", len(s.nodes), diag.JoinCapped(s.nodes)))}
	r.Remediation = fmt.Sprintf("Nodes sharing pod addresses black-hole each other's routes. Keep one (e.g. %s) and re-register the others: %s",
		s.nodes[0], reRegister)
	return r
}

func describeRange(s *slot) string {
	switch {
	case s.service && s.cgnat:
		return fmt.Sprintf("Service CIDR %s, which is also 100.64.0.0/10 (Alibaba Cloud service addresses)", s.prefix)
	case s.service:
		return fmt.Sprintf("Service CIDR %s", s.prefix)
	}
	return fmt.Sprintf("%s (Alibaba Cloud service addresses)", s.prefix)
}

func rangeResult(g *rangeGroup) *pb.Result {
	ms := g.members
	var r *pb.Result
	if len(ms) == 1 {
		r = diag.Fail("node %s podCIDR %s overlaps %s", ms[0].node, ms[0].prefix, describeRange(g.slot))
	} else {
		r = diag.Fail("%d node podCIDRs overlap %s: %s", len(ms), describeRange(g.slot), diag.JoinFirst(memberStrings(ms), shown))
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.node
	}
	r.Objects = append(nodeObjects(names), diag.Obj("Prefix", "", g.slot.prefix.String()))
	r.Evidence = []*pb.Evidence{diag.Ev("overlap with "+g.slot.prefix.String(), "disjoint", diag.JoinCapped(memberStrings(ms)))}
	if g.slot.service {
		r.Remediation = "Pod and Service ranges must be disjoint: choose a kube-controller-manager --cluster-cidr that does not overlap " +
			"--service-cluster-ip-range, then re-register the affected nodes: " + reRegister
	} else {
		r.Remediation = "100.64.0.0/10 carries Alibaba Cloud service addresses (VPC DNS 100.100.2.136/138, OSS, SLS, RDS) over the leased line; " +
			"a pod CIDR inside it shadows them. Move --cluster-cidr out of 100.64.0.0/10 and re-register the affected nodes: " + reRegister
	}
	return r
}

func nestResult(g *nestGroup) *pb.Result {
	o, ms := g.outer, g.members
	owner := "node " + o.nodes[0]
	if len(o.nodes) > 1 {
		owner = "nodes " + diag.JoinFirst(o.nodes, shown)
	}
	var r *pb.Result
	if len(ms) == 1 {
		r = diag.Fail("%s podCIDR %s overlaps node %s podCIDR %s", owner, o.prefix, ms[0].node, ms[0].prefix)
	} else {
		r = diag.Fail("%s podCIDR %s encloses the podCIDRs of %d other nodes: %s", owner, o.prefix, len(ms), diag.JoinFirst(memberStrings(ms), shown))
	}
	names := append([]string{}, o.nodes...)
	for _, m := range ms {
		names = append(names, m.node)
	}
	r.Objects = nodeObjects(names)
	r.Evidence = []*pb.Evidence{diag.Ev("podCIDRs inside "+o.prefix.String(), "none", diag.JoinCapped(memberStrings(ms)))}
	r.Remediation = fmt.Sprintf("Nodes must not share pod addresses: routes to one black-hole the other. Re-register the node(s) whose podCIDR "+
		"does not come from the cluster's --cluster-cidr and --node-cidr-mask-size, usually the one with the enclosing prefix (%s): %s",
		o.nodes[0], reRegister)
	return r
}
