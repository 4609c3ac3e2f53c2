package vnode

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func pendingPod(name string, sel map[string]string, tols ...corev1.Toleration) kube.Pod {
	return kube.Pod{Namespace: "batch", Name: name, Phase: kube.PhasePending, OwnerKind: "Job", OwnerName: name,
		Detail: &kube.PodDetail{Labels: map[string]string{"app": name}, Scheduling: &kube.PodScheduling{NodeSelector: sel, Tolerations: tols}}}
}

var (
	tolVK     = corev1.Toleration{Key: kube.TaintVKProvider, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	tolAliyun = corev1.Toleration{Key: kube.TaintVNode, Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}
	vkSel     = map[string]string{"type": "virtual-kubelet"}
)

func TestEvaluatePodPlacement(t *testing.T) {
	nodes := []*corev1.Node{realNode("dc-1"), typeVNode("vk-1")}
	failedEv := kube.Event{Namespace: "batch", Reason: "FailedScheduling", Count: 3,
		Message: "0/2 nodes are available: 1 node(s) had untolerated taint {virtual-kubelet.io/provider: alibabacloud}, 1 node(s) didn't match Pod's node affinity/selector."}
	withAff := pendingPod("aff", nil, tolVK)
	withAff.Detail.Scheduling.NodeAffinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet"))).NodeAffinity
	withAffIn := pendingPod("aff-in", nil)
	withAffIn.Detail.Scheduling.NodeAffinity = required(term(req("type", corev1.NodeSelectorOpIn, "virtual-kubelet"))).NodeAffinity
	bound := pendingPod("bound", vkSel)
	bound.Detail.Scheduling, bound.NodeName = nil, "dc-1"
	profile := kube.ParseECIProfile(map[string]string{"vSwitchIds": "vsw-a1", "securityGroupId": "sg-a1",
		"selectors": `[{"name": "burst", "objectLabels": {"matchLabels": {"app": "burst"}}}]`})

	tests := []struct {
		name    string
		nodes   []*corev1.Node
		pods    []kube.Pod
		events  []kube.Event
		profile *kube.ECIProfile
		want    string
		summary string // of the first result
		fix     string // in the first result's remediation
	}{
		{"no vnode", []*corev1.Node{realNode("dc-1")}, []kube.Pod{pendingPod("p", vkSel)}, nil, nil, "SKIP", "no VNode in the cluster", ""},
		{"selector without toleration", nodes, []kube.Pod{pendingPod("sel", vkSel)}, nil, nil, "FAIL",
			"pending pod batch/sel is meant for a VNode (nodeSelector type=virtual-kubelet) but no VNode accepts it: VNode vk-1: taint virtual-kubelet.io/provider=alibabacloud:NoSchedule is not tolerated",
			"- effect: NoSchedule\n  key: virtual-kubelet.io/provider\n  operator: Exists"},
		{"toleration, wrong selector (the reverse)", nodes, []kube.Pod{pendingPod("rev", map[string]string{"type": "virtual-kubelet-eci"}, tolVK)}, nil, nil, "FAIL",
			"pending pod batch/rev is meant for a VNode (toleration {key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}) but no VNode accepts it: VNode vk-1: excluded by nodeSelector {type=virtual-kubelet-eci}",
			"nodeSelector type=virtual-kubelet-eci is dropped"},
		{"toleration, affinity excludes", nodes, []kube.Pod{withAff}, nil, nil, "FAIL",
			"pending pod batch/aff is meant for a VNode (toleration {key: virtual-kubelet.io/provider, operator: Exists, effect: NoSchedule}) but no VNode accepts it: VNode vk-1: excluded by required node affinity",
			"Its required node affinity must also match the VNode"},
		{"affinity In without toleration", nodes, []kube.Pod{withAffIn}, nil, nil, "FAIL",
			"pending pod batch/aff-in is meant for a VNode (required node affinity type In [virtual-kubelet]) but no VNode accepts it", "Set them in the pod template of Job batch/aff-in"},
		{"placeable, no event", nodes, []kube.Pod{pendingPod("ok", vkSel, tolVK)}, nil, nil, "PASS", "no pending pod meant for a VNode is kept off the 1 VNode(s)", ""},
		{"placeable, scheduler still fails", nodes, []kube.Pod{pendingPod("res", vkSel, tolVK)},
			[]kube.Event{{Namespace: "batch", Pod: "res", Reason: "FailedScheduling", Count: 1, Message: "0/2 nodes are available: 1 Insufficient cpu."}}, nil, "WARN",
			"pending pod batch/res is free to go to VNode(s) vk-1 (nodeSelector, node affinity and tolerations let it), but the scheduler reports it unschedulable: 0/2 nodes are available: 1 Insufficient cpu.", ""},
		{"not meant for a vnode", nodes, []kube.Pod{pendingPod("plain", map[string]string{"disk": "ssd"})}, nil, nil, "PASS", "no pending pod meant for a VNode", ""},
		{"catch-all toleration says nothing", nodes, []kube.Pod{pendingPod("sys", nil, corev1.Toleration{Operator: corev1.TolerationOpExists})}, nil, nil, "PASS", "no pending pod", ""},
		{"bound pods are not judged", nodes, []kube.Pod{bound}, nil, nil, "PASS", "no pending pod", ""},
		{"wrong convention's toleration", []*corev1.Node{realNode("dc-1"), typeVNode("vk-1")}, []kube.Pod{pendingPod("conv", vkSel, tolAliyun)}, nil, nil, "FAIL",
			"pending pod batch/conv is meant for a VNode (nodeSelector type=virtual-kubelet) but no VNode accepts it: VNode vk-1: taint virtual-kubelet.io/provider=alibabacloud:NoSchedule is not tolerated", ""},
		{"eci-profile selector matched, webhook did not act", nodes, []kube.Pod{func() kube.Pod {
			p := pendingPod("burst", nil)
			p.Detail.Labels = map[string]string{"app": "burst"}
			return p
		}()}, []kube.Event{func() kube.Event { e := failedEv; e.Pod = "burst"; return e }()}, profile, "FAIL",
			"pending pod batch/burst is meant for a VNode (eci-profile selector burst) but no VNode accepts it", "labels of eci-profile selector burst (pod labels {app=burst})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluatePodPlacement(context.Background(), placementInput{nodes: tt.nodes, pods: tt.pods, events: tt.events, profile: tt.profile})
			if len(got) == 0 || got[0].Status.String() != tt.want || !strings.HasPrefix(got[0].Summary, tt.summary) || !strings.Contains(fixText(got[0]), tt.fix) {
				t.Fatalf("got %s\nremediation: %s", diagtest.Dump(got), got[0].Remediation)
			}
		})
	}
}

