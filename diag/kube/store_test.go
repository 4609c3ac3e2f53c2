package kube

import (
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func podObj(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{NodeName: node}}
}

func names(ps []Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Namespace+"/"+p.Name+"@"+p.NodeName)
	}
	slices.Sort(out)
	return out
}

// TestCompactStoreCopyOnWrite: a view handed to a run never changes, while
// the store follows adds, updates and deletes, and a relist replaces it.
func TestCompactStoreCopyOnWrite(t *testing.T) {
	s := newCompactStore(func(o runtime.Object) (Pod, error) { return compactPod(o.(*corev1.Pod)), nil })
	if _, ok := s.view(); ok {
		t.Fatal("synced before the first list")
	}
	// The reflector's streaming list hands over objects it compacted with
	// the store's transformer.
	tr := s.Transformer()
	a, _ := tr(podObj("ns", "a", "n1"))
	if err := s.Replace([]any{a, podObj("ns", "b", "n1"), podObj("ns", "c", "n2")}, "1"); err != nil {
		t.Fatal(err)
	}
	v1, ok := s.view()
	if !ok || !slices.Equal(names(v1), []string{"ns/a@n1", "ns/b@n1", "ns/c@n2"}) {
		t.Fatalf("after list: %v %v", names(v1), ok)
	}
	_ = s.Update(podObj("ns", "b", "n9"))
	_ = s.Delete(podObj("ns", "a", ""))
	_ = s.Add(podObj("other", "d", "n3"))
	_ = s.Delete(podObj("ns", "missing", ""))
	if got := names(v1); !slices.Equal(got, []string{"ns/a@n1", "ns/b@n1", "ns/c@n2"}) {
		t.Errorf("a view changed under its run: %v", got)
	}
	v2, _ := s.view()
	if got := names(v2); !slices.Equal(got, []string{"ns/b@n9", "ns/c@n2", "other/d@n3"}) {
		t.Errorf("after changes: %v", got)
	}
	// Without a view out, changes are made in place; the index stays right
	// through swaps.
	_ = s.Delete(podObj("ns", "b", ""))
	_ = s.Update(podObj("other", "d", "n4"))
	_ = s.Delete(podObj("ns", "c", ""))
	v3, _ := s.view()
	if got := names(v3); !slices.Equal(got, []string{"other/d@n4"}) {
		t.Errorf("after deletes: %v", got)
	}
	if err := s.Replace(nil, "2"); err != nil {
		t.Fatal(err)
	}
	if v4, ok := s.view(); len(v4) != 0 || !ok || s.lists() != 2 {
		t.Errorf("after an empty relist: %v %v lists %d", names(v4), ok, s.lists())
	}
	if got := names(v3); !slices.Equal(got, []string{"other/d@n4"}) {
		t.Errorf("a view changed under its run: %v", got)
	}
}

// TestTrimDeployment: a trimmed Deployment keeps what checks read (names,
// labels, template annotations, each container's name, image, command
// and args, in place) and loses the bulk.
func TestTrimDeployment(t *testing.T) {
	ctr := corev1.Container{Name: "app", Image: "registry.example.com/app:v1", Command: []string{"/app"}, Args: []string{"--x"},
		SecurityContext: &corev1.SecurityContext{RunAsNonRoot: new(true)},
		Env:             []corev1.EnvVar{{Name: "A", Value: "b"}}, Ports: []corev1.ContainerPort{{ContainerPort: 80}},
		LivenessProbe: &corev1.Probe{}, VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/v"}}}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "d", Labels: map[string]string{"app": "d"},
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", "keep": "me"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "d"}, Annotations: map[string]string{"a": "b"}},
			Spec:       corev1.PodSpec{InitContainers: []corev1.Container{ctr}, Containers: []corev1.Container{{Name: "side", Image: "side:v1"}, ctr}}}},
		Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable}}},
	}
	trimDeployment(d)
	want := corev1.Container{Name: "app", Image: "registry.example.com/app:v1", Command: []string{"/app"}, Args: []string{"--x"}}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 2 || spec.Containers[0].Name != "side" || !reflect.DeepEqual(spec.Containers[1], want) || !reflect.DeepEqual(spec.InitContainers[0], want) {
		t.Errorf("containers after trim: %+v / %+v", spec.InitContainers, spec.Containers)
	}
	if d.ManagedFields != nil || d.Status.Conditions != nil || d.Annotations[corev1.LastAppliedConfigAnnotation] != "" || d.Annotations["keep"] != "me" {
		t.Errorf("metadata after trim: %+v, %+v", d.ObjectMeta, d.Status)
	}
	if d.Name != "d" || d.Labels["app"] != "d" || d.Spec.Template.Labels["app"] != "d" || d.Spec.Template.Annotations["a"] != "b" {
		t.Errorf("names and labels after trim: %+v", d)
	}
}

