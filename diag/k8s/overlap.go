package k8s

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// CGNAT is 100.64.0.0/10, where Alibaba Cloud puts its service addresses.
var CGNAT = netip.MustParsePrefix("100.64.0.0/10")

type ownerKind int

const (
	ownNode ownerKind = iota
	ownService
	ownCGNAT
)

type owned struct {
	prefix netip.Prefix
	kind   ownerKind
	owner  string // node name, "Service CIDR", "100.64.0.0/10"
}

// Overlap is one pair of overlapping prefixes; A contains B (or equals it).
type Overlap struct{ A, B owned }

// findOverlaps returns every pair where one prefix contains the other, in
// O(n log n + pairs): sorted by address and then by length, a prefix can
// only be inside prefixes still on the stack of enclosing ones.
func findOverlaps(items []owned) []Overlap {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].prefix, items[j].prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	var out []Overlap
	var stack []owned
	for _, it := range items {
		for len(stack) > 0 && !stack[len(stack)-1].prefix.Contains(it.prefix.Addr()) {
			stack = stack[:len(stack)-1]
		}
		for _, enc := range stack {
			out = append(out, Overlap{A: enc, B: it})
		}
		stack = append(stack, it)
	}
	return out
}

// PodCIDROverlap fails every node podCIDR that overlaps another node's,
// a Service CIDR, or 100.64.0.0/10.
func PodCIDROverlap(nodes []*corev1.Node, serviceCIDRs []string) []*pb.Result {
	var items []owned
	count := 0
	for _, n := range nodes {
		if kube.Classify(n).Class == kube.ClassVirtual {
			continue
		}
		for _, p := range nodePrefixes(n) {
			items = append(items, owned{prefix: p, kind: ownNode, owner: n.Name})
			count++
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, s := range serviceCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil || seen[p.Masked()] {
			continue
		}
		seen[p.Masked()] = true
		items = append(items, owned{prefix: p.Masked(), kind: ownService, owner: "Service CIDR"})
	}
	items = append(items, owned{prefix: CGNAT, kind: ownCGNAT, owner: "Alibaba Cloud services"})

	var out []*pb.Result
	for _, o := range findOverlaps(items) {
		if o.A.kind != ownNode && o.B.kind != ownNode {
			continue // Service CIDR vs 100.64.0.0/10 is route.cgnat-overlap's to report
		}
		out = append(out, overlapResult(o))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Summary < out[j].Summary })
	if len(out) == 0 {
		out = append(out, diag.Pass("%d node podCIDR(s) overlap neither each other, %d Service CIDR(s) nor %s", count, len(seen), CGNAT))
	}
	return out
}

func describe(o owned) string {
	switch o.kind {
	case ownNode:
		return fmt.Sprintf("node %s podCIDR %s", o.owner, o.prefix)
	case ownService:
		return fmt.Sprintf("Service CIDR %s", o.prefix)
	}
	return fmt.Sprintf("%s (Alibaba Cloud service addresses)", o.prefix)
}

func overlapResult(o Overlap) *pb.Result {
	a, b := o.A, o.B
	// Name the node first so the summary starts with what to fix.
	if a.kind != ownNode {
		a, b = b, a
	}
	r := diag.Fail("%s overlaps %s", describe(a), describe(b))
	r.Objects = []*pb.Object{diag.Obj("Node", "", a.owner)}
	if b.kind == ownNode {
		r.Objects = append(r.Objects, diag.Obj("Node", "", b.owner))
	} else {
		r.Objects = append(r.Objects, diag.Obj("Prefix", "", b.prefix.String()))
	}
	r.Evidence = []*pb.Evidence{diag.Ev("overlap", "disjoint", fmt.Sprintf("%s and %s", a.prefix, b.prefix))}
	switch b.kind {
	case ownNode:
		r.Remediation = fmt.Sprintf("Two nodes share pod addresses, so routes to one black-hole the other. podCIDR cannot be changed once set: "+
			"kubectl drain %[1]s --ignore-daemonsets, kubectl delete node %[1]s, and re-register it so node IPAM gives it a free range; "+
			"do not set kubelet --pod-cidr by hand on nodes whose CIDRs the controller manager allocates.", b.owner)
	case ownService:
		r.Remediation = "Pod and Service ranges must be disjoint: choose a kube-controller-manager --cluster-cidr that does not overlap " +
			"--service-cluster-ip-range, then re-register the affected nodes (drain, delete node, restart kubelet)."
	default:
		r.Remediation = "100.64.0.0/10 carries Alibaba Cloud service addresses (VPC DNS 100.100.2.136/138, OSS, SLS, RDS) over the leased line; " +
			"a pod CIDR inside it shadows them. Move --cluster-cidr (and this node's podCIDR) out of 100.64.0.0/10 and re-register the node."
	}
	return r
}
