package kubelab

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HybridCluster is a small realistic hybrid cluster: on-prem nodes, ECS
// nodes, a VNode and pods, with deliberate faults that the k8s.* checks must
// find (and nothing else wrong):
//
//   - ecs-bad-2: providerID without region ("i-..."), the classic CCM error
//   - dc-3: pod shop/legacy-api has an IP outside its node's podCIDR
//   - dc-4: podCIDR 100.100.8.0/24 lies inside 100.64.0.0/10
//   - dc-5: podCIDR equals dc-1's
//   - ecs-bad-2: NetworkUnavailable=True and its taint (the cloud
//     controller manager cannot map the node to an instance, so it never
//     creates its route)
func HybridCluster() []any {
	ecsBad := ECSNode("ecs-bad-2", "i-uf6cmf0kgbs9o4ex1v2q", "172.22.2.0/24", "192.168.0.13")
	ecsBad.Status.Conditions = append(ecsBad.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue,
		Reason: "NoRouteCreated", Message: "Node created without a route", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()})
	ecsBad.Spec.Taints = append(ecsBad.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule})
	objs := []any{
		OnPremNode("dc-1", "172.21.0.0/24", "10.10.0.11"),
		OnPremNode("dc-2", "172.21.1.0/24", "10.10.0.12"),
		OnPremNode("dc-3", "172.21.2.0/24", "10.10.0.13"),
		OnPremNode("dc-4", "100.100.8.0/24", "10.10.0.14"),
		OnPremNode("dc-5", "172.21.0.0/24", "10.10.0.15"),
		ECSNode("ecs-1", "cn-shanghai.i-uf6f5lbqvn1l8dfnbzj1", "172.22.0.0/24", "192.168.0.11"),
		ECSNode("ecs-2", "alicloud://cn-shanghai.i-uf6a1b2c3d4e5f6g7h8i", "172.22.1.0/24", "192.168.0.12"),
		ecsBad,
		VNode("virtual-kubelet-cn-shanghai-l", "type"),
	}
	for i := 0; i < 3; i++ {
		objs = append(objs,
			Pod("shop", fmt.Sprintf("web-%d", i), "dc-1", fmt.Sprintf("172.21.0.%d", 10+i)),
			Pod("shop", fmt.Sprintf("cart-%d", i), "ecs-1", fmt.Sprintf("172.22.0.%d", 10+i)),
			Pod("shop", fmt.Sprintf("eci-job-%d", i), "virtual-kubelet-cn-shanghai-l", fmt.Sprintf("192.168.50.%d", 10+i)),
		)
	}
	objs = append(objs,
		Pod("shop", "orders-0", "dc-2", "172.21.1.20"),
		Pod("shop", "legacy-api", "dc-3", "10.244.7.9"),
		Pod("shop", "pending-0", "dc-2", ""),
		HostNetworkPod("kube-system", "kube-proxy-dc-1", "dc-1", "10.10.0.11"),
		HostNetworkPod("kube-system", "kube-proxy-ecs-1", "ecs-1", "192.168.0.11"),
	)
	return objs
}

// LegacyCluster is a small hybrid cluster as it would run on the legacy
// server (StartLegacy): on-prem nodes with their pods, a logging agent kept
// off VNodes, and one VNode. Its only fault is the server's version, for
// vnode.k8s-version.
func LegacyCluster() []any {
	vn := VNode("virtual-kubelet-cn-hangzhou-b", "type")
	vn.Status.NodeInfo.KubeletVersion = LegacyVersion + "-vk-v1.2.0"
	dc1, dc2 := OnPremNode("legacy-dc-1", "172.25.0.0/24", "10.20.0.11"), OnPremNode("legacy-dc-2", "172.25.1.0/24", "10.20.0.12")
	dc1.Status.NodeInfo.KubeletVersion, dc2.Status.NodeInfo.KubeletVersion = LegacyVersion, LegacyVersion
	return []any{
		dc1, dc2,
		vn,
		LoggingAgentDaemonSet(),
		Pod("billing", "ledger-0", "legacy-dc-1", "172.25.0.10"),
		Pod("billing", "ledger-1", "legacy-dc-2", "172.25.1.10"),
	}
}