// TestPodPlacementUsesTheDaemonSetHelpers: the pod check and the DaemonSet
// check reach the same decision for the same spec, but a pod gets none of
// the DaemonSet controller's extra tolerations.
func TestPodPlacementUsesTheDaemonSetHelpers(t *testing.T) {
	vn := typeVNode("vk-1")
	notReady := corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}
	vn.Spec.Taints = append(vn.Spec.Taints, notReady)
	spec := &corev1.PodSpec{NodeSelector: vkSel, Tolerations: []corev1.Toleration{tolVK}}
	if ok, why := newPlacement(spec, daemonPodTolerations(spec)).placeable(vn); !ok {
		t.Errorf("DaemonSet: not placeable: %s", why)
	}
	if ok, why := newPlacement(spec, spec.Tolerations).placeable(vn); ok || why != "taint node.kubernetes.io/not-ready:NoExecute is not tolerated" {
		t.Errorf("pod: %v %s", ok, why)
	}
}

// TestPodPlacementGroupsReplicas: the pods of one ReplicaSet are judged
// once and reported as their Deployment.
func TestPodPlacementGroupsReplicas(t *testing.T) {
	var pods []kube.Pod
	for _, n := range []string{"web-5d8f-a", "web-5d8f-b", "web-5d8f-c"} {
		p := pendingPod(n, vkSel)
		p.Namespace, p.OwnerKind, p.OwnerName = "shop", "ReplicaSet", "web-5d8f"
		pods = append(pods, p)
	}
	deps := []*appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}}
	got := evaluatePodPlacement(context.Background(), placementInput{nodes: []*corev1.Node{typeVNode("vk-1")}, pods: pods, deps: deps})
	r := diagtest.At(t, got, 0, pb.Status_FAIL)
	if len(got) != 1 || !strings.HasPrefix(r.Summary, "3 pending pods of Deployment shop/web are meant for a VNode") ||
		r.Objects[0].Kind != "Deployment" || !strings.Contains(fixText(r), "kubectl -n shop patch deployment web --type=strategic -p '") {
		t.Fatalf("got %s\n%s", diagtest.Dump(got), r.Remediation)
	}
}

