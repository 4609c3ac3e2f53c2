package kube

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// randomPod is a pod with a random mix of everything compactPod reads and
// of what it does not (env, probes, resources, managed fields, conditions):
// bound or not, on VNodes or not, with VNode tolerations, node affinity and
// pinning, fsGroup and network volumes, waiting containers, the kept
// annotation and others.
func randomPod(rng *rand.Rand, i int) *corev1.Pod {
	one := func(n int) bool { return rng.IntN(n) == 0 }
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", rng.IntN(3)), Name: fmt.Sprintf("pod-%d", i),
		UID: "5f0c6a1e-3b1d-4c56-9a9e-0b8f6f2d9c11", ResourceVersion: "123",
		Labels:        map[string]string{"app": fmt.Sprintf("a%d", i%7), "tier": "web"},
		Annotations:   map[string]string{"prometheus.io/scrape": "true", corev1.LastAppliedConfigAnnotation: "{...}"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		Finalizers:    []string{"x/y"}}}
	if one(3) {
		p.Annotations["k8s.aliyun.com/insecure-registry"] = "reg.example.com"
	}
	if one(4) {
		p.Labels = nil
	}
	if !one(5) {
		kind := []string{"ReplicaSet", "DaemonSet", "Job"}[rng.IntN(3)]
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ConfigMap", Name: "not-controller", UID: "u1"},
			{APIVersion: "apps/v1", Kind: kind, Name: fmt.Sprintf("owner-%d", i%11), UID: "u2", Controller: new(!one(4))}}
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz"}}}
	for c := range 1 + rng.IntN(3) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", c), Image: fmt.Sprintf("reg.example.com/img-%d:v%d", i%5, c),
			Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, LivenessProbe: probe,
			Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
			VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v"}}})
	}
	if one(3) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
	}
	if !one(4) {
		p.Spec.NodeName = []string{"node-1", "node-2", "vk-1"}[rng.IntN(3)]
	}
	p.Spec.HostNetwork = one(5)
	if one(3) {
		p.Spec.NodeSelector = map[string]string{"type": "virtual-kubelet", "zone": "a"}
	}
	switch rng.IntN(4) {
	case 0:
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"vk-1"}}}}}}}}
	case 1:
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "type", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"virtual-kubelet"}}}}}}},
			PodAntiAffinity: &corev1.PodAntiAffinity{}}
	}
	p.Spec.Tolerations = []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	switch rng.IntN(5) {
	case 0:
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: TaintVKProvider, Operator: corev1.TolerationOpExists})
	case 1:
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: TaintVNode, Operator: corev1.TolerationOpEqual, Value: "true"})
	case 2:
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
	case 3:
		p.Spec.Tolerations = nil
	}
	if !one(3) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: new(true)}
		if !one(3) {
			p.Spec.SecurityContext.FSGroup = new(int64(1000))
		}
		if one(3) {
			p.Spec.SecurityContext.FSGroupChangePolicy = new([]corev1.PodFSGroupChangePolicy{corev1.FSGroupChangeOnRootMismatch, corev1.FSGroupChangeAlways}[rng.IntN(2)])
		}
	}
	p.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}
	switch rng.IntN(5) {
	case 0:
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}})
	case 1:
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "nas", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "nasplugin.csi.alibabacloud.com", VolumeAttributes: map[string]string{"server": "x.nas.aliyuncs.com"}}}})
	case 2:
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "flex", VolumeSource: corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{Driver: "alicloud/nas", Options: map[string]string{"server": "y.nas.aliyuncs.com"}}}})
	case 3:
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.0.0.9", Path: "/"}}})
	}
	p.Status.Phase = []corev1.PodPhase{corev1.PodRunning, corev1.PodPending, corev1.PodSucceeded, corev1.PodFailed, ""}[rng.IntN(5)]
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	switch rng.IntN(4) {
	case 0:
		p.Status.PodIP = fmt.Sprintf("10.1.%d.%d", i%250, i%200+1)
		p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}, {IP: "fd00::1"}}
	case 1:
		p.Status.PodIP = "10.2.0.1" // an old server: podIP alone
	case 2:
		p.Status.PodIPs = []corev1.PodIP{{IP: "not-an-ip"}}
	}
	for _, c := range p.Spec.Containers {
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "sha256:0f3c", ContainerID: "containerd://4b82", Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
		switch rng.IntN(3) {
		case 0:
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "x509: certificate signed by unknown authority"}}
		case 1:
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, st)
	}
	if one(3) {
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", Image: "busybox",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
	}
	return p
}

// TestPodWireMatchesWholeDecode: for pods of every shape, compactPod of
// the partially decoded pod is compactPod of the whole pod, and the list's
// metadata (continue, remainingItemCount) comes through; in protobuf as
// the API server sends it, and in JSON.
func TestPodWireMatchesWholeDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next-page", RemainingItemCount: new(int64(17))}}
	for i := range 3000 {
		list.Items = append(list.Items, *randomPod(rng, i))
	}
	var pb, js bytes.Buffer
	if err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(list, &pb); err != nil {
		t.Fatal(err)
	}
	if err := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{}).Encode(list, &js); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"protobuf": pb.Bytes(), "json": js.Bytes()} {
		got, err := decodePodList(body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Continue != "next-page" || got.RemainingItemCount == nil || *got.RemainingItemCount != 17 || len(got.Items) != len(list.Items) {
			t.Fatalf("%s: list metadata %+v, %d items", name, got.ListMeta, len(got.Items))
		}
		for i := range list.Items {
			want, have := compactPod(&list.Items[i]), compactPod(&got.Items[i])
			if !reflect.DeepEqual(want, have) {
				t.Fatalf("%s: pod %d:\nwhole   %+v\npartial %+v", name, i, want, have)
			}
		}
	}
}

// TestPodWireRefusesGarbage: a truncated or corrupt protobuf body is an
// error, not a panic or a silently shorter list.
func TestPodWireRefusesGarbage(t *testing.T) {
	list := &corev1.PodList{Items: []corev1.Pod{*randomPod(rand.New(rand.NewPCG(1, 1)), 1)}}
	var b bytes.Buffer
	if err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(list, &b); err != nil {
		t.Fatal(err)
	}
	body := b.Bytes()
	for _, cut := range []int{len(body) - 1, len(body) - 40, len(protobufMagic) + 3} {
		if _, err := decodePodList(body[:cut]); err == nil {
			t.Errorf("body cut at %d of %d: no error", cut, len(body))
		}
	}
	corrupt := bytes.Clone(body)
	corrupt[len(protobufMagic)] = 0xff // a tag with a reserved wire type
	if _, err := decodePodList(corrupt); err == nil {
		t.Error("corrupt body: no error")
	}
}
