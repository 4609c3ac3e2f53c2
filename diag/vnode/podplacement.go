package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func runPodPlacement(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := canceled(ctx); r != nil {
		return r
	}
	var profile *kube.ECIProfile
	if s.PartErrors[kube.PartECIProfile] == nil {
		profile = s.ECIProfile
	}
	out := evaluatePodPlacement(ctx, placementInput{nodes: s.Nodes, pods: s.PodsWithDetail(), events: s.PodEvents, profile: profile,
		nsLabels: s.NamespaceLabels, deps: listedDeployments(s), facts: s.NodeFacts()})
	return noteUnread(out, s, kube.PartEvents, "the scheduler's FailedScheduling messages are not shown")
}

type placementInput struct {
	nodes    []*corev1.Node
	pods     []kube.Pod
	events   []kube.Event
	profile  *kube.ECIProfile
	nsLabels map[string]map[string]string
	deps     []*appsv1.Deployment
	facts    *kube.NodeFacts // nil: found from nodes
}

// evaluatePodPlacement judges every unbound pod that is meant for a VNode
// (its nodeSelector, node affinity or tolerations name a VNode, or an
// eci-profile selector picks it) against every VNode, as the scheduler's
// filters would: a pod that no VNode accepts FAILs with the reason for
// each VNode and the block that lets it there; a pod that one accepts but
// that the scheduler still reports as unschedulable WARNs with its events.
func evaluatePodPlacement(ctx context.Context, in placementInput) []*pb.Result {
	vns := vnodesOf(in.nodes, in.facts)
	if len(vns) == 0 {
		return []*pb.Result{noVNode(len(in.nodes))}
	}
	poll := diag.NewPoll(ctx)
	failed := map[string][]kube.Event{}
	for _, e := range in.events {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		if e.Reason == "FailedScheduling" {
			failed[e.Namespace+"/"+e.Pod] = append(failed[e.Namespace+"/"+e.Pod], e)
		}
	}
	depByName := deploymentNames(in.deps)
	// Pods of one controller share their template: judged once, reported
	// together.
	type group struct {
		pods   []*kube.Pod
		intent []string
		events []kube.Event
	}
	var order []string
	groups := map[string]*group{}
	for i := range in.pods {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		p := &in.pods[i]
		if p.Scheduling() == nil {
			continue
		}
		key := p.Namespace + "/" + p.OwnerKind + "/" + p.OwnerName
		if p.OwnerKind == "" {
			key = p.Namespace + "//" + p.Name
		}
		g := groups[key]
		if g == nil {
			intent := vnodeIntent(p, vns, in.profile, in.nsLabels)
			if len(intent) == 0 {
				continue
			}
			g = &group{intent: intent}
			groups[key] = g
			order = append(order, key)
		}
		g.pods = append(g.pods, p)
		g.events = append(g.events, failed[p.Namespace+"/"+p.Name]...)
	}
	var out []*pb.Result
	meant, placeable := 0, 0
	to := target(vns)
	for _, key := range order {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		g := groups[key]
		p := g.pods[0]
		meant += len(g.pods)
		spec := podSpecOf(p)
		pl := newPlacement(spec, spec.Tolerations)
		var accepted []string
		refusal := ""
		names, whys := make([]string, len(vns)), make([]string, len(vns))
		for i, vn := range vns {
			ok, why := pl.placeable(vn)
			if ok {
				accepted = append(accepted, vn.Name)
			}
			if vn == to {
				refusal = "VNode " + vn.Name + ": " + why
			}
			names[i], whys[i] = vn.Name, why
		}
		ev := append([]*pb.Evidence{diag.Ev("meant for a VNode", "", strings.Join(g.intent, "; "))}, placementEvidence(names, whys, "placeable")...)
		for i, e := range g.events {
			if i == diag.ListLimit {
				ev = append(ev, diag.Ev("more FailedScheduling events", "", fmt.Sprint(len(g.events)-i)))
				break
			}
			ev = append(ev, diag.Ev(fmt.Sprintf("event %s about %s (count %d)", e.Reason, e.Pod, e.Count), "scheduled", e.Message))
		}
		what, it := "pending pod "+p.Namespace+"/"+p.Name+" is", "it"
		objs := []*pb.Object{diag.Obj("Pod", p.Namespace, p.Name)}
		if len(g.pods) > 1 {
			names := make([]string, len(g.pods))
			for i, q := range g.pods {
				names[i] = q.Name
			}
			sort.Strings(names)
			kind, name := workloadOf(p, depByName)
			what, it = fmt.Sprintf("%d pending pods of %s %s/%s are", len(g.pods), kind, p.Namespace, name), "them"
			objs = []*pb.Object{diag.Obj(kind, p.Namespace, name)}
			ev = append(ev, diag.Ev("pods", "", diag.JoinCapped(names)))
		}
		switch {
		case len(accepted) > 0 && len(g.events) == 0:
			placeable += len(g.pods)
			continue
		case len(accepted) > 0:
			res := diag.Warn("%s free to go to VNode(s) %s (nodeSelector, node affinity and tolerations let %s), but the scheduler reports %s unschedulable: %s",
				what, diag.JoinFirst(accepted, summaryNames), it, it, g.events[len(g.events)-1].Message)
			res.Objects = objs
			res.Evidence = ev
			res.Remediation = "Placement by label and taint is right; the scheduler's message names what else stops it (resources requested beyond a VNode's " +
				"capacity, pod affinity, a NotReady VNode: see vnode.present). VNodes report large allocatable capacity, so an Insufficient message usually names a VNode that is not Ready."
			out = append(out, res)
		default:
			res := diag.Fail("%s meant for a VNode (%s) but no VNode accepts %s: %s", what, g.intent[0], it, refusal)
			res.Objects = objs
			res.Evidence = ev
			res.Remediation, res.Snippets = placementFix(p, spec, to, in.profile, depByName)
			out = append(out, res)
		}
	}
	sortResults(out)
	if len(out) == 0 {
		res := diag.Pass("no pending pod meant for a VNode is kept off the %d VNode(s)", len(vns))
		res.Evidence = []*pb.Evidence{diag.Ev("pending pods meant for a VNode", "", fmt.Sprintf("%d, all placeable on a VNode", meant))}
		return []*pb.Result{res}
	}
	if placeable > 0 {
		out = append(out, diag.Pass("the other %d pending pod(s) meant for a VNode may go to one", placeable))
	}
	return out
}

