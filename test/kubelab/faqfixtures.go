package kubelab

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Builders for the rest of the FAQ's cluster-side items: the CNI's and
// kube-proxy's ConfigMaps as their manifests ship them, the eci-profile,
// NAS volumes, and pods the scheduler cannot place.

// CalicoConfig is the calico-config ConfigMap of Calico's manifest, whose
// cni_network_config (a template with unquoted placeholders) uses ipam.
func CalicoConfig(ipam string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "calico-config"},
		Data: map[string]string{
			"typha_service_name": "none",
			"calico_backend":     "bird",
			"veth_mtu":           "0",
			"cni_network_config": `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "kubernetes",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": ` + ipam + `,
      "policy": {"type": "k8s"},
      "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    },
    {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}`,
		},
	}
}

// Calico IPAM blocks, for CalicoConfig.
const (
	CalicoIPAM      = `{"type": "calico-ipam"}`
	CalicoHostLocal = `{"type": "host-local", "subnet": "usePodCidr"}`
)

// FlannelCNIConf is cni-conf.json of Flannel's manifest; without its
// cniVersion it is the one clusters broke on when they moved to 1.16.
func FlannelCNIConf(cniVersion string) string {
	v := ""
	if cniVersion != "" {
		v = fmt.Sprintf(`"cniVersion": %q, `, cniVersion)
	}
	return `{"name": "cbr0", ` + v + `"plugins": [{"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}}, ` +
		`{"type": "portmap", "capabilities": {"portMappings": true}}]}`
}

// FlannelConfig is the kube-flannel-cfg ConfigMap of Flannel's manifest in
// namespace ns, with network as its Network and cniConf as cni-conf.json.
func FlannelConfig(ns, network, cniConf string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-flannel-cfg", Labels: map[string]string{"app": "flannel", "tier": "node"}},
		Data: map[string]string{
			"cni-conf.json": cniConf,
			"net-conf.json": fmt.Sprintf(`{"Network": %q, "EnableNFTables": false, "Backend": {"Type": "vxlan"}}`, network),
		},
	}
}

// KubeProxyConfig is kube-proxy's ConfigMap as kubeadm writes it (name
// kube-proxy; ACK names it kube-proxy-worker), with the mode, IPVS UDP
// timeout and conntrack maxPerCore given ("" leaves a field out).
func KubeProxyConfig(name, mode, udpTimeout, maxPerCore string) *corev1.ConfigMap {
	conf := "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbindAddress: 0.0.0.0\nclusterCIDR: 172.20.0.0/14\n" +
		"clientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"
	conf += "conntrack:\n  min: null\n  tcpCloseWaitTimeout: null\n  tcpEstablishedTimeout: null\n"
	if maxPerCore != "" {
		conf += "  maxPerCore: " + maxPerCore + "\n"
	}
	conf += "ipvs:\n  excludeCIDRs: null\n  minSyncPeriod: 0s\n  scheduler: \"\"\n  strictARP: false\n  syncPeriod: 0s\n  tcpFinTimeout: 0s\n  tcpTimeout: 0s\n"
	if udpTimeout != "" {
		conf += "  udpTimeout: " + udpTimeout + "\n"
	}
	conf += "mode: \"" + mode + "\"\n"
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: map[string]string{"app": "kube-proxy"}},
		Data:       map[string]string{"config.conf": conf, "kubeconfig.conf": "apiVersion: v1\nkind: Config\n"},
	}
}

// ECIProfile is the kube-system/eci-profile ConfigMap with data.
func ECIProfile(data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "eci-profile"}, Data: data}
}

// NASVolume is a PV of the NAS CSI driver on server, bound to claim
// ns/claim, and that claim.
func NASVolume(name, ns, claim, server string) (*corev1.PersistentVolume, *corev1.PersistentVolumeClaim) {
	size := resource.MustParse("20Gi")
	sc := "alicloud-nas"
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"alicloud-pvname": name}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: sc,
			ClaimRef:         &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim, APIVersion: "v1"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "nasplugin.csi.alibabacloud.com", VolumeHandle: name,
				VolumeAttributes: map[string]string{"server": server, "path": "/", "vers": "3"},
			}},
			MountOptions: []string{"nolock,tcp,noresvport", "vers=3"},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: claim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			StorageClassName: &sc,
			VolumeName:       name,
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Capacity: corev1.ResourceList{corev1.ResourceStorage: size}},
	}
	return pv, pvc
}

