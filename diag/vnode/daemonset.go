package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// daemonPodTolerations are the tolerations the DaemonSet controller adds to
// every pod it creates (pkg/controller/daemon/util.AddOrUpdateDaemonPodTolerations),
// on top of the template's. Their effects decide placement as much as the
// template's own tolerations do.
func daemonPodTolerations(spec *corev1.PodSpec) []corev1.Toleration {
	tols := append([]corev1.Toleration{}, spec.Tolerations...)
	add := func(key string, effect corev1.TaintEffect) {
		t := corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect}
		for i := range tols {
			if tols[i].MatchToleration(&t) {
				tols[i] = t
				return
			}
		}
		tols = append(tols, t)
	}
	add(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute)
	add(corev1.TaintNodeDiskPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodePIDPressure, corev1.TaintEffectNoSchedule)
	add(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	if spec.HostNetwork {
		add(corev1.TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)
	}
	return tols
}

func hasRequiredTerms(spec *corev1.PodSpec) bool {
	a := spec.Affinity
	return a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil &&
		len(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) > 0
}

// exclusion is what a node selector term must add to keep off vns: one
// NotIn per label convention in use, and for VNodes that carry no VNode
// label, their names in matchFields.
func exclusion(vns []*corev1.Node) (exprs, fields []corev1.NodeSelectorRequirement) {
	var byType, byAliyun bool
	var names []string
	for _, n := range vns {
		switch {
		case n.Labels[kube.LabelType] == kube.LabelTypeVirtual:
			byType = true
		case n.Labels[kube.LabelVNode] == "true":
			byAliyun = true
		default:
			names = append(names, n.Name)
		}
	}
	if byType {
		exprs = append(exprs, corev1.NodeSelectorRequirement{Key: kube.LabelType, Operator: corev1.NodeSelectorOpNotIn, Values: []string{kube.LabelTypeVirtual}})
	}
	if byAliyun {
		exprs = append(exprs, corev1.NodeSelectorRequirement{Key: kube.LabelVNode, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"true"}})
	}
	if len(names) > 0 {
		sort.Strings(names)
		fields = append(fields, corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpNotIn, Values: names})
	}
	return exprs, fields
}

// mergedRequired is the required node affinity that keeps spec's pods off
// vns while keeping every node it matched before: node selector terms are
// ORed, so the exclusion is added to each term that matches a VNode (a term
// left without it would still place pods there). Terms that match no VNode
// are kept as they are.
func mergedRequired(spec *corev1.PodSpec, vns []*corev1.Node) *corev1.NodeSelector {
	exprs, fields := exclusion(vns)
	var terms []corev1.NodeSelectorTerm
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			terms = append(terms, *t.DeepCopy())
		}
	}
	if len(terms) == 0 {
		return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: exprs, MatchFields: fields}}}
	}
	for i := range terms {
		matchesVNode := false
		for _, n := range vns {
			if termMatches(terms[i], n) {
				matchesVNode = true
				break
			}
		}
		if !matchesVNode {
			continue
		}
		terms[i].MatchExpressions = appendMissing(terms[i].MatchExpressions, exprs)
		terms[i].MatchFields = appendMissing(terms[i].MatchFields, fields)
	}
	return &corev1.NodeSelector{NodeSelectorTerms: terms}
}

func appendMissing(have, add []corev1.NodeSelectorRequirement) []corev1.NodeSelectorRequirement {
	for _, r := range add {
		dup := false
		for _, h := range have {
			if h.Key == r.Key && h.Operator == r.Operator && strings.Join(h.Values, "\x00") == strings.Join(r.Values, "\x00") {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, r)
		}
	}
	return have
}

// affinityPatch is the strategic merge patch that sets the merged required
// node affinity. nodeSelectorTerms has no merge key, so the patch replaces
// the whole list: it must carry the existing terms too, which is why the
// merged list is computed rather than only the new expression shown.
func affinityPatch(merged *corev1.NodeSelector) (patch, block string) {
	na := map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": merged}}
	p, _ := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"affinity": na}}}})
	y, _ := yaml.Marshal(map[string]any{"affinity": na})
	return string(p), string(y)
}