// vnodeIntent says why an unbound pod is meant for a VNode: its node
// selector or required node affinity selects a VNode label or name, it
// tolerates a VNode taint by key, or an eci-profile selector picks it (the
// ECI webhook then adds the toleration and node selector). A toleration of
// every taint says nothing: system pods carry it.
func vnodeIntent(p *kube.Pod, vns []*corev1.Node, profile *kube.ECIProfile, nsLabels map[string]map[string]string) []string {
	sch := p.Scheduling()
	var why []string
	for k, v := range sch.NodeSelector {
		if vnodeLabel(k, v) {
			why = append(why, fmt.Sprintf("nodeSelector %s=%s", k, v))
		}
	}
	sort.Strings(why)
	if na := sch.NodeAffinity; na != nil && na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		names := nameSet(vns)
	terms:
		for _, t := range na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, r := range t.MatchExpressions {
				if r.Operator == corev1.NodeSelectorOpIn && anyVNodeLabel(r.Key, r.Values) || r.Operator == corev1.NodeSelectorOpExists && isVNodeLabelKey(r.Key) {
					why = append(why, "required node affinity "+termString(t))
					break terms
				}
			}
			for _, r := range t.MatchFields {
				if r.Key == "metadata.name" && r.Operator == corev1.NodeSelectorOpIn && anyIn(names, r.Values) {
					why = append(why, "required node affinity "+termString(t))
					break terms
				}
			}
		}
	}
	for _, t := range sch.Tolerations {
		if t.Key == kube.TaintVKProvider || t.Key == kube.TaintVNode {
			why = append(why, "toleration "+tolerationString(t))
			break
		}
	}
	if profile != nil {
		for i := range profile.Selectors {
			sel := &profile.Selectors[i]
			if sel.Policy != "normalNodeOnly" && !sel.MatchesAll() && sel.Matches(nsLabels[p.Namespace], p.Labels()) {
				why = append(why, "eci-profile selector "+sel.Name)
				break
			}
		}
	}
	return why
}

func vnodeLabel(k, v string) bool {
	return k == kube.LabelType && v == kube.LabelTypeVirtual || k == kube.LabelVNode && v == "true"
}

func isVNodeLabelKey(k string) bool { return k == kube.LabelType || k == kube.LabelVNode }

