package vnode

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testNode(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	l := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.30.4"},
		},
	}
}

var (
	vkTaint     = corev1.Taint{Key: "virtual-kubelet.io/provider", Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}
	aliyunTaint = corev1.Taint{Key: "k8s.aliyun.com/vnode", Value: "true", Effect: corev1.TaintEffectNoSchedule}
)

func typeVNode(name string) *corev1.Node {
	return testNode(name, map[string]string{"type": "virtual-kubelet"}, vkTaint)
}

func aliyunVNode(name string) *corev1.Node {
	return testNode(name, map[string]string{"k8s.aliyun.com/vnode": "true"}, aliyunTaint)
}

func realNode(name string) *corev1.Node { return testNode(name, nil) }

func testDS(ns, name string, mut func(*corev1.PodSpec)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "example.com/" + name + ":1"}}
	if mut != nil {
		mut(&ds.Spec.Template.Spec)
	}
	return ds
}

func required(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
}

func term(reqs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: reqs}
}

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

var tolerateAll = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
