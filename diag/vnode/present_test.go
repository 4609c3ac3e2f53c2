package vnode

import (
	"context"
	"strings"
	"testing"

	"github.com/vnodediag/vnodediag/diag/diagtest"
	corev1 "k8s.io/api/core/v1"
)

func TestEvaluatePresent(t *testing.T) {
	notReady := typeVNode("vn-nr")
	notReady.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}}
	noCond := aliyunVNode("vn-nocond")
	noCond.Status.Conditions = nil
	untainted := testNode("vn-untainted", map[string]string{"type": "virtual-kubelet"})
	taintOnly := testNode("vn-taint-only", nil, vkTaint)
	tests := []struct {
		name    string
		nodes   []*corev1.Node
		status  string
		summary string
		remedy  string
	}{
		{"no nodes", nil, "SKIP", "no VNode in the cluster: no node is labelled type=virtual-kubelet or k8s.aliyun.com/vnode=true", ""},
		{"real nodes only", []*corev1.Node{realNode("ecs-1"), testNode("x", map[string]string{"type": "ecs"})}, "SKIP", "no VNode in the cluster", ""},
		{"type convention", []*corev1.Node{realNode("ecs-1"), typeVNode("vn-1")}, "PASS",
			"VNode vn-1 is Ready (kubelet v1.30.4, taints virtual-kubelet.io/provider=alibabacloud:NoSchedule)", ""},
		{"aliyun convention", []*corev1.Node{aliyunVNode("vn-2")}, "PASS", "VNode vn-2 is Ready (kubelet v1.30.4, taints k8s.aliyun.com/vnode=true:NoSchedule)", ""},
		{"not ready", []*corev1.Node{notReady}, "FAIL",
			"VNode vn-nr is not Ready: Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.) (kubelet v1.30.4)", "kubectl describe node vn-nr"},
		{"no Ready condition", []*corev1.Node{noCond}, "FAIL", "VNode vn-nocond is not Ready: no Ready condition", ""},
		{"untainted", []*corev1.Node{untainted}, "WARN", "VNode vn-untainted is Ready but has no NoSchedule VNode taint (kubelet v1.30.4, taints none)",
			"kubectl taint node vn-untainted virtual-kubelet.io/provider=alibabacloud:NoSchedule"},
		{"taint only", []*corev1.Node{taintOnly}, "WARN", "VNode vn-taint-only is Ready but has no VNode label", "kubectl label node vn-taint-only type=virtual-kubelet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evaluatePresent(context.Background(), tt.nodes)
			if diagtest.StatusNames(got) != tt.status || !strings.HasPrefix(got[0].Summary, tt.summary) || !strings.Contains(got[0].Remediation, tt.remedy) {
				t.Errorf("got %s\nwant %s %q, remediation containing %q", diagtest.Dump(got), tt.status, tt.summary, tt.remedy)
			}
		})
	}
	got := evaluatePresent(context.Background(), []*corev1.Node{typeVNode("vn-b"), realNode("ecs"), aliyunVNode("vn-a")})
	if len(got) != 2 || got[0].Objects[0].Name != "vn-a" || got[1].Objects[0].Name != "vn-b" {
		t.Errorf("want one result per VNode sorted by name, got %s", diagtest.Dump(got))
	}
}
