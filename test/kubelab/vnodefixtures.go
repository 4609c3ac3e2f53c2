package kubelab

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Builders for the vnode.* checks: DaemonSets as their upstream manifests
// ship them, metrics-server with its Service and APIService, DaemonSet pods
// stuck on VNodes and VNode pods whose image pulls fail.

// APIService is an apiregistration.k8s.io/v1 APIService backed by a
// Service. Apply creates it and leaves its status to the API server's
// aggregator, which probes the Service and sets the Available condition.
type APIService struct {
	Group, Version                 string
	ServiceNamespace, ServiceName  string
	Port                           int32
	GroupPriorityMinimum, Priority int32
}

// Name is the APIService's object name, "<version>.<group>".
func (a *APIService) Name() string { return a.Version + "." + a.Group }

func (l *Lab) applyAPIService(ctx context.Context, a *APIService) error {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": a.Name(), "labels": map[string]string{"k8s-app": "metrics-server"}},
		"spec": map[string]any{
			"group": a.Group, "version": a.Version,
			"service":               map[string]any{"namespace": a.ServiceNamespace, "name": a.ServiceName, "port": a.Port},
			"insecureSkipTLSVerify": true,
			"groupPriorityMinimum":  a.GroupPriorityMinimum,
			"versionPriority":       a.Priority,
		},
	})
	if err != nil {
		return err
	}
	err = l.Client.Discovery().RESTClient().Post().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").
		SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
	if err != nil {
		return fmt.Errorf("create apiservice %s: %w", a.Name(), err)
	}
	return nil
}

// MetricsAPIService is the v1beta1.metrics.k8s.io APIService of the
// upstream metrics-server manifest.
func MetricsAPIService() *APIService {
	return &APIService{Group: "metrics.k8s.io", Version: "v1beta1", ServiceNamespace: "kube-system", ServiceName: "metrics-server",
		Port: 443, GroupPriorityMinimum: 100, Priority: 100}
}

func labDaemonSet(ns, name, image string, spec func(*corev1.PodSpec)) *appsv1.DaemonSet {
	labels := map[string]string{"k8s-app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:                   []corev1.Container{{Name: name, Image: image}},
					AutomountServiceAccountToken: new(bool),
				},
			},
		},
	}
	if spec != nil {
		spec(&ds.Spec.Template.Spec)
	}
	return ds
}

func nodeNotIn(key string, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: corev1.NodeSelectorOpNotIn, Values: values}
}

func requiredNodeTerms(terms ...[]corev1.NodeSelectorRequirement) *corev1.Affinity {
	a := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
	for _, t := range terms {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(
			a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, corev1.NodeSelectorTerm{MatchExpressions: t})
	}
	return a
}

// KubeProxyDaemonSet is kube-proxy as kubeadm deploys it: host network,
// Linux nodes, and a toleration of every taint, so it lands on VNodes.
func KubeProxyDaemonSet() *appsv1.DaemonSet {
	return labDaemonSet("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.30.4", func(s *corev1.PodSpec) {
		s.HostNetwork = true
		s.PriorityClassName = "system-node-critical"
		s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	})
}

// LoggingAgentDaemonSet is a fluent-bit agent that tolerates NoSchedule
// taints but keeps off VNodes of both label conventions, as the vendor
// recommends.
func LoggingAgentDaemonSet() *appsv1.DaemonSet {
	return labDaemonSet("logging", "fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.1.9", func(s *corev1.PodSpec) {
		s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		s.Affinity = requiredNodeTerms([]corev1.NodeSelectorRequirement{nodeNotIn("type", "virtual-kubelet"), nodeNotIn("k8s.aliyun.com/vnode", "true")})
	})
}

// NodeExporterDaemonSet tolerates everything and has the VNode exclusion in
// only one of two ORed node selector terms, so the other term still places
// it on VNodes.
func NodeExporterDaemonSet() *appsv1.DaemonSet {
	return labDaemonSet("monitoring", "node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", func(s *corev1.PodSpec) {
		s.HostNetwork, s.HostPID = true, true
		s.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		s.Affinity = requiredNodeTerms(
			[]corev1.NodeSelectorRequirement{nodeNotIn("type", "virtual-kubelet")},
			[]corev1.NodeSelectorRequirement{{Key: "kubernetes.io/os", Operator: corev1.NodeSelectorOpIn, Values: []string{"linux"}}},
		)
	})
}

// CSIPluginDaemonSet tolerates only the control-plane taint, so the VNode
// taint keeps it off VNodes.
func CSIPluginDaemonSet() *appsv1.DaemonSet {
	return labDaemonSet("kube-system", "csi-plugin", "registry-cn-shanghai.ack.aliyuncs.com/acs/csi-plugin:v1.30.3", func(s *corev1.PodSpec) {
		s.HostNetwork = true
		s.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	})
}

// DaemonSetPod is a pod of ds that the scheduler bound to node but that
// never started: what a VNode does with a DaemonSet pod.
func DaemonSetPod(ds *appsv1.DaemonSet, suffix, node string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ds.Namespace, Name: ds.Name + "-" + suffix, Labels: ds.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name,
				UID: types.UID("00000000-0000-4000-8000-" + fmt.Sprintf("%012x", len(ds.Namespace+ds.Name))), Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = node
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
	return p
}

// MetricsServerDeployment is metrics-server as its release manifest ships
// it, with the image tag and the container args given.
func MetricsServerDeployment(image string, args ...string) *appsv1.Deployment {
	labels := map[string]string{"k8s-app": "metrics-server"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metrics-server", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: "metrics-server",
					PriorityClassName:  "system-cluster-critical",
					NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
					Containers: []corev1.Container{{
						Name: "metrics-server", Image: image, Args: args,
						Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 10250, Protocol: corev1.ProtocolTCP}},
					}},
				},
			},
		},
	}
}

