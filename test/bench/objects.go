package main

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/vnodediag/vnodediag/test/kubelab"
)

func isNode(o any) bool { _, ok := o.(*corev1.Node); return ok }

func deployments(daemonsets int) int {
	if daemonsets == 0 {
		return 0
	}
	return deploymentsWanted
}

var deploymentsWanted int

// podCIDR of node i: 10.x.y.0/24 above 10.1.0.0, clear of envtest's
// Service CIDR 10.0.0.0/24.
func podCIDR(i int) (string, string) {
	j := i + 256
	return fmt.Sprintf("10.%d.%d.0/24", j>>8, j&255), fmt.Sprintf("10.%d.%d", j>>8, j&255)
}

// objects builds a cluster of the given size: about 1% VNodes (both label
// conventions), a third ECS nodes, the rest on-prem; pods spread evenly over
// the real nodes with realistic specs and statuses (the size of a pod drives
// both tools' cost). A handful of deliberate faults make the report real.
func objects(nodes, pods, daemonsets int) []any {
	var out []any
	vnodes := max(1, nodes/100)
	real := nodes - vnodes
	var names []string
	for i := 0; i < real; i++ {
		cidr, _ := podCIDR(i)
		ip := fmt.Sprintf("192.168.%d.%d", i>>8, i&255+1)
		var n *corev1.Node
		if i%3 == 0 {
			n = kubelab.ECSNode(fmt.Sprintf("ecs-%05d", i), fmt.Sprintf("cn-shanghai.i-uf6%017d", i), cidr, ip)
		} else {
			n = kubelab.OnPremNode(fmt.Sprintf("dc-%05d", i), cidr, ip)
		}
		if i == 3 {
			n.Spec.ProviderID = fmt.Sprintf("i-uf6%017d", i) // fault: no region
		}
		fatten(n)
		names = append(names, n.Name)
		out = append(out, n)
	}
	for i := 0; i < vnodes; i++ {
		conv := "type"
		if i%2 == 1 {
			conv = "aliyun"
		}
		out = append(out, kubelab.VNode(fmt.Sprintf("virtual-kubelet-%03d", i), conv))
	}
	for j := 0; j < pods; j++ {
		ni := j % real
		_, base := podCIDR(ni)
		ip := fmt.Sprintf("%s.%d", base, (j/real)%250+2)
		if j == 7 {
			ip = "172.31.9.9" // fault: outside the node's podCIDR
		}
		out = append(out, realisticPod(fmt.Sprintf("team-%02d", j%40), fmt.Sprintf("app-%06d", j), names[ni], ip))
	}
	if daemonsets > 0 {
		deploymentsWanted = max(1, pods/50)
		for i := 0; i < daemonsets; i++ {
			out = append(out, daemonSet(i))
		}
		for i := 0; i < deploymentsWanted; i++ {
			out = append(out, deployment(i))
		}
	}
	return out
}

// fatten gives a node what a real kubelet reports: allocatable, images.
func fatten(n *corev1.Node) {
	n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status.Allocatable = n.Status.Capacity
	for k := 0; k < 20; k++ {
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{
			Names:     []string{fmt.Sprintf("registry.example.com/team/image-%02d@sha256:%064d", k, k), fmt.Sprintf("registry.example.com/team/image-%02d:v1.%d", k, k)},
			SizeBytes: int64(50_000_000 + k),
		})
	}
}

func podTemplate(name string) corev1.PodSpec {
	env := []corev1.EnvVar{}
	for k := 0; k < 6; k++ {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", k), Value: fmt.Sprintf("value-%d-for-%s", k, name)})
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10}
	return corev1.PodSpec{
		Containers: []corev1.Container{
			{Name: "app", Image: "registry.example.com/team/" + name + ":v2.4.1", Env: env,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}},
				LivenessProbe: probe, ReadinessProbe: probe,
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}}},
			{Name: "log-shipper", Image: "registry.example.com/infra/fluent-bit:3.1.4",
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/fluent-bit"}}},
		},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-config"}}}}},
		Tolerations: []corev1.Toleration{
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
		},
		AutomountServiceAccountToken: new(false),
	}
}

func realisticPod(ns, name, node, ip string) *corev1.Pod {
	p := kubelab.Pod(ns, name, node, ip)
	p.Labels = map[string]string{"app": name, "team": ns, "tier": "backend", "version": "v2.4.1", "pod-template-hash": "7d9f8c6b5"}
	p.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-7d9f8c6b5", UID: "5f0c6a1e-3b1d-4c56-9a9e-0b8f6f2d9c11", Controller: new(true)}}
	spec := podTemplate(name)
	spec.NodeName = node
	p.Spec = spec
	now := metav1.Now()
	p.Status.HostIP = "192.168.0.1"
	p.Status.StartTime = &now
	p.Status.QOSClass = corev1.PodQOSBurstable
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: "registry.example.com/" + c.Name + "@sha256:0f3c8ae1d7b5e0d6b2a3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f",
			ContainerID: "containerd://4b825dc642cb6eb9a060e54bf8d69288fbee4904b825dc642cb6eb9a060e54bf", Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
	}
	return p
}

func daemonSet(i int) *appsv1.DaemonSet {
	name := fmt.Sprintf("agent-%03d", i)
	labels := map[string]string{"app": name}
	spec := podTemplate(name)
	switch i % 3 {
	case 0: // keeps off VNodes
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "type", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"virtual-kubelet"}}}}}}}}
	case 1: // tolerates everything: lands on VNodes
		spec.Tolerations = append(spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
	}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}
}

func deployment(i int) *appsv1.Deployment {
	name := fmt.Sprintf("svc-%05d", i)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("team-%02d", i%40), Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(50)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podTemplate(name)}},
	}
}
