package k8s

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// evalNodeNetwork fails every ECS node whose network the cloud controller
// manager has not set up: its NetworkUnavailable condition is True, or the
// node.kubernetes.io/network-unavailable taint stays. The CCM clears both
// once it has created the VPC route podCIDR -> instance.
func evalNodeNetwork(ctx context.Context, nodes []*corev1.Node) []*pb.Result {
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	ecs := 0
	for _, n := range sortedNodes(nodes) {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		if kube.ClassOf(n) != kube.ClassECS {
			continue
		}
		ecs++
		var cond *corev1.NodeCondition
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
				cond = &n.Status.Conditions[i]
			}
		}
		var taint *corev1.Taint
		for i := range n.Spec.Taints {
			if n.Spec.Taints[i].Key == corev1.TaintNodeNetworkUnavailable {
				taint = &n.Spec.Taints[i]
			}
		}
		condTrue := cond != nil && cond.Status == corev1.ConditionTrue
		if !condTrue && taint == nil {
			continue
		}
		var what []string
		condObs := "absent"
		if cond != nil {
			condObs = string(cond.Status)
			if cond.Reason != "" {
				condObs += " (" + cond.Reason
				if cond.Message != "" {
					condObs += ": " + cond.Message
				}
				condObs += ")"
			}
		}
		if condTrue {
			what = append(what, "condition NetworkUnavailable=True")
		}
		taintObs := "absent"
		if taint != nil {
			taintObs = fmt.Sprintf("%s:%s", taint.Key, taint.Effect)
			what = append(what, "taint "+taintObs)
		}
		r := diag.Fail("ECS node %s has %s: the cloud controller manager has not created its VPC route, so its podCIDR %s is unreachable from the VPC",
			n.Name, strings.Join(what, " and "), orQuoted(strings.Join(kube.PodCIDRStrings(n), ",")))
		r.Objects = []*pb.Object{nodeObj(n)}
		r.Evidence = []*pb.Evidence{
			diag.Ev("condition NetworkUnavailable", "False (RouteCreated)", condObs),
			diag.Ev("taint "+corev1.TaintNodeNetworkUnavailable, "absent", taintObs),
			diag.Ev("spec.providerID", "<region-id>.<instance-id>", orQuoted(n.Spec.ProviderID)),
		}
		r.Remediation = fmt.Sprintf("The cloud controller manager creates the route podCIDR -> instance in the VPC route table and then clears the condition and the taint. "+
			"Check, in order: the node's providerID (k8s.providerid-format; the CCM cannot map a wrong one to its instance), the CCM's log for node %s "+
			"(`kubectl -n kube-system logs deploy/cloud-controller-manager | grep %s`), that it runs with --configure-cloud-routes=true and --cluster-cidr, "+
			"and the route table's entries and quota (cloud.vpc-pod-routes, with a cloud section in the configuration).", n.Name, n.Name)
		out = append(out, r)
	}
	switch {
	case ecs == 0:
		return []*pb.Result{diag.Skip("no ECS node in the cluster")}
	case len(out) == 0:
		return []*pb.Result{diag.Pass("all %d ECS node(s) have their network: no NetworkUnavailable condition or taint", ecs)}
	}
	return out
}
