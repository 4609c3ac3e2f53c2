package k8s

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// capacityWarn is the share of a pod CIDR's addresses in use from which
// k8s.podcidr-capacity warns.
const capacityWarn = 0.8

// usable is the number of pod addresses host-local IPAM hands out from p:
// all but the network and broadcast addresses (a /26 gives 62).
func usable(p netip.Prefix) int64 {
	host := p.Addr().BitLen() - p.Bits()
	if host >= 62 {
		return math.MaxInt64
	}
	n := int64(1) << host
	if n <= 2 {
		return 0
	}
	return n - 2
}

// maxPods is the node's pod limit (allocatable, else capacity), 0 when
// the kubelet has not reported it.
func maxPods(n *corev1.Node) int64 {
	for _, rl := range []corev1.ResourceList{n.Status.Allocatable, n.Status.Capacity} {
		if q, ok := rl[corev1.ResourcePods]; ok {
			return q.Value()
		}
	}
	return 0
}

// evalPodCIDRCapacity compares, per node, the pods on the pod network with
// the usable addresses of each of its pod CIDRs and with its max pods: a
// CIDR smaller than max pods FAILs (the kubelet admits pods the IPAM
// cannot address), one 80 % used WARNs.
//
// podNodes is kube.Snapshot.PodNodes (each pod's node by position) and
// facts kube.Snapshot.NodeFacts; nil to find them here.
func evalPodCIDRCapacity(ctx context.Context, nodes []*corev1.Node, pods []kube.Pod, podNodes []int32, facts *kube.NodeFacts) []*pb.Result {
	poll := diag.NewPoll(ctx)
	if podNodes == nil {
		podNodes = kube.NodePositions(nodes, pods)
	}
	if facts == nil {
		facts = kube.FactsOf(nodes)
	}
	// Pods on the pod network, by the position of their node; a name
	// given to more than one node counts on the last, as a lookup by name
	// would.
	onNetAt := make([]int64, len(nodes))
	for i := range pods {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		p := &pods[i]
		if p.HostNetwork || podNodes[i] < 0 || p.Phase == kube.PhaseSucceeded || p.Phase == kube.PhaseFailed {
			continue
		}
		onNetAt[podNodes[i]]++
	}
	onNet := make(map[string]int64, len(nodes))
	for i, n := range nodes {
		onNet[n.Name] += onNetAt[i]
	}
	var out []*pb.Result
	judged := 0
	tightestNode, tightestUsed, tightestFree, tightestUse := "", int64(0), int64(0), -1.0
	for _, at := range facts.ByName {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		n, cidrs := nodes[at], facts.PodCIDRs[at]
		if facts.Classes[at] == kube.ClassVirtual || len(cidrs) == 0 {
			continue
		}
		judged++
		used, limit := onNet[n.Name], maxPods(n)
		// The smallest range bounds the node: every pod needs an address
		// of each family (the first of the smallest, as a stable sort
		// would put first; facts are shared, so not sorted here).
		c := cidrs[0]
		for _, other := range cidrs[1:] {
			if usable(other) < usable(c) {
				c = other
			}
		}
		free := usable(c)
		use := float64(used) / float64(max(free, 1))
		if use > tightestUse {
			tightestNode, tightestUsed, tightestFree, tightestUse = n.Name, used, free, use
		}
		var r *pb.Result
		switch {
		case used >= free:
			r = diag.Fail("node %s: podCIDR %s is full: %d pods on the pod network, %d usable addresses; new pods there fail IP allocation", n.Name, c, used, free)
		case limit > free:
			r = diag.Fail("node %s: podCIDR %s has %d usable addresses but the node admits %d pods: pods past %d fail IP allocation (%d in use)",
				n.Name, c, free, limit, free, used)
		case use >= capacityWarn:
			r = diag.Warn("node %s: podCIDR %s is %.0f %% used (%d of %d addresses)", n.Name, c, 100*use, used, free)
		default:
			continue
		}
		limitObs := "not reported"
		if limit > 0 {
			limitObs = fmt.Sprint(limit)
		}
		r.Objects = []*pb.Object{nodeObj(n)}
		r.Evidence = []*pb.Evidence{
			diag.Ev("podCIDR "+c.String(), "", fmt.Sprintf("%d usable addresses", free)),
			diag.Ev("pods on the pod network", fmt.Sprintf("< %.0f %% of %d", 100*capacityWarn, free), fmt.Sprint(used)),
			diag.Ev("max pods (allocatable)", fmt.Sprintf("<= %d", free), limitObs),
		}
		r.Remediation = capacityFix(n, c, free)
		out = append(out, r)
	}
	switch {
	case judged == 0:
		return []*pb.Result{diag.Skip("no non-virtual node has a podCIDR to judge (see k8s.podcidr-assigned)")}
	case len(out) == 0:
		r := diag.Pass("all %d node(s) have room in their podCIDR for their max pods", judged)
		tightest := fmt.Sprintf("%s %d of %d (%.0f %%)", tightestNode, tightestUsed, tightestFree, 100*tightestUse)
		r.Evidence = []*pb.Evidence{diag.Ev("fullest podCIDR", fmt.Sprintf("< %.0f %%", 100*capacityWarn), tightest)}
		return []*pb.Result{r}
	}
	return out
}

func capacityFix(n *corev1.Node, c netip.Prefix, free int64) string {
	bits := c.Bits()
	need := bits
	if limit := maxPods(n); limit > 0 {
		for need > 0 && usable(netip.PrefixFrom(c.Addr(), need)) < limit {
			need--
		}
	}
	var fix []string
	fix = append(fix, fmt.Sprintf("Either lower the kubelet's maxPods on %s to at most %d (its config's maxPods, or --max-pods), "+
		"or give the node a larger podCIDR", n.Name, free))
	if need < bits {
		fix[0] += fmt.Sprintf(" (a /%d holds %d pods): kube-controller-manager --node-cidr-mask-size=%d, then drain, delete and re-register the node "+
			"(spec.podCIDR cannot change)", need, usable(netip.PrefixFrom(c.Addr(), need)), need)
	}
	fix[0] += "."
	if strings.Contains(c.String(), ":") {
		fix = append(fix, "For IPv6 use --node-cidr-mask-size-ipv6.")
	}
	return strings.Join(fix, " ")
}
