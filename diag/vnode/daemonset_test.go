package vnode

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestPlaceable(t *testing.T) {
	vn := typeVNode("vn")
	aliyun := aliyunVNode("vn-a")
	untainted := testNode("vn-bare", map[string]string{"type": "virtual-kubelet"})
	tests := []struct {
		name string
		node *corev1.Node
		spec func(*corev1.PodSpec)
		want bool
		why  string
	}{
		{"no constraints, no toleration: taint keeps it off", vn, nil, false, "taint virtual-kubelet.io/provider=alibabacloud:NoSchedule is not tolerated"},
		{"tolerate all lands", vn, func(s *corev1.PodSpec) { s.Tolerations = tolerateAll }, true, "by toleration {operator: Exists}"},
		{"tolerate the key lands", vn, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists}}
		}, true, "key: virtual-kubelet.io/provider"},
		{"toleration of NoExecute only does not tolerate NoSchedule", vn, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
		}, false, "not tolerated"},
		{"toleration with the wrong value", vn, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpEqual, Value: "azure", Effect: corev1.TaintEffectNoSchedule}}
		}, false, "not tolerated"},
		{"aliyun taint tolerated by key and value", aliyun, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "k8s.aliyun.com/vnode", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
		}, true, "k8s.aliyun.com/vnode=true:NoSchedule"},
		{"untainted VNode takes a DaemonSet without constraints", untainted, nil, true, "no nodeSelector and no required node affinity; the node has no NoSchedule or NoExecute taint"},
		{"NotIn virtual-kubelet keeps off despite tolerate all", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")))
		}, false, "excluded by required node affinity"},
		{"NotIn virtual-kubelet does not exclude an aliyun-labelled VNode", aliyun, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")))
		}, true, "term 1 (type NotIn [virtual-kubelet])"},
		{"DoesNotExist type keeps off", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpDoesNotExist)))
		}, false, "excluded by required node affinity"},
		{"DoesNotExist aliyun label keeps off an aliyun VNode", aliyun, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("k8s.aliyun.com/vnode", corev1.NodeSelectorOpDoesNotExist)))
		}, false, "excluded by required node affinity"},
		{"In with other values keeps off", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpIn, "physical", "ecs")))
		}, false, "excluded by required node affinity"},
		{"In linux matches the VNode", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")))
		}, true, "term 1 (kubernetes.io/os In [linux])"},
		{"ORed terms, only one excludes VNodes: lands", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(
				term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")),
				term(req("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")))
		}, true, "term 2 (kubernetes.io/os In [linux])"},
		{"ORed terms, all exclude VNodes", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(
				term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")),
				term(req("node-role.kubernetes.io/worker", corev1.NodeSelectorOpExists)))
		}, false, "excluded by required node affinity"},
		{"nodeSelector only, matching", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		}, true, "nodeSelector {kubernetes.io/os=linux} matches"},
		{"nodeSelector only, not matching", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.NodeSelector = map[string]string{"node-role.kubernetes.io/worker": ""}
		}, false, "excluded by nodeSelector {node-role.kubernetes.io/worker=}"},
		{"nodeSelector matches but affinity excludes", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")))
		}, false, "excluded by required node affinity"},
		{"matchFields metadata.name NotIn", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpNotIn, "vn")}})
		}, false, "excluded by required node affinity"},
		{"preferred affinity alone does not exclude", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
				{Weight: 100, Preference: term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet"))}}}}
		}, true, "no nodeSelector and no required node affinity"},
		{"template nodeName names another node", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.NodeName = "ecs-1"
		}, false, "names node ecs-1"},
		{"invalid selector matches nothing, as in the controller", vn, func(s *corev1.PodSpec) {
			s.Tolerations = tolerateAll
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpGt, "x", "y")))
		}, false, "excluded by required node affinity"},
		{"default daemon tolerations cover a not-ready VNode's NoExecute taint only together with the VNode taint", testNode("vn-nr",
			map[string]string{"type": "virtual-kubelet"}, vkTaint, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}), func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists}}
		}, true, "tolerates taint node.kubernetes.io/not-ready:NoExecute"},
		{"PreferNoSchedule taint does not keep a daemon pod off", testNode("vn-p", map[string]string{"type": "virtual-kubelet"},
			corev1.Taint{Key: "virtual-kubelet.io/provider", Value: "x", Effect: corev1.TaintEffectPreferNoSchedule}), nil, true, "no NoSchedule or NoExecute taint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := testDS("ns", "ds", tt.spec)
			got, why := newPlacement(&ds.Spec.Template.Spec, daemonPodTolerations(&ds.Spec.Template.Spec)).placeable(tt.node)
			if got != tt.want || !strings.Contains(why, tt.why) {
				t.Errorf("placeable = %v, %q; want %v containing %q", got, why, tt.want, tt.why)
			}
		})
	}
}