func anyVNodeLabel(k string, values []string) bool {
	for _, v := range values {
		if vnodeLabel(k, v) {
			return true
		}
	}
	return false
}

func anyIn(set map[string]bool, values []string) bool {
	for _, v := range values {
		if set[v] {
			return true
		}
	}
	return false
}

// podSpecOf is the part of a pod spec placement reads.
func podSpecOf(p *kube.Pod) *corev1.PodSpec {
	sch := p.Scheduling()
	spec := &corev1.PodSpec{NodeSelector: sch.NodeSelector, Tolerations: sch.Tolerations}
	if sch.NodeAffinity != nil {
		spec.Affinity = &corev1.Affinity{NodeAffinity: sch.NodeAffinity}
	}
	return spec
}

// target is the VNode the fix aims the pod at: the first Ready one, else
// the first.
func target(vns []*corev1.Node) *corev1.Node {
	for _, vn := range vns {
		if _, ready := readyCondition(vn); ready {
			return vn
		}
	}
	return vns[0]
}

// placementFix is the nodeSelector and tolerations that let the pod onto
// vn, merged with the pod's own: nodeSelector keys vn does not carry are
// dropped (they would keep it off), a toleration is added for each of vn's
// NoSchedule and NoExecute taints not yet tolerated. The strategic merge
// patch deletes dropped keys with null and carries the whole toleration
// list, which it replaces.
func placementFix(p *kube.Pod, spec *corev1.PodSpec, vn *corev1.Node, profile *kube.ECIProfile, depByName deploymentSet) (string, []*pb.Snippet) {
	sel := map[string]string{}
	patchSel := map[string]any{}
	var dropped []string
	for k, v := range spec.NodeSelector {
		if vn.Labels[k] == v {
			sel[k] = v
			continue
		}
		dropped = append(dropped, k+"="+v)
		patchSel[k] = nil
	}
	sort.Strings(dropped)
	switch {
	case vn.Labels[kube.LabelType] == kube.LabelTypeVirtual:
		sel[kube.LabelType] = kube.LabelTypeVirtual
	case vn.Labels[kube.LabelVNode] == "true":
		sel[kube.LabelVNode] = "true"
	default:
		sel[corev1.LabelHostname] = vn.Labels[corev1.LabelHostname]
	}
	for k, v := range sel {
		patchSel[k] = v
	}
	// The API server adds the not-ready and unreachable NoExecute
	// tolerations to every pod (DefaultTolerationSeconds): a template
	// needs neither.
	var tols []corev1.Toleration
	for _, t := range spec.Tolerations {
		if !defaultToleration(t) {
			tols = append(tols, t)
		}
	}
	// Only the VNode's own taints are to be tolerated; any other one
	// (not-ready, unreachable) says the VNode is unwell, not the pod.
	var unwell []string
	for _, t := range vn.Spec.Taints {
		if !schedulingTaint(&t) {
			continue
		}
		tolerated := false
		for _, tol := range tols {
			if tol.ToleratesTaint(logr.Discard(), &t, false) {
				tolerated = true
				break
			}
		}
		switch {
		case tolerated:
		case isVNodeTaint(t):
			tols = append(tols, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOpExists, Effect: t.Effect})
		default:
			unwell = append(unwell, taintString(t))
		}
	}
	block, _ := yaml.Marshal(map[string]any{"nodeSelector": sel, "tolerations": tols})
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"nodeSelector": patchSel, "tolerations": tols}}}})

	var fix []string
	kind, name := workloadOf(p, depByName)
	snips := []*pb.Snippet{{Title: fmt.Sprintf("pod template (spec.template.spec) for VNode %s", vn.Name), Language: "yaml",
		Text: strings.TrimRight(string(block), "\n")}}
	intro := fmt.Sprintf("To run on VNode %s, the pod template needs the nodeSelector and tolerations below (spec.template.spec).", vn.Name)
	if len(dropped) > 0 {
		intro += fmt.Sprintf("\nnodeSelector %s is dropped: VNode %s does not carry it.", strings.Join(dropped, ", "), vn.Name)
	}
	fix = append(fix, intro)
	switch kind {
	case "Deployment", "StatefulSet", "ReplicaSet":
		fix = append(fix, fmt.Sprintf("Patch %s %s/%s with them (below).", kind, p.Namespace, name))
		snips = append(snips, &pb.Snippet{Title: "patch the " + kind, Language: "shell",
			Text: fmt.Sprintf("kubectl -n %s patch %s %s --type=strategic -p '%s'", p.Namespace, strings.ToLower(kind), name, patch)})
	case "":
		fix = append(fix, fmt.Sprintf("Pod %s/%s has no controller: recreate it with these fields (a pod's nodeSelector cannot change).", p.Namespace, p.Name))
	default:
		fix = append(fix, fmt.Sprintf("Set them in the pod template of %s %s/%s (recreate it if its template is immutable).", kind, p.Namespace, name))
	}
	if len(unwell) > 0 {
		fix = append(fix, fmt.Sprintf("VNode %s also carries %s, which keeps new pods off until it is healthy again (see vnode.present); do not tolerate that.",
			vn.Name, strings.Join(unwell, ", ")))
	}
	if hasRequiredTerms(spec) {
		fix = append(fix, "Its required node affinity must also match the VNode: every term that excludes it (a NotIn on a VNode label, "+
			"matchFields on other node names) keeps it off; see the evidence.")
	}
	fix = append(fix, eciProfileRoute(profile))
	return strings.Join(fix, "\n"), snips
}