// ownedPod is a pod of the controller kind/name (its ReplicaSet for a
// Deployment), bound to node, or unbound and Pending when node is "".
func ownedPod(ns, kind, owner, suffix, node string, spec corev1.PodSpec, labels map[string]string) *corev1.Pod {
	apiVersion := "apps/v1"
	if kind == "Job" {
		apiVersion = "batch/v1"
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: owner + "-" + suffix, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: owner,
				UID: types.UID("00000000-0000-4000-8000-" + fmt.Sprintf("%012x", len(ns+owner)+0xf00)), Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Spec: spec,
	}
	if p.Spec.Containers == nil {
		p.Spec.Containers = []corev1.Container{{Name: owner, Image: "registry.example.com/" + ns + "/" + owner + ":1.0"}}
	}
	p.Spec.AutomountServiceAccountToken = new(bool)
	p.Spec.NodeName = node
	if node == "" {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: "Unschedulable", Message: "0/12 nodes are available", LastTransitionTime: metav1.Now()}}}
	} else {
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning}
	}
	return p
}

// FailedSchedulingEvent is the Warning the scheduler leaves on p.
func FailedSchedulingEvent(p *corev1.Pod, message string, count int32) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name + ".failed-scheduling"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, APIVersion: "v1"},
		Reason:         "FailedScheduling", Message: message, Type: corev1.EventTypeWarning, Count: count,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "default-scheduler"},
	}
}

// Names in FAQScenario, for tests.
const (
	ScenarioSmallNode  = "dc-6"
	ScenarioOldKubelet = "v1.33.9"
	ScenarioNASServer  = "0a1b2c3d4e-xyz12.cn-shanghai.nas.aliyuncs.com"
	ScenarioHybridVK   = "virtual-kubelet-cn-shanghai-l"
)