func TestDaemonPodTolerations(t *testing.T) {
	spec := &corev1.PodSpec{HostNetwork: true, Tolerations: []corev1.Toleration{
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64)},
	}}
	got := daemonPodTolerations(spec)
	if len(got) != 7 {
		t.Fatalf("want 7 tolerations (6 defaults + network-unavailable for hostNetwork), got %d: %v", len(got), got)
	}
	if got[0].TolerationSeconds != nil {
		t.Errorf("the template's not-ready toleration must be replaced by the infinite default, got %v", got[0])
	}
	if len(spec.Tolerations) != 1 {
		t.Errorf("the template must not be modified")
	}
}

// TestMergedRequired proves that the proposed affinity keeps every VNode off
// and every real node the DaemonSet matched before on, with the same
// scheduler helper the checks use.
func TestMergedRequired(t *testing.T) {
	vns := []*corev1.Node{typeVNode("vn-1"), aliyunVNode("vn-2")}
	reals := []*corev1.Node{
		realNode("ecs-1"),
		testNode("worker-1", map[string]string{"node-role.kubernetes.io/worker": ""}),
		testNode("gpu-1", map[string]string{"gpu": "true", "type": "gpu"}),
	}
	tests := []struct {
		name  string
		vns   []*corev1.Node
		spec  func(*corev1.PodSpec)
		terms int
		want  string // JSON of the merged terms
	}{
		{"no affinity", vns[:1], nil, 1,
			`[{"matchExpressions":[{"key":"type","operator":"NotIn","values":["virtual-kubelet"]}]}]`},
		{"no affinity, both conventions", vns, nil, 1,
			`[{"matchExpressions":[{"key":"type","operator":"NotIn","values":["virtual-kubelet"]},{"key":"k8s.aliyun.com/vnode","operator":"NotIn","values":["true"]}]}]`},
		{"one term matching VNodes gets the expression", vns[:1], func(s *corev1.PodSpec) {
			s.Affinity = required(term(req("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")))
		}, 1, `[{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]},{"key":"type","operator":"NotIn","values":["virtual-kubelet"]}]}]`},
		{"ORed terms: only the one matching VNodes changes", vns[:1], func(s *corev1.PodSpec) {
			s.Affinity = required(
				term(req("node-role.kubernetes.io/worker", corev1.NodeSelectorOpExists)),
				term(req("kubernetes.io/os", corev1.NodeSelectorOpIn, "linux")))
		}, 2, `[{"matchExpressions":[{"key":"node-role.kubernetes.io/worker","operator":"Exists"}]},{"matchExpressions":[{"key":"kubernetes.io/os","operator":"In","values":["linux"]},{"key":"type","operator":"NotIn","values":["virtual-kubelet"]}]}]`},
		{"term already excluding one convention gets the other", vns, func(s *corev1.PodSpec) {
			s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet")))
		}, 1, `[{"matchExpressions":[{"key":"type","operator":"NotIn","values":["virtual-kubelet"]},{"key":"k8s.aliyun.com/vnode","operator":"NotIn","values":["true"]}]}]`},
		{"matchFields kept", vns[:1], func(s *corev1.PodSpec) {
			s.Affinity = required(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpNotIn, "old-1")}})
		}, 1, `[{"matchExpressions":[{"key":"type","operator":"NotIn","values":["virtual-kubelet"]}],"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["old-1"]}]}]`},
		{"taint-only VNode is excluded by name", []*corev1.Node{testNode("vn-t", nil, vkTaint)}, nil, 1,
			`[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["vn-t"]}]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := testDS("ns", "ds", func(s *corev1.PodSpec) {
				s.Tolerations = tolerateAll
				if tt.spec != nil {
					tt.spec(s)
				}
			})
			spec := &ds.Spec.Template.Spec
			before := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, spec.Affinity)
			merged := mergedRequired(spec, tt.vns)
			b, _ := json.Marshal(merged.NodeSelectorTerms)
			if string(b) != tt.want {
				t.Errorf("merged terms\n got %s\nwant %s", b, tt.want)
			}
			aff := spec.Affinity.DeepCopy()
			if aff == nil {
				aff = &corev1.Affinity{}
			}
			if aff.NodeAffinity == nil {
				aff.NodeAffinity = &corev1.NodeAffinity{}
			}
			aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = merged
			after := nodeaffinity.NewRequiredNodeAffinity(spec.NodeSelector, aff)
			for _, n := range tt.vns {
				if ok, err := after.Match(n); ok || err != nil {
					t.Errorf("merged affinity still matches VNode %s (err %v)", n.Name, err)
				}
			}
			for _, n := range reals {
				was, _ := before.Match(n)
				now, _ := after.Match(n)
				if was != now {
					t.Errorf("node %s: matched %v before, %v after", n.Name, was, now)
				}
			}
			if spec.Affinity != nil && len(spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions) > 2 {
				t.Errorf("the DaemonSet's own spec was modified")
			}
		})
	}
}

func TestEvaluateDaemonSets(t *testing.T) {
	ctx := context.Background()
	nodes := []*corev1.Node{realNode("ecs-1"), typeVNode("vn-1"), aliyunVNode("vn-2")}
	kept := testDS("logging", "fluent-bit", func(s *corev1.PodSpec) {
		s.Tolerations = tolerateAll
		s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet"), req("k8s.aliyun.com/vnode", corev1.NodeSelectorOpNotIn, "true")))
	})
	plain := testDS("default", "agent", nil)
	proxy := testDS("kube-system", "kube-proxy", func(s *corev1.PodSpec) {
		s.Tolerations = tolerateAll
		s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	})
	exporter := testDS("monitoring", "node-exporter", func(s *corev1.PodSpec) { s.Tolerations = tolerateAll })
	pods := []kube.Pod{
		{Namespace: "kube-system", Name: "kube-proxy-abcde", NodeName: "vn-1", Phase: kube.PhasePending, OwnerKind: "DaemonSet", OwnerName: "kube-proxy"},
		{Namespace: "kube-system", Name: "kube-proxy-fghij", NodeName: "ecs-1", Phase: kube.PhaseRunning, OwnerKind: "DaemonSet", OwnerName: "kube-proxy"},
		{Namespace: "monitoring", Name: "node-exporter-x", Detail: &kube.PodDetail{PinnedNode: "vn-2"}, Phase: kube.PhasePending, OwnerKind: "DaemonSet", OwnerName: "node-exporter"},
		{Namespace: "default", Name: "web-1", NodeName: "vn-1", Phase: kube.PhaseRunning, OwnerKind: "ReplicaSet", OwnerName: "web-5d8f"},
		{Namespace: "old", Name: "gone-q", NodeName: "vn-1", Phase: kube.PhasePending, OwnerKind: "DaemonSet", OwnerName: "gone"},
		{Namespace: "logging", Name: "fluent-bit-stale", NodeName: "vn-2", Phase: kube.PhaseFailed, OwnerKind: "DaemonSet", OwnerName: "fluent-bit"},
	}

	t.Run("no VNode", func(t *testing.T) {
		got := evaluateDaemonSets(ctx, nodes[:1], []*appsv1.DaemonSet{proxy}, pods, nil)
		if diagtest.StatusNames(got) != "SKIP" || !strings.Contains(got[0].Summary, "no VNode") {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("all kept off", func(t *testing.T) {
		got := evaluateDaemonSets(ctx, nodes, []*appsv1.DaemonSet{kept, plain}, nil, nil)
		if diagtest.StatusNames(got) != "PASS" || got[0].Summary != "all 2 DaemonSets keep off the 2 VNode(s)" {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("no DaemonSet", func(t *testing.T) {
		got := evaluateDaemonSets(ctx, nodes, nil, nil, nil)
		if diagtest.StatusNames(got) != "PASS" || got[0].Summary != "no DaemonSet in the cluster" {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
	t.Run("many VNodes", func(t *testing.T) {
		// 50 VNodes, two taints: the summary names 3, the evidence one line
		// per reason naming up to diag.ListLimit; the object is the DaemonSet.
		many := []*corev1.Node{realNode("ecs-1")}
		var onVN []kube.Pod
		for i := range 50 {
			if i%2 == 0 {
				many = append(many, typeVNode(fmt.Sprintf("vn-%02d", i)))
			} else {
				many = append(many, aliyunVNode(fmt.Sprintf("vn-%02d", i)))
			}
			onVN = append(onVN, kube.Pod{Namespace: "monitoring", Name: fmt.Sprintf("node-exporter-%02d", i), NodeName: fmt.Sprintf("vn-%02d", i),
				Phase: kube.PhasePending, OwnerKind: "DaemonSet", OwnerName: "node-exporter"})
		}
		got := evaluateDaemonSets(ctx, many, []*appsv1.DaemonSet{exporter}, onVN, nil)
		if diagtest.StatusNames(got) != "FAIL" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		r := got[0]
		if want := "DaemonSet monitoring/node-exporter can be placed on VNode(s) vn-00, vn-01, vn-02 ... and 47 more, and 50 of its pods are on VNodes"; r.Summary != want {
			t.Errorf("summary %q, want %q", r.Summary, want)
		}
		if len(r.Objects) != 1 || r.Objects[0].Kind != "DaemonSet" {
			t.Errorf("objects %v, want the DaemonSet", r.Objects)
		}
		var placements, podLines []string
		for _, e := range r.Evidence {
			if strings.HasPrefix(e.Label, "placement on ") {
				placements = append(placements, e.Label)
			} else {
				podLines = append(podLines, e.Label)
			}
		}
		if len(placements) != 2 || !strings.HasPrefix(placements[0], "placement on 25 VNodes vn-00, vn-02, ") ||
			!strings.HasSuffix(placements[0], "vn-38 ... and 5 more") || !strings.HasPrefix(placements[1], "placement on 25 VNodes vn-01, vn-03, ") {
			t.Errorf("placement evidence, one line per taint: %q", placements)
		}
		if len(podLines) != diag.ListLimit+1 || podLines[diag.ListLimit] != "more pods on VNodes" {
			t.Errorf("pod evidence, %d lines and one that counts the rest: %q", diag.ListLimit, podLines)
		}
		if !strings.Contains(r.Remediation, "node-exporter-49") {
			t.Errorf("the delete command must name every pod:\n%s", r.Remediation)
		}
	})
	t.Run("faults", func(t *testing.T) {
		got := evaluateDaemonSets(ctx, nodes, []*appsv1.DaemonSet{proxy, exporter, kept, plain}, pods, nil)
		if diagtest.StatusNames(got) != "FAIL,FAIL,FAIL,FAIL,PASS" {
			t.Fatalf("statuses %s\n%s", diagtest.StatusNames(got), diagtest.Dump(got))
		}
		// Sorted by object: kube-system/kube-proxy, logging/fluent-bit, monitoring/node-exporter, old/gone.
		var order []string
		for _, r := range got[:4] {
			order = append(order, r.Objects[0].Namespace+"/"+r.Objects[0].Name)
		}
		if strings.Join(order, " ") != "kube-system/kube-proxy logging/fluent-bit monitoring/node-exporter old/gone" {
			t.Errorf("order %v", order)
		}
		px := got[0]
		if !strings.Contains(px.Summary, "(system DaemonSet, in namespace kube-system)") || !strings.Contains(px.Summary, "vn-1, vn-2") {
			t.Errorf("kube-proxy summary %q", px.Summary)
		}
		wantPatch := `kubectl -n kube-system patch daemonset kube-proxy --type=strategic -p '{"spec":{"template":{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"type","operator":"NotIn","values":["virtual-kubelet"]},{"key":"k8s.aliyun.com/vnode","operator":"NotIn","values":["true"]}]}]}}}}}}}'`
		if !strings.Contains(px.Remediation, wantPatch) {
			t.Errorf("kube-proxy remediation lacks the patch:\n%s", px.Remediation)
		}
		if !strings.Contains(px.Remediation, "affinity:\n  nodeAffinity:\n    requiredDuringSchedulingIgnoredDuringExecution:\n      nodeSelectorTerms:\n      - matchExpressions:\n        - key: type\n          operator: NotIn\n          values:\n          - virtual-kubelet\n") {
			t.Errorf("kube-proxy remediation lacks the merged YAML:\n%s", px.Remediation)
		}
		if !strings.Contains(px.Remediation, "managed by the cluster") {
			t.Errorf("system DaemonSet not marked in remediation:\n%s", px.Remediation)
		}
		if !hasEvidence(px, "pod kube-system/kube-proxy-abcde", "Pending, bound to VNode vn-1") || hasEvidence(px, "pod kube-system/kube-proxy-fghij", "") {
			t.Errorf("kube-proxy pods evidence:\n%s", diagtest.Dump(got[:1]))
		}
		if !hasEvidence(px, "placement on VNode vn-1", "tolerates taint virtual-kubelet.io/provider=alibabacloud:NoSchedule by toleration {operator: Exists}") {
			t.Errorf("kube-proxy placement evidence:\n%s", diagtest.Dump(got[:1]))
		}
		fb := got[1]
		if !strings.Contains(fb.Summary, "keeps off VNodes now, but 1 of its pods are still on VNodes") || !strings.Contains(fb.Remediation, "kubectl -n logging delete pod fluent-bit-stale") {
			t.Errorf("fluent-bit:\n%s", diagtest.Dump(got[1:2]))
		}
		ne := got[2]
		if strings.Contains(ne.Summary, "system") || !hasEvidence(ne, "pod monitoring/node-exporter-x", "pinned by node affinity to VNode vn-2") {
			t.Errorf("node-exporter:\n%s", diagtest.Dump(got[2:3]))
		}
		if !strings.Contains(got[3].Summary, "the DaemonSet itself was not listed") {
			t.Errorf("orphan:\n%s", diagtest.Dump(got[3:4]))
		}
		if got[4].Summary != "the other 1 DaemonSets keep off the 2 VNode(s)" {
			t.Errorf("pass summary %q", got[4].Summary)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		got := evaluateDaemonSets(c, nodes, []*appsv1.DaemonSet{proxy}, nil, nil)
		if diagtest.StatusNames(got) != "ERROR" {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})
}

func TestSystemOwner(t *testing.T) {
	for _, tt := range []struct {
		ns     string
		labels map[string]string
		want   string
	}{
		{"kube-system", nil, "in namespace kube-system"},
		{"kube-node-lease", nil, "in namespace kube-node-lease"},
		{"monitoring", map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"}, "managed by the addon manager (addonmanager.kubernetes.io/mode=Reconcile)"},
		{"monitoring", map[string]string{"app.kubernetes.io/managed-by": "Helm"}, ""},
		{"default", nil, ""},
	} {
		ds := testDS(tt.ns, "x", nil)
		ds.Labels = tt.labels
		if got := systemOwner(ds); got != tt.want {
			t.Errorf("systemOwner(%s, %v) = %q, want %q", tt.ns, tt.labels, got, tt.want)
		}
	}
}

func hasEvidence(r *pb.Result, label, observed string) bool {
	for _, e := range r.Evidence {
		if e.Label == label && strings.Contains(e.Observed, observed) {
			return true
		}
	}
	return false
}
