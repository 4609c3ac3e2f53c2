package vnode

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func runECIProfile(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := canceled(ctx); r != nil {
		return r
	}
	if r := s.Unread(kube.PartECIProfile); r != nil {
		r.Objects = []*pb.Object{profileObj()}
		return []*pb.Result{r}
	}
	out := evaluateECIProfile(ctx, s.ECIProfile, s.Nodes, s.PodsWithDetail(), s.NamespaceLabels, s.NodeFacts())
	if r := s.Unread(kube.PartNamespaces); r != nil && s.ECIProfile != nil && len(s.ECIProfile.Selectors) > 0 {
		r.Summary += " (selectors with namespaceLabels are matched against no namespace)"
		out = append(out, r)
	}
	return out
}

func profileObj() *pb.Object {
	return diag.Obj("ConfigMap", kube.ECIProfileNamespace, kube.ECIProfileName)
}

// evaluateECIProfile judges the eci-profile: one result for its keys, then
// one per selector naming the pods it matches. Pods are matched when the
// snapshot kept their labels, that is pods on VNodes or meant for them
// (unbound, or tolerating a VNode taint): the pods a selector is about.
func evaluateECIProfile(ctx context.Context, p *kube.ECIProfile, nodes []*corev1.Node, pods []kube.Pod, nsLabels map[string]map[string]string, facts *kube.NodeFacts) []*pb.Result {
	if p == nil {
		res := diag.Skip("no ConfigMap kube-system/eci-profile: pods reach VNodes only through their own nodeSelector and tolerations")
		res.Objects = []*pb.Object{profileObj()}
		return []*pb.Result{res}
	}
	ev := []*pb.Evidence{
		diag.Ev("vSwitchIds", "one or more vsw-... (several zones for failover)", orNone(strings.Join(p.VSwitchIDs, ", "))),
		diag.Ev("securityGroupId", "sg-...", orNone(p.SecurityGroupID)),
	}
	if p.VPCID != "" {
		ev = append(ev, diag.Ev("vpcId", "vpc-...", p.VPCID))
	}
	var broken, odd []string
	for _, is := range p.Issues {
		ev = append(ev, diag.Ev(is.Key, "valid", is.Problem))
		if is.Broken {
			broken = append(broken, is.Key+": "+is.Problem)
		} else {
			odd = append(odd, is.Key+": "+is.Problem)
		}
	}
	var head *pb.Result
	switch {
	case len(broken) > 0:
		head = diag.Fail("eci-profile does not parse or is incomplete: %s", diag.JoinFirst(broken, 3))
		head.Remediation = "Fix ConfigMap kube-system/eci-profile (`kubectl -n kube-system edit configmap eci-profile`): vSwitchIds is a comma-separated list of " +
			"vSwitch IDs of the cluster's VPC (vsw-...), securityGroupId one security group ID (sg-...), selectors a JSON list of " +
			`{"name": "...", "namespaceLabels": {"matchLabels": {...}}, "objectLabels": {"matchLabels": {...}}, "effect": {"annotations": {...}, "labels": {...}}}. ` +
			"A profile with an error is not applied: ECI pods are created with the previous settings and the ECI webhook reports the error in an event."
	case len(odd) > 0:
		head = diag.Warn("eci-profile parses but %s", diag.JoinFirst(odd, 3))
		head.Remediation = "Edit ConfigMap kube-system/eci-profile to remove what the VNode components ignore."
	default:
		head = diag.Pass("eci-profile is complete: %d vSwitch(es), security group %s, %d selector(s)", len(p.VSwitchIDs), p.SecurityGroupID, len(p.Selectors))
	}
	head.Objects = []*pb.Object{profileObj()}
	head.Evidence = ev
	out := []*pb.Result{head}

	isVN := nameSet(vnodesOf(nodes, facts))
	poll := diag.NewPoll(ctx)
	for i := range p.Selectors {
		sel := &p.Selectors[i]
		var onVN, pending, elsewhere []string
		for j := range pods {
			if poll.Stop() {
				return diag.Stopped(ctx)
			}
			pod := &pods[j]
			if pod.Labels() == nil && pod.Scheduling() == nil || pod.Phase != kube.PhaseRunning && pod.Phase != kube.PhasePending {
				continue
			}
			if !sel.Matches(nsLabels[pod.Namespace], pod.Labels()) {
				continue
			}
			name := pod.Namespace + "/" + pod.Name
			switch {
			case isVN[pod.NodeName]:
				onVN = append(onVN, name)
			case pod.NodeName == "":
				pending = append(pending, name)
			default:
				elsewhere = append(elsewhere, name+" on "+pod.NodeName)
			}
		}
		out = append(out, selectorResult(sel, onVN, pending, elsewhere))
	}
	return out
}

func selectorResult(sel *kube.ECISelector, onVN, pending, elsewhere []string) *pb.Result {
	what := []string{}
	if sel.NamespaceLabels != nil {
		what = append(what, "namespaces "+labelSelectorString(sel.NamespaceLabels.MatchLabels, len(sel.NamespaceLabels.MatchExpressions)))
	}
	if sel.ObjectLabels != nil {
		what = append(what, "pods "+labelSelectorString(sel.ObjectLabels.MatchLabels, len(sel.ObjectLabels.MatchExpressions)))
	}
	policy := sel.Policy
	if policy == "" {
		policy = "none (annotations and labels only)"
	}
	ev := []*pb.Evidence{
		diag.Ev("selects", "", orNone(strings.Join(what, " and "))),
		diag.Ev("policy", "", policy),
		diag.Ev("running on VNodes", "", orNone(diag.JoinCapped(onVN))),
		diag.Ev("pending", "", orNone(diag.JoinCapped(pending))),
	}
	if len(elsewhere) > 0 {
		ev = append(ev, diag.Ev("on other nodes", "", diag.JoinCapped(elsewhere)))
	}
	n := len(onVN) + len(pending) + len(elsewhere)
	var res *pb.Result
	if sel.MatchesAll() {
		res = diag.Warn("eci-profile selector %s has no namespaceLabels and no objectLabels: it matches every pod created in the cluster", sel.Name)
		res.Remediation = "Give the selector objectLabels (or namespaceLabels) that pick only the pods meant for ECI; as written, " +
			"every new pod gets its effect and policy."
	} else {
		res = diag.Pass("eci-profile selector %s matches %d pod(s) on VNodes or meant for them: %d running on VNodes, %d pending",
			sel.Name, n, len(onVN), len(pending))
	}
	res.Objects = []*pb.Object{profileObj()}
	res.Evidence = ev
	return res
}

func labelSelectorString(m map[string]string, exprs int) string {
	s := selectorString(m)
	if exprs > 0 {
		s += fmt.Sprintf(" and %d matchExpressions", exprs)
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
