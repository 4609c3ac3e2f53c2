package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

const podCIDRFix = "Let kube-controller-manager allocate node CIDRs (--allocate-node-cidrs=true --cluster-cidr=<pod CIDR> --node-cidr-mask-size=24), " +
	"or start the kubelet with --pod-cidr on nodes you allocate by hand. spec.podCIDR cannot be changed once set: " +
	"kubectl drain %[1]s --ignore-daemonsets, kubectl delete node %[1]s, restart the kubelet so the node re-registers."

// evalPodCIDRAssigned fails every non-virtual node without a usable podCIDR.
func evalPodCIDRAssigned(ctx context.Context, nodes []*corev1.Node) []*pb.Result {
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	checked := 0
	for _, n := range sortedNodes(nodes) {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		if kube.ClassOf(n) == kube.ClassVirtual {
			continue
		}
		checked++
		if problem := podCIDRProblem(n); problem != "" {
			r := diag.Fail("node %s: %s", n.Name, problem)
			r.Objects = []*pb.Object{nodeObj(n)}
			r.Evidence = []*pb.Evidence{
				diag.Ev("spec.podCIDR", "a CIDR such as 172.20.3.0/24", quoteOrEmpty(n.Spec.PodCIDR)),
				diag.Ev("spec.podCIDRs", "[podCIDR, optional second family]", fmt.Sprintf("%q", n.Spec.PodCIDRs)),
			}
			r.Remediation = fmt.Sprintf(podCIDRFix, n.Name)
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = append(out, diag.Pass("all %d non-virtual node(s) have a podCIDR", checked))
	}
	return out
}

func podCIDRProblem(n *corev1.Node) string {
	if n.Spec.PodCIDR == "" {
		return "spec.podCIDR is empty"
	}
	if _, err := netip.ParsePrefix(n.Spec.PodCIDR); err != nil {
		return fmt.Sprintf("spec.podCIDR %q is not a CIDR", n.Spec.PodCIDR)
	}
	// spec.podCIDRs came with 1.16: older servers have only podCIDR, newer
	// ones fill podCIDRs from it. Empty podCIDRs is therefore no fault.
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDRs[0] != n.Spec.PodCIDR {
		return fmt.Sprintf("spec.podCIDRs[0] %q differs from spec.podCIDR %q", n.Spec.PodCIDRs[0], n.Spec.PodCIDR)
	}
	var bad []string
	for _, c := range n.Spec.PodCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			bad = append(bad, fmt.Sprintf("%q", c))
		}
	}
	if len(bad) > 0 {
		return "spec.podCIDRs has entries that are not CIDRs: " + strings.Join(bad, ", ")
	}
	return ""
}