// MetricsServerService is the Service in front of metrics-server.
func MetricsServerService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metrics-server", Labels: map[string]string{"k8s-app": "metrics-server"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"k8s-app": "metrics-server"},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("https")}},
		},
	}
}

// ImagePullPod is a pod of a Deployment's ReplicaSet, bound to node, whose
// container waits on reason with message, as the kubelet (or the VNode)
// reports a failed pull.
func ImagePullPod(ns, deployment, suffix, node, image, reason, message string) *corev1.Pod {
	rs := deployment + "-6d9c7f5b8d"
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rs + "-" + suffix, Labels: map[string]string{"app": deployment},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
				UID: "00000000-0000-4000-8000-00000000a5e7", Controller: new(true), BlockOwnerDeletion: new(true)}}},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			Containers:                   []corev1.Container{{Name: deployment, Image: image}},
			AutomountServiceAccountToken: new(bool),
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{Name: deployment, Image: image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}},
		},
	}
	return p
}

// PullFailedEvent is the Warning event a failed pull of p's image leaves.
func PullFailedEvent(p *corev1.Pod, message string, count int32) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name + ".pull-failed"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, APIVersion: "v1",
			FieldPath: "spec.containers{" + p.Spec.Containers[0].Name + "}"},
		Reason: "Failed", Message: message, Type: corev1.EventTypeWarning, Count: count,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kubelet", Host: p.Spec.NodeName},
	}
}

// labDeployment is a Deployment shell, so that checks can name the workload
// that owns a pod (the lab runs no controllers).
func labDeployment(ns, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image}}}},
		},
	}
}

// Names in VNodeScenario, for tests.
const (
	ScenarioVNodeReady    = "vnode-cn-shanghai-k"
	ScenarioVNodeNotReady = "vnode-cn-shanghai-m"
	ScenarioHarbor        = "harbor.corp.example:8443"
)

// X509PullMessage is the pull error a registry with a self-signed
// certificate produces.
func X509PullMessage(image string) string {
	return fmt.Sprintf(`Failed to pull image %q: rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: `+
		`failed to do request: Head "https://%s/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
		image, image, image, ScenarioHarbor)
}

// VNodeScenario is the part of the demo cluster the vnode.* checks read,
// with deliberate faults; it adds to HybridCluster without clashing names:
//
//   - vnode.present: VNode vnode-cn-shanghai-m (k8s.aliyun.com/vnode
//     convention) is NotReady
//   - vnode.daemonset-affinity: kube-system/kube-proxy tolerates everything
//     (system DaemonSet, one pod Pending on a VNode); monitoring/node-exporter
//     excludes VNodes in only one of two ORed terms. logging/fluent-bit and
//     kube-system/csi-plugin keep off VNodes (no fault)
//   - vnode.metrics-server: metrics-server v0.6.4 (scrapes /metrics/resource);
//     its APIService is left to the aggregator, which finds no ready endpoint
//   - vnode.registry-tls: shop/storefront pods on a VNode fail to pull from a
//     registry with a self-signed certificate (one reported in its status,
//     one only in events); shop/catalog already carries the annotation but
//     for another host; a pull failing for another reason is not reported
//   - vnode.k8s-version: no fault is possible here (the lab's API server is
//     current); the old-version branch is table-tested
func VNodeScenario() []any {
	ready := VNode(ScenarioVNodeReady, "type")
	notReady := VNode(ScenarioVNodeNotReady, "aliyun")
	notReady.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown",
		Message: "Kubelet stopped posting node status.", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}

	kubeProxy := KubeProxyDaemonSet()
	storefront := ScenarioHarbor + "/shop/storefront:2.3.1"
	catalog := ScenarioHarbor + "/shop/catalog:1.9.0"
	sfStatus := ImagePullPod("shop", "storefront", "x7k2p", ScenarioVNodeReady, storefront, "ErrImagePull", X509PullMessage(storefront))
	sfEvents := ImagePullPod("shop", "storefront", "q9d4w", ScenarioVNodeReady, storefront, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", storefront))
	cat := ImagePullPod("shop", "catalog", "m3n8v", ScenarioVNodeReady, catalog, "ErrImagePull", X509PullMessage(catalog))
	cat.Annotations = map[string]string{"k8s.aliyun.com/insecure-registry": "harbor.corp.example"}
	missing := ImagePullPod("shop", "reports", "t5r1z", ScenarioVNodeReady, "registry.example.com/shop/reports:0.0.0-missing", "ImagePullBackOff",
		`Back-off pulling image "registry.example.com/shop/reports:0.0.0-missing"`)

	return []any{
		ready, notReady,
		kubeProxy, LoggingAgentDaemonSet(), NodeExporterDaemonSet(), CSIPluginDaemonSet(),
		DaemonSetPod(kubeProxy, "vk8s2", ScenarioVNodeReady),
		MetricsServerDeployment("registry.k8s.io/metrics-server/metrics-server:v0.6.4",
			"--cert-dir=/tmp", "--secure-port=10250", "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
			"--kubelet-use-node-status-port", "--metric-resolution=15s"),
		MetricsServerService(), MetricsAPIService(),
		labDeployment("shop", "storefront", storefront), labDeployment("shop", "catalog", catalog), labDeployment("shop", "reports", "registry.example.com/shop/reports:0.0.0-missing"),
		sfStatus, sfEvents, cat, missing,
		PullFailedEvent(sfEvents, X509PullMessage(storefront), 5),
	}
}
