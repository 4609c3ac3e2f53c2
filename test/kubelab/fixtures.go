package kubelab

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The versions the lab's kubelets and VNodes report: the lab's API server
// release (hack/envtest-assets.sh), as a cluster inside the version skew
// policy would.
const (
	KubeletVersion      = "v1.37.2"
	VNodeKubeletVersion = "v1.37.2-vk-v2.13.0"
)

// Builders of realistic objects for a hybrid cluster. They set what a real
// kubelet, CCM or IPAM would, and nothing the checks do not look at.

func node(name, podCIDR, internalIP string, labels map[string]string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
		}},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: internalIP}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:  corev1.NodeSystemInfo{KubeletVersion: KubeletVersion, ContainerRuntimeVersion: "containerd://1.7.20", OSImage: "Alibaba Cloud Linux 3", KernelVersion: "5.10.134"},
			// The kubelet's default maxPods.
			Capacity:    corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if podCIDR != "" {
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	for k, v := range labels {
		n.Labels[k] = v
	}
	return n
}

// ECSNode is an ECS worker with the providerID the CCM expects.
func ECSNode(name, providerID, podCIDR, internalIP string) *corev1.Node {
	n := node(name, podCIDR, internalIP, map[string]string{
		"node.kubernetes.io/instance-type": "ecs.g7.xlarge",
		"topology.kubernetes.io/region":    "cn-shanghai",
		"topology.kubernetes.io/zone":      "cn-shanghai-l",
	})
	n.Spec.ProviderID = providerID
	return n
}

// OnPremNode is a bare-metal node in the data centre.
func OnPremNode(name, podCIDR, internalIP string) *corev1.Node {
	n := node(name, podCIDR, internalIP, map[string]string{"node-role.kubernetes.io/worker": ""})
	n.Status.NodeInfo.OSImage = "Ubuntu 22.04.4 LTS"
	return n
}

// VNode is a virtual-kubelet node backed by ECI, labelled and tainted in
// one of the two conventions: "type" (type=virtual-kubelet and the
// virtual-kubelet.io/provider taint) or "aliyun" (k8s.aliyun.com/vnode=true).
func VNode(name, convention string) *corev1.Node {
	n := node(name, "", "10.0.200.1", nil)
	n.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: VNodeKubeletVersion, OSImage: "Alibaba Cloud ECI"}
	if convention == "aliyun" {
		n.Labels["k8s.aliyun.com/vnode"] = "true"
		n.Spec.Taints = []corev1.Taint{{Key: "k8s.aliyun.com/vnode", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	} else {
		n.Labels["type"] = "virtual-kubelet"
		n.Spec.Taints = []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "alibabacloud", Effect: corev1.TaintEffectNoSchedule}}
	}
	n.Spec.ProviderID = "vk://" + name
	return n
}

// Pod is a running pod on node with ip (empty ip: not yet assigned).
func Pod(namespace, name, nodeName, ip string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName,
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.example.com/shop/" + name + ":1.0"}},
			AutomountServiceAccountToken: new(bool),
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if ip != "" {
		p.Status.PodIP = ip
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

// HostNetworkPod runs in the node's network namespace and has the node's IP.
func HostNetworkPod(namespace, name, nodeName, nodeIP string) *corev1.Pod {
	p := Pod(namespace, name, nodeName, nodeIP)
	p.Spec.HostNetwork = true
	return p
}

// ECIProfileFor is the kube-system/eci-profile ConfigMap of the ECI virtual
// node with the security group and the vSwitches (comma-separated, as the
// virtual node reads them) its pods get.
func ECIProfileFor(securityGroupID string, vSwitchIDs ...string) *corev1.ConfigMap {
	return ECIProfile(map[string]string{
		"securityGroupId": securityGroupID,
		"vSwitchIds":      strings.Join(vSwitchIDs, ","),
		"enableClusterIp": "true",
		"selectors":       "",
	})
}