// eciProfileRoute is the other way to the same fields: an eci-profile
// selector, whose webhook adds the toleration and node selector when a
// matching pod is created.
func eciProfileRoute(profile *kube.ECIProfile) string {
	if profile == nil || len(profile.Selectors) == 0 {
		return "Or let the ECI webhook add them: add a selector to ConfigMap kube-system/eci-profile whose objectLabels match the workload's pod labels " +
			"(with policy virtualNodeOnly, or fair to let the scheduler choose); the webhook mutates pods when they are created, so roll the workload afterwards."
	}
	var names []string
	for _, s := range profile.Selectors {
		if s.ObjectLabels != nil && len(s.ObjectLabels.MatchLabels) > 0 {
			names = append(names, fmt.Sprintf("%s (pod labels %s)", s.Name, selectorString(s.ObjectLabels.MatchLabels)))
		}
	}
	if len(names) == 0 {
		return "Or let the ECI webhook add them: give the workload's pods labels that an eci-profile selector matches, then roll the workload."
	}
	return "Or let the ECI webhook add them: give the workload's pods the labels of eci-profile selector " + strings.Join(names, " or ") +
		" (the webhook mutates pods when they are created, so roll the workload afterwards)."
}

// noteUnread adds to out the ERROR of a part of the snapshot that could not
// be read, saying what the check did not see without it; only where VNodes
// exist, since without them the check had nothing to look at anyway.
func noteUnread(out []*pb.Result, s *kube.Snapshot, part, unseen string) []*pb.Result {
	if r := s.Unread(part); r != nil && len(vnodes(s.Nodes)) > 0 {
		r.Summary += " (" + unseen + ")"
		out = append(out, r)
	}
	return out
}

// listedDeployments is the snapshot's Deployments, none when they could
// not be listed (the checks then name pods rather than their Deployment).
func listedDeployments(s *kube.Snapshot) []*appsv1.Deployment {
	if s.PartErrors[kube.PartDeployments] != nil {
		return nil
	}
	return s.Deployments
}

// deploymentSet holds Deployments by namespace and name, for workloadOf.
type deploymentSet map[[2]string]bool

// deploymentNames indexes deps by namespace and name (a key of two
// strings: no string is made per Deployment, nor per lookup).
func deploymentNames(deps []*appsv1.Deployment) deploymentSet {
	m := make(deploymentSet, len(deps))
	for _, d := range deps {
		m[[2]string{d.Namespace, d.Name}] = true
	}
	return m
}

// defaultToleration reports whether t is one the DefaultTolerationSeconds
// admission plugin adds to every pod.
func defaultToleration(t corev1.Toleration) bool {
	return (t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable) && t.Effect == corev1.TaintEffectNoExecute &&
		t.Operator == corev1.TolerationOpExists && t.TolerationSeconds != nil && *t.TolerationSeconds == 300
}

// workloadOf names the workload whose pod template makes p: a ReplicaSet
// is named for its Deployment when that Deployment exists.
func workloadOf(p *kube.Pod, depByName deploymentSet) (kind, name string) {
	kind, name = p.OwnerKind, p.OwnerName
	if kind == "ReplicaSet" {
		if i := strings.LastIndexByte(name, '-'); i > 0 && depByName[[2]string{p.Namespace, name[:i]}] {
			return "Deployment", name[:i]
		}
	}
	return kind, name
}