// systemOwner says why a DaemonSet is managed by the cluster rather than by
// the user, empty for the user's own.
func systemOwner(ds *appsv1.DaemonSet) string {
	switch ds.Namespace {
	case "kube-system", "kube-public", "kube-node-lease":
		return "in namespace " + ds.Namespace
	}
	if m, ok := ds.Labels["addonmanager.kubernetes.io/mode"]; ok {
		return "managed by the addon manager (addonmanager.kubernetes.io/mode=" + m + ")"
	}
	return ""
}

func runDaemonSetAffinity(ctx context.Context, in *diag.Inputs) []*pb.Result {
	s := kube.Source.Get(in)
	if r := s.Unread(kube.PartDaemonSets); r != nil {
		return []*pb.Result{r}
	}
	return evaluateDaemonSets(ctx, s.Nodes, s.DaemonSets, s.Pods, s.NodeFacts())
}

// vnodePod is a DaemonSet pod bound, or pinned, to a VNode.
type vnodePod struct {
	pod   *kube.Pod
	vnode string
	bound bool
}

// daemonPodsOnVNodes indexes, in one pass over the pods, the DaemonSet
// pods bound or pinned to a VNode, by namespace/DaemonSet name. It returns
// nil when poll says stop.
func daemonPodsOnVNodes(poll *diag.Poll, pods []kube.Pod, isVN map[string]bool) map[string][]vnodePod {
	out := map[string][]vnodePod{}
	for i := range pods {
		if poll.Stop() {
			return nil
		}
		p := &pods[i]
		if p.OwnerKind != "DaemonSet" {
			continue
		}
		switch {
		case p.NodeName != "" && isVN[p.NodeName]:
			out[p.Namespace+"/"+p.OwnerName] = append(out[p.Namespace+"/"+p.OwnerName], vnodePod{p, p.NodeName, true})
		case p.NodeName == "" && isVN[p.PinnedNode()]:
			out[p.Namespace+"/"+p.OwnerName] = append(out[p.Namespace+"/"+p.OwnerName], vnodePod{p, p.PinnedNode(), false})
		}
	}
	return out
}