// FAQScenario adds to HybridCluster the rest of the FAQ's cluster-side
// faults, one per check, without changing the results of the checks
// HybridCluster and VNodeScenario are about:
//
//   - k8s.podcidr-capacity: node dc-6 has a /26 (62 addresses) and admits
//     110 pods
//   - k8s.version-skew: dc-6's kubelet is v1.33.9, four minors behind
//   - k8s.cni-ipam: calico-config uses calico-ipam, not host-local from the
//     node's podCIDR (why shop/legacy-api has a stray IP)
//   - k8s.kube-proxy: IPVS with udpTimeout left to the kernel (300 s) and
//     the default conntrack maxPerCore 32768
//   - k8s.reserved-annotations: Deployment shop/recommender sets
//     k8s.io/ingress-bandwidth, a typo of kubernetes.io/ingress-bandwidth
//   - vnode.pod-placement: Job batch/nightly-report selects the VNode but
//     has no toleration; Deployment batch/etl-worker tolerates the VNode
//     taint but selects type=virtual-kubelet-eci, which no VNode carries
//   - vnode.eci-profile: selector "analytics" uses operator Equals; the
//     selector "shop-burst" matches media/transcoder's pod on the VNode
//   - vnode.nas-fsgroup: media/transcoder runs on the VNode with fsGroup
//     and a NAS claim, without fsGroupChangePolicy OnRootMismatch
func FAQScenario() []any {
	small := OnPremNode(ScenarioSmallNode, "172.21.6.0/26", "10.10.0.16")
	small.Status.NodeInfo.KubeletVersion = ScenarioOldKubelet

	vkTol := corev1.Toleration{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	report := ownedPod("batch", "Job", "nightly-report", "7xk2p", "", corev1.PodSpec{
		NodeSelector: map[string]string{"type": "virtual-kubelet"}, RestartPolicy: corev1.RestartPolicyNever,
	}, map[string]string{"job-name": "nightly-report"})
	etlLabels := map[string]string{"app": "etl-worker", "pod-template-hash": "5f7c9d"}
	etlSpec := corev1.PodSpec{NodeSelector: map[string]string{"type": "virtual-kubelet-eci"}, Tolerations: []corev1.Toleration{vkTol}}
	etl := labDeployment("batch", "etl-worker", "registry.example.com/batch/etl-worker:1.0")
	etl.Spec.Template.Spec.NodeSelector, etl.Spec.Template.Spec.Tolerations = etlSpec.NodeSelector, etlSpec.Tolerations
	etlA := ownedPod("batch", "ReplicaSet", "etl-worker-5f7c9d", "q2w8e", "", etlSpec, etlLabels)
	etlB := ownedPod("batch", "ReplicaSet", "etl-worker-5f7c9d", "m4n6b", "", etlSpec, etlLabels)
	unschedulable := "0/12 nodes are available: 1 node(s) had untolerated taint {virtual-kubelet.io/provider: alibabacloud}, " +
		"11 node(s) didn't match Pod's node affinity/selector. preemption: 0/12 nodes are available: 12 Preemption is not helpful for scheduling."

	pv, pvc := NASVolume("nas-media", "media", "media-nas", ScenarioNASServer)
	transcoderLabels := map[string]string{"app": "transcoder", "burst": "eci", "pod-template-hash": "6b8d4f"}
	transcoder := labDeployment("media", "transcoder", "registry.example.com/media/transcoder:4.2")
	transcoderSpec := corev1.PodSpec{
		NodeSelector:    map[string]string{"type": "virtual-kubelet"},
		Tolerations:     []corev1.Toleration{vkTol},
		SecurityContext: &corev1.PodSecurityContext{FSGroup: new(int64(1000)), RunAsUser: new(int64(1000))},
		Containers: []corev1.Container{{Name: "transcoder", Image: "registry.example.com/media/transcoder:4.2",
			VolumeMounts: []corev1.VolumeMount{{Name: "media", MountPath: "/media"}}}},
		Volumes: []corev1.Volume{{Name: "media", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "media-nas"}}}},
	}
	transcoder.Spec.Template.Spec = transcoderSpec
	transcoderPod := ownedPod("media", "ReplicaSet", "transcoder-6b8d4f", "h7j9k", ScenarioHybridVK, transcoderSpec, transcoderLabels)
	transcoderPod.Status.PodIP, transcoderPod.Status.PodIPs = "192.168.50.40", []corev1.PodIP{{IP: "192.168.50.40"}}

	recommender := labDeployment("shop", "recommender", "registry.example.com/shop/recommender:3.1")
	recommender.Spec.Template.Annotations = map[string]string{
		"k8s.io/ingress-bandwidth":          "10M",
		"kubectl.kubernetes.io/restartedAt": "2026-05-04T09:12:44Z",
		"prometheus.io/scrape":              "true",
	}

	return []any{
		small,
		Pod("shop", "search-0", ScenarioSmallNode, "172.21.6.10"),
		Pod("shop", "search-1", ScenarioSmallNode, "172.21.6.11"),
		CalicoConfig(CalicoIPAM),
		KubeProxyConfig("kube-proxy", "ipvs", "0s", ""),
		recommender,
		report, FailedSchedulingEvent(report, unschedulable, 12),
		etl, etlA, etlB, FailedSchedulingEvent(etlA, unschedulable, 7),
		ECIProfile(map[string]string{
			"vpcId":           "vpc-uf6c3d4e5f6g7h8i9j0k",
			"vSwitchIds":      "vsw-uf6a1b2c3d4e5f6g7h8i9,vsw-uf6j0k1l2m3n4o5p6q7r8",
			"securityGroupId": "sg-uf6b2c3d4e5f6g7h8i9j",
			"enableClusterIp": "true",
			"selectors": `[
  {"name": "shop-burst", "objectLabels": {"matchLabels": {"burst": "eci"}}, "policy": {"virtualNodeOnly": {}},
   "effect": {"annotations": {"k8s.aliyun.com/eci-use-specs": "2-4Gi"}}},
  {"name": "analytics", "namespaceLabels": {"matchExpressions": [{"key": "team", "operator": "Equals", "values": ["analytics"]}]}}
]`,
		}),
		pv, pvc, transcoder, transcoderPod,
	}
}
