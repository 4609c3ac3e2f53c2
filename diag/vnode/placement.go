package vnode

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// schedulingTaint is the taint filter of the scheduler's TaintToleration
// plugin and of the DaemonSet controller: only NoSchedule and NoExecute
// taints keep a pod off a node.
func schedulingTaint(t *corev1.Taint) bool {
	return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
}

// placement is the scheduler's filter decision for one pod spec (its node
// name, node selector, required node affinity and tolerations), made with
// the scheduler's own helpers (k8s.io/component-helpers nodeaffinity and
// FindMatchingUntoleratedTaint): built once per DaemonSet or pod, then
// asked for each node. vnode.daemonset-affinity and vnode.pod-placement
// decide with the same code.
type placement struct {
	spec        *corev1.PodSpec
	tolerations []corev1.Toleration
	required    nodeaffinity.RequiredNodeAffinity
	selector    nodeaffinity.RequiredNodeAffinity // nodeSelector alone, to explain
	affinity    nodeaffinity.RequiredNodeAffinity // required node affinity alone, to explain
}

// newPlacement decides for spec with tolerations: the spec's own for a pod,
// daemonPodTolerations(spec) for a DaemonSet's pods.
func newPlacement(spec *corev1.PodSpec, tolerations []corev1.Toleration) *placement {
	return &placement{
		spec:        spec,
		tolerations: tolerations,
		required:    nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity),
		selector:    nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, nil),
		affinity:    nodeaffinity.NewRequiredNodeAffinity(nil, spec.Affinity),
	}
}

// placeable reports whether the scheduler's filters let the pod onto node
// (for a DaemonSet: whether its controller would create a pod for node,
// nodeShouldRunDaemonPod's shouldRun), with the reason either way.
func (p *placement) placeable(node *corev1.Node) (bool, string) {
	if p.spec.NodeName != "" && p.spec.NodeName != node.Name {
		return false, fmt.Sprintf("the pod template names node %s", p.spec.NodeName)
	}
	// Parsing errors are ignored, as the controller does: a selector that
	// does not parse matches nothing.
	if ok, _ := p.required.Match(node); !ok {
		if ok, _ := p.selector.Match(node); !ok {
			return false, "excluded by nodeSelector " + selectorString(p.spec.NodeSelector)
		}
		return false, "excluded by required node affinity"
	}
	taint, untolerated := schedcorev1.FindMatchingUntoleratedTaint(logr.Discard(), node.Spec.Taints, p.tolerations, schedulingTaint, false)
	if untolerated {
		return false, "taint " + taintString(taint) + " is not tolerated"
	}
	return true, p.matchReason(node) + "; " + p.toleratesReason(node)
}

func (p *placement) matchReason(node *corev1.Node) string {
	hasSel := len(p.spec.NodeSelector) > 0
	a := p.spec.Affinity
	hasAff := a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil
	switch {
	case !hasSel && !hasAff:
		return "no nodeSelector and no required node affinity"
	case hasSel && !hasAff:
		return "nodeSelector " + selectorString(p.spec.NodeSelector) + " matches and there is no required node affinity"
	case !hasSel:
		return "required node affinity matches: " + matchingTerms(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution, node)
	}
	return "nodeSelector " + selectorString(p.spec.NodeSelector) + " and required node affinity match: " +
		matchingTerms(a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution, node)
}

// matchingTerms names the ORed node selector terms that match node.
func matchingTerms(ns *corev1.NodeSelector, node *corev1.Node) string {
	var hit []string
	for i, t := range ns.NodeSelectorTerms {
		if termMatches(t, node) {
			hit = append(hit, fmt.Sprintf("term %d (%s)", i+1, termString(t)))
		}
	}
	return strings.Join(hit, ", ")
}

func termMatches(t corev1.NodeSelectorTerm, node *corev1.Node) bool {
	ok, _ := nodeaffinity.NewLazyErrorNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{t}}).Match(node)
	return ok
}

func (p *placement) toleratesReason(node *corev1.Node) string {
	var parts []string
	for _, t := range node.Spec.Taints {
		if !schedulingTaint(&t) {
			continue
		}
		for _, tol := range p.tolerations {
			if tol.ToleratesTaint(logr.Discard(), &t, false) {
				parts = append(parts, "tolerates taint "+taintString(t)+" by toleration "+tolerationString(tol))
				break
			}
		}
	}
	if len(parts) == 0 {
		return "the node has no NoSchedule or NoExecute taint"
	}
	return strings.Join(parts, ", ")
}

func tolerationString(t corev1.Toleration) string {
	var f []string
	if t.Key != "" {
		f = append(f, "key: "+t.Key)
	}
	op := t.Operator
	if op == "" {
		op = corev1.TolerationOpEqual
	}
	f = append(f, "operator: "+string(op))
	if t.Value != "" {
		f = append(f, "value: "+t.Value)
	}
	if t.Effect != "" {
		f = append(f, "effect: "+string(t.Effect))
	}
	return "{" + strings.Join(f, ", ") + "}"
}

func selectorString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k + "=" + m[k]
	}
	return "{" + strings.Join(s, ", ") + "}"
}

func termString(t corev1.NodeSelectorTerm) string {
	var s []string
	for _, r := range append(append([]corev1.NodeSelectorRequirement{}, t.MatchExpressions...), t.MatchFields...) {
		x := r.Key + " " + string(r.Operator)
		if len(r.Values) > 0 {
			x += " [" + strings.Join(r.Values, ",") + "]"
		}
		s = append(s, x)
	}
	if len(s) == 0 {
		return "empty"
	}
	return strings.Join(s, " AND ")
}

// placementEvidence is one evidence line per distinct reason about the
// VNodes names (why[i] is names[i]'s), in the order the reasons first
// appear: VNodes placed alike share one line that names them (at most
// diag.ListLimit, and how many), so a DaemonSet placeable on fifty VNodes
// gives a line or two, not fifty.
func placementEvidence(names, why []string, expected string) []*pb.Evidence {
	var order []string
	byWhy := map[string][]string{}
	for i, n := range names {
		if _, ok := byWhy[why[i]]; !ok {
			order = append(order, why[i])
		}
		byWhy[why[i]] = append(byWhy[why[i]], n)
	}
	ev := make([]*pb.Evidence, len(order))
	for i, w := range order {
		label := "placement on VNode " + byWhy[w][0]
		if len(byWhy[w]) > 1 {
			label = fmt.Sprintf("placement on %d VNodes %s", len(byWhy[w]), diag.JoinCapped(byWhy[w]))
		}
		ev[i] = diag.Ev(label, expected, w)
	}
	return ev
}
