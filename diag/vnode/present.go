package vnode

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// isVNode reports whether n is a VNode and by which mark: a label in either
// vendor convention, or, failing that, a VNode taint.
func isVNode(n *corev1.Node) (why string, ok bool) {
	if kube.ClassOf(n) != kube.ClassVirtual {
		return "", false
	}
	return kube.Classify(n).Reason, true
}

// isVNodeTaint reports whether t is one of the taints VNodes carry.
func isVNodeTaint(t corev1.Taint) bool {
	return t.Key == kube.TaintVKProvider || (t.Key == kube.TaintVNode && t.Value == "true")
}

// nameSet indexes nodes by name.
func nameSet(nodes []*corev1.Node) map[string]bool {
	m := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		m[n.Name] = true
	}
	return m
}

// hasVNodeLabel reports whether n can be selected (or excluded) by label.
func hasVNodeLabel(n *corev1.Node) bool {
	return n.Labels[kube.LabelType] == kube.LabelTypeVirtual || n.Labels[kube.LabelVNode] == "true"
}

// vnodesOf is facts' VNodes, or, without facts (an evaluation called
// directly), vnodes(nodes).
func vnodesOf(nodes []*corev1.Node, facts *kube.NodeFacts) []*corev1.Node {
	if facts != nil {
		return facts.VNodes
	}
	return vnodes(nodes)
}

// vnodes returns the VNodes among nodes, sorted by name.
func vnodes(nodes []*corev1.Node) []*corev1.Node {
	var out []*corev1.Node
	for _, n := range nodes {
		if _, ok := isVNode(n); ok {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func taintString(t corev1.Taint) string {
	s := t.Key
	if t.Value != "" {
		s += "=" + t.Value
	}
	return s + ":" + string(t.Effect)
}

func taintsString(ts []corev1.Taint) string {
	if len(ts) == 0 {
		return "none"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = taintString(t)
	}
	return strings.Join(s, ", ")
}

// readyCondition describes the node's Ready condition and whether it is True.
func readyCondition(n *corev1.Node) (string, bool) {
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		s := "Ready=" + string(c.Status)
		if c.Reason != "" {
			s += " (" + c.Reason
			if c.Message != "" {
				s += ": " + c.Message
			}
			s += ")"
		}
		return s, c.Status == corev1.ConditionTrue
	}
	return "no Ready condition", false
}

func runPresent(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	return evaluatePresent(ctx, s.Nodes)
}

// evaluatePresent reports every VNode with its Ready condition, kubelet
// version and taints.
func evaluatePresent(ctx context.Context, nodes []*corev1.Node) []*pb.Result {
	if r := canceled(ctx); r != nil {
		return r
	}
	vns := vnodes(nodes)
	if len(vns) == 0 {
		return []*pb.Result{noVNode(len(nodes))}
	}
	poll := diag.NewPoll(ctx)
	var out []*pb.Result
	for _, n := range vns {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		why, _ := isVNode(n)
		ready, isReady := readyCondition(n)
		kubelet := n.Status.NodeInfo.KubeletVersion
		if kubelet == "" {
			kubelet = "not reported"
		}
		scheduleTaint := false
		for _, t := range n.Spec.Taints {
			if isVNodeTaint(t) && (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) {
				scheduleTaint = true
			}
		}
		ev := []*pb.Evidence{
			diag.Ev("identified by", "a VNode label or taint", why),
			diag.Ev("Ready condition", "Ready=True", ready),
			diag.Ev("kubelet version", "", kubelet),
			diag.Ev("taints", kube.TaintVKProvider+"=<provider>:NoSchedule or "+kube.TaintVNode+"=true:NoSchedule", taintsString(n.Spec.Taints)),
		}
		var res *pb.Result
		var fixes, gaps []string
		status := pb.Status_PASS
		if !isReady {
			status = pb.Status_FAIL
			fixes = append(fixes, fmt.Sprintf("VNode %s is not Ready, so nothing is scheduled to ECI through it. "+
				"Read the condition message with `kubectl describe node %s`; the VNode's virtual-kubelet runs in the VPC and must reach "+
				"this cluster's API server over the leased line (see the bgp.* and route.* checks) and the ECI API of its region. "+
				"Then check the VNode's state in the ECI console or with the DescribeVirtualNodes API.", n.Name, n.Name))
		}
		if !scheduleTaint {
			status = worst(status, pb.Status_WARN)
			gaps = append(gaps, "has no NoSchedule VNode taint")
			fixes = append(fixes, fmt.Sprintf("VNode %s has no NoSchedule VNode taint, so every pod without a node affinity that excludes it, "+
				"DaemonSet pods included, can be placed on it. Restore the taint: `kubectl taint node %s %s=alibabacloud:NoSchedule`.",
				n.Name, n.Name, kube.TaintVKProvider))
		}
		if !hasVNodeLabel(n) {
			status = worst(status, pb.Status_WARN)
			gaps = append(gaps, "has no VNode label")
			fixes = append(fixes, fmt.Sprintf("VNode %s carries neither label %s=%s nor %s=true, so workloads cannot select or exclude it by label "+
				"(DaemonSet affinity `%s NotIn [%s]` does not keep off it). Label it: `kubectl label node %s %s=%s`.",
				n.Name, kube.LabelType, kube.LabelTypeVirtual, kube.LabelVNode, kube.LabelType, kube.LabelTypeVirtual, n.Name, kube.LabelType, kube.LabelTypeVirtual))
		}
		switch status {
		case pb.Status_PASS:
			res = diag.Pass("VNode %s is Ready (kubelet %s, taints %s)", n.Name, kubelet, taintsString(n.Spec.Taints))
		case pb.Status_FAIL:
			res = diag.Fail("VNode %s is not Ready: %s (kubelet %s)", n.Name, ready, kubelet)
		default:
			res = diag.Warn("VNode %s is Ready but %s (kubelet %s, taints %s)", n.Name, strings.Join(gaps, " and "), kubelet, taintsString(n.Spec.Taints))
		}
		res.Objects = []*pb.Object{diag.Obj("Node", "", n.Name)}
		res.Evidence = ev
		res.Remediation = strings.Join(fixes, "\n")
		out = append(out, res)
	}
	return sortResults(out)
}