// evaluateDaemonSets decides, for every DaemonSet and VNode, whether the
// DaemonSet controller would place a pod there, and reports the DaemonSet
// pods that are on a VNode already.
func evaluateDaemonSets(ctx context.Context, nodes []*corev1.Node, dss []*appsv1.DaemonSet, pods []kube.Pod, facts *kube.NodeFacts) []*pb.Result {
	vns := vnodesOf(nodes, facts)
	if len(vns) == 0 {
		return []*pb.Result{noVNode(len(nodes))}
	}
	isVN := nameSet(vns)
	poll := diag.NewPoll(ctx)
	onVN := daemonPodsOnVNodes(poll, pods, isVN)
	if poll.Stop() {
		return diag.Stopped(ctx)
	}

	sorted := append([]*appsv1.DaemonSet{}, dss...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Namespace != sorted[j].Namespace {
			return sorted[i].Namespace < sorted[j].Namespace
		}
		return sorted[i].Name < sorted[j].Name
	})
	var out []*pb.Result
	var kept int
	seen := map[string]bool{}
	// DaemonSets whose templates place pods alike (often most of them)
	// are judged once per shape.
	shapes := map[string]*dsShape{}
	for _, ds := range sorted {
		if poll.Stop() {
			return diag.Stopped(ctx)
		}
		key := ds.Namespace + "/" + ds.Name
		seen[key] = true
		spec := &ds.Spec.Template.Spec
		sk := shapeKey(spec)
		sh := shapes[sk]
		if sh == nil {
			sh = &dsShape{p: newPlacement(spec, daemonPodTolerations(spec))}
			for _, n := range vns {
				if poll.Stop() {
					return diag.Stopped(ctx)
				}
				if ok, why := sh.p.placeable(n); ok {
					sh.landsOn = append(sh.landsOn, n)
					sh.why = append(sh.why, "placeable: "+why)
				}
			}
			shapes[sk] = sh
		}
		if len(sh.landsOn) == 0 && len(onVN[key]) == 0 {
			kept++
			continue
		}
		out = append(out, daemonSetFailure(ds, sh, vns, onVN[key]))
	}
	// DaemonSet pods on VNodes whose DaemonSet is not in the snapshot.
	var orphans []string
	for key := range onVN {
		if !seen[key] {
			orphans = append(orphans, key)
		}
	}
	sort.Strings(orphans)
	for _, key := range orphans {
		ns, name, _ := strings.Cut(key, "/")
		ps := onVN[key]
		res := diag.Fail("%d pod(s) of DaemonSet %s are on VNodes (the DaemonSet itself was not listed)", len(ps), key)
		res.Objects = []*pb.Object{diag.Obj("DaemonSet", ns, name)}
		res.Evidence = podEvidence(ps)
		res.Remediation = fmt.Sprintf("VNodes cannot run DaemonSet pods. Delete the pods: `kubectl -n %s delete pod %s`, "+
			"and keep their DaemonSet off VNodes with required node affinity %s.", ns, podNames(ps), exclusionText(vns))
		out = append(out, res)
	}
	sortResults(out)
	switch {
	case len(dss) == 0:
		out = append(out, diag.Pass("no DaemonSet in the cluster"))
	case kept > 0 && len(out) == 0:
		out = append(out, diag.Pass("all %d DaemonSets keep off the %d VNode(s)", kept, len(vns)))
	case kept > 0:
		out = append(out, diag.Pass("the other %d DaemonSets keep off the %d VNode(s)", kept, len(vns)))
	}
	return out
}

// dsShape is the placement of DaemonSets whose templates place pods alike
// (shapeKey): the VNodes they land on, why, and the patch that keeps them
// off, made once per shape.
type dsShape struct {
	p       *placement
	landsOn []*corev1.Node
	why     []string
	// patch and block are affinityPatch's, once a failure needs them.
	patch, block string
}

// shapeKey is what of a pod template decides its placement: node name,
// node selector, affinity, tolerations and host network (which adds a
// toleration for DaemonSet pods).
func shapeKey(spec *corev1.PodSpec) string {
	b, _ := json.Marshal(struct {
		NodeName     string
		NodeSelector map[string]string
		Affinity     *corev1.Affinity
		Tolerations  []corev1.Toleration
		HostNetwork  bool
	}{spec.NodeName, spec.NodeSelector, spec.Affinity, spec.Tolerations, spec.HostNetwork})
	return string(b)
}

// summaryNames is how many VNodes a summary line names before "... and N
// more"; an evidence line names up to diag.ListLimit.
const summaryNames = 3