// TestTrimNode: a trimmed node keeps what checks read (labels, taints,
// podCIDRs, providerID, addresses, conditions, the kubelet's version and
// port, max pods) and loses the rest of its status.
// A node without allocatable pods keeps capacity's.
func TestTrimNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"}},
		Spec: corev1.NodeSpec{PodCIDR: "10.0.0.0/24", ProviderID: "cn-shanghai.i-x", Taints: []corev1.Taint{{Key: "k"}}},
		Status: corev1.NodeStatus{
			Capacity:        corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceCPU: resource.MustParse("16")},
			Allocatable:     corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.1.1"}},
			Conditions:      []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.34.1", OSImage: "Ubuntu", MachineID: "m"},
			Images:          []corev1.ContainerImage{{Names: []string{"x"}}},
		}}
	trimNode(n)
	st := n.Status
	if st.NodeInfo != (corev1.NodeSystemInfo{KubeletVersion: "v1.34.1"}) || st.Capacity != nil || len(st.Allocatable) != 1 ||
		st.Allocatable.Pods().Value() != 100 || st.Images != nil {
		t.Errorf("status after trim: %+v", st)
	}
	old := &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceCPU: resource.MustParse("16")}}}
	trimNode(old)
	if len(old.Status.Capacity) != 1 || old.Status.Capacity.Pods().Value() != 110 {
		t.Errorf("capacity without allocatable pods: %+v", old.Status.Capacity)
	}
	if n.Labels["a"] != "b" || n.Spec.PodCIDR == "" || n.Spec.ProviderID == "" || len(n.Spec.Taints) != 1 ||
		len(st.Addresses) != 1 || len(st.Conditions) != 1 || st.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("node after trim: %+v", n)
	}
}

// TestCompactStoreSeesOnlyWhatChecksRead: an update that changes nothing
// of the compact form (a label no check keeps, a node's heartbeat, a new
// resourceVersion) leaves the generation as it was; one that changes what
// a check reads advances it.
func TestCompactStoreSeesOnlyWhatChecksRead(t *testing.T) {
	pods := newCompactStore(func(o runtime.Object) (Pod, error) { return compactPod(o.(*corev1.Pod)), nil })
	p := podObj("ns", "a", "n1")
	if err := pods.Replace([]any{p.DeepCopy()}, "1"); err != nil {
		t.Fatal(err)
	}
	g := pods.generation()
	relabelled := p.DeepCopy()
	relabelled.Labels, relabelled.ResourceVersion = map[string]string{"rollout": "2"}, "2"
	_ = pods.Update(relabelled)
	if pods.generation() != g {
		t.Error("a label no check keeps changed the generation")
	}
	moved := p.DeepCopy()
	moved.Spec.NodeName = "n2"
	_ = pods.Update(moved)
	if pods.generation() != g+1 {
		t.Error("a pod moved to another node did not change the generation")
	}

	nodes := newCompactStore(func(o runtime.Object) (*corev1.Node, error) { n := o.(*corev1.Node); trimNode(n); return n, nil })
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Unix(1, 0)}}}}
	if err := nodes.Replace([]any{n.DeepCopy()}, "1"); err != nil {
		t.Fatal(err)
	}
	g = nodes.generation()
	beat := n.DeepCopy()
	beat.ResourceVersion, beat.Status.Conditions[0].LastHeartbeatTime = "2", metav1.Unix(2, 0)
	_ = nodes.Update(beat)
	if nodes.generation() != g {
		t.Error("a heartbeat changed the generation")
	}
	notReady := beat.DeepCopy()
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	_ = nodes.Update(notReady)
	if nodes.generation() != g+1 {
		t.Error("a node going NotReady did not change the generation")
	}
}