func TestPlacementFixLetsThePodOn(t *testing.T) {
	vn := aliyunVNode("vn-a")
	p := pendingPod("x", map[string]string{"type": "virtual-kubelet", "kubernetes.io/os": "linux"})
	res := evaluatePodPlacement(context.Background(), placementInput{nodes: []*corev1.Node{vn}, pods: []kube.Pod{p}})
	r := diagtest.At(t, res, 0, pb.Status_FAIL)
	for _, want := range []string{
		"nodeSelector:\n  k8s.aliyun.com/vnode: \"true\"\n  kubernetes.io/os: linux\n",
		"- effect: NoSchedule\n  key: k8s.aliyun.com/vnode\n  operator: Exists",
		"nodeSelector type=virtual-kubelet is dropped: VNode vn-a does not carry it.",
	} {
		if !strings.Contains(fixText(r), want) {
			t.Errorf("remediation lacks %q:\n%s", want, fixText(r))
		}
	}
	// The fields of the fix, applied, make the pod placeable.
	fixed := &corev1.PodSpec{NodeSelector: map[string]string{"k8s.aliyun.com/vnode": "true", "kubernetes.io/os": "linux"},
		Tolerations: []corev1.Toleration{{Key: kube.TaintVNode, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}
	if ok, why := newPlacement(fixed, fixed.Tolerations).placeable(vn); !ok {
		t.Errorf("fixed spec not placeable: %s", why)
	}
}

// fixText is a result's remediation and its snippets, as the table shows them.
func fixText(r *pb.Result) string {
	t := r.Remediation
	for _, s := range r.Snippets {
		t += "\n" + s.Title + ":\n" + s.Text + "\n"
	}
	return t
}

// TestPodPlacementManyVNodes: a pod placeable on 30 VNodes that the
// scheduler still refuses names three in its summary and gives one evidence
// line per reason, not one per VNode.
func TestPodPlacementManyVNodes(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 30 {
		nodes = append(nodes, typeVNode(fmt.Sprintf("vk-%02d", i)))
	}
	ev := kube.Event{Namespace: "batch", Pod: "res", Reason: "FailedScheduling", Count: 1, Message: "0/30 nodes are available: 30 Insufficient cpu."}
	got := evaluatePodPlacement(context.Background(), placementInput{nodes: nodes, pods: []kube.Pod{pendingPod("res", vkSel, tolVK)}, events: []kube.Event{ev}})
	r := diagtest.At(t, got, 0, pb.Status_WARN)
	if !strings.HasPrefix(r.Summary, "pending pod batch/res is free to go to VNode(s) vk-00, vk-01, vk-02 ... and 27 more (") {
		t.Errorf("summary %q", r.Summary)
	}
	var placements []string
	for _, e := range r.Evidence {
		if strings.HasPrefix(e.Label, "placement on ") {
			placements = append(placements, e.Label)
		}
	}
	if len(placements) != 1 || !strings.HasPrefix(placements[0], "placement on 30 VNodes vk-00, vk-01, ") || !strings.HasSuffix(placements[0], "... and 10 more") {
		t.Errorf("placement evidence %q", placements)
	}
}