func daemonSetFailure(ds *appsv1.DaemonSet, sh *dsShape, vns []*corev1.Node, ps []vnodePod) *pb.Result {
	p, landsOn := sh.p, sh.landsOn
	key := ds.Namespace + "/" + ds.Name
	sys := systemOwner(ds)
	mark := ""
	if sys != "" {
		mark = " (system DaemonSet, " + sys + ")"
	}
	names := make([]string, len(landsOn))
	for i, n := range landsOn {
		names[i] = n.Name
	}
	var summary string
	switch {
	case len(landsOn) > 0 && len(ps) > 0:
		summary = fmt.Sprintf("DaemonSet %s%s can be placed on VNode(s) %s, and %d of its pods are on VNodes", key, mark, diag.JoinFirst(names, summaryNames), len(ps))
	case len(landsOn) > 0:
		summary = fmt.Sprintf("DaemonSet %s%s can be placed on VNode(s) %s: its pods there stay Pending", key, mark, diag.JoinFirst(names, summaryNames))
	default:
		summary = fmt.Sprintf("DaemonSet %s%s keeps off VNodes now, but %d of its pods are still on VNodes", key, mark, len(ps))
	}
	res := diag.Fail("%s", summary)
	// The VNodes are named in the evidence, as vnode.pod-placement names
	// them: the result is about the DaemonSet, which the fix changes.
	res.Objects = []*pb.Object{diag.Obj("DaemonSet", ds.Namespace, ds.Name)}
	var ev []*pb.Evidence
	if sys != "" {
		ev = append(ev, diag.Ev("owner", "", "system DaemonSet the user does not own: "+sys))
	}
	ev = append(ev, placementEvidence(names, sh.why, "excluded by required node affinity, nodeSelector or an untolerated VNode taint")...)
	res.Evidence = append(ev, podEvidence(ps)...)

	var fix []string
	if len(landsOn) > 0 {
		if sh.patch == "" {
			sh.patch, sh.block = affinityPatch(mergedRequired(p.spec, vns))
		}
		patch, block := sh.patch, sh.block
		how := "there are no required terms yet, so the patch adds one with " + exclusionText(vns)
		if hasRequiredTerms(p.spec) {
			how = "nodeSelectorTerms are ORed and the patch replaces the whole list, so it carries the existing terms, " +
				"each term that matched a VNode extended with " + exclusionText(vns)
		}
		fix = append(fix, fmt.Sprintf("VNodes cannot run DaemonSet pods. Keep %s off them with a required node affinity:\n"+
			"kubectl -n %s patch daemonset %s --type=strategic -p '%s'\n"+
			"(%s; preferred terms are left as they are). Afterwards spec.template.spec must contain:\n%s",
			key, ds.Namespace, ds.Name, patch, how, strings.TrimRight(block, "\n")))
	}
	if len(ps) > 0 {
		if len(landsOn) > 0 {
			fix = append(fix, "The DaemonSet controller then deletes its pods on VNodes; if any remain: "+
				fmt.Sprintf("`kubectl -n %s delete pod %s`.", ds.Namespace, podNames(ps)))
		} else {
			fix = append(fix, fmt.Sprintf("Delete the pods left on VNodes: `kubectl -n %s delete pod %s`.", ds.Namespace, podNames(ps)))
		}
	}
	if sys != "" {
		fix = append(fix, "This DaemonSet is managed by the cluster ("+sys+"): an add-on manager or an upgrade may revert a direct patch, "+
			"so make the same change where the component is configured (its add-on parameters, Helm values or manifest) and re-run this check.")
	}
	res.Remediation = strings.Join(fix, "\n")
	return res
}

func exclusionText(vns []*corev1.Node) string {
	exprs, fields := exclusion(vns)
	var s []string
	for _, r := range exprs {
		s = append(s, fmt.Sprintf("`%s NotIn [%s]`", r.Key, strings.Join(r.Values, ",")))
	}
	for _, r := range fields {
		s = append(s, fmt.Sprintf("matchFields `%s NotIn [%s]`", r.Key, strings.Join(r.Values, ",")))
	}
	return strings.Join(s, " and ")
}

func podEvidence(ps []vnodePod) []*pb.Evidence {
	sorted := append([]vnodePod{}, ps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].pod.Name < sorted[j].pod.Name })
	var ev []*pb.Evidence
	for i, p := range sorted {
		if i == diag.ListLimit {
			ev = append(ev, diag.Ev("more pods on VNodes", "", fmt.Sprintf("%d more not listed", len(sorted)-i)))
			break
		}
		where := "bound to VNode " + p.vnode
		if !p.bound {
			where = "not bound, pinned by node affinity to VNode " + p.vnode
		}
		phase := p.pod.Phase.String()
		if phase == "" {
			phase = "no phase"
		}
		ev = append(ev, diag.Ev("pod "+p.pod.Namespace+"/"+p.pod.Name, "no DaemonSet pod on a VNode", phase+", "+where))
	}
	return ev
}

func podNames(ps []vnodePod) string {
	n := make([]string, len(ps))
	for i, p := range ps {
		n[i] = p.pod.Name
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}
