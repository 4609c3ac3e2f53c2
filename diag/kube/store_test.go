package kube

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

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

// TestCompactStoreCopyOnWrite: a view handed to a run never changes until
// it is released, while the store follows adds, updates and deletes, and a
// relist replaces it; once every view is released, changes are made in
// place;
// alike for a store that keeps keys beside its items and one that finds
// them from the items (newKeyedStore).
func TestCompactStoreCopyOnWrite(t *testing.T) {
	compact := func(o runtime.Object) (Pod, error) { return compactPod(o.(*corev1.Pod)), nil }
	t.Run("keys", func(t *testing.T) { testCopyOnWrite(t, newCompactStore(compact)) })
	t.Run("keyed", func(t *testing.T) {
		testCopyOnWrite(t, newKeyedStore(compact, func(p *Pod) storeKey { return keyOf(p.Namespace, p.Name) }))
	})
}

func testCopyOnWrite(t *testing.T, s *compactStore[Pod]) {
	if _, _, ok := s.view(); ok {
		t.Fatal("synced before the first list")
	}
	// The reflector's streaming list hands over objects it compacted with
	// the store's transformer.
	tr := s.Transformer()
	a, _ := tr(podObj("ns", "a", "n1"))
	if err := s.Replace([]any{a, podObj("ns", "b", "n1"), podObj("ns", "c", "n2")}, "1"); err != nil {
		t.Fatal(err)
	}
	v1, release1, ok := s.view()
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
	v2, release2, _ := s.view()
	if got := names(v2); !slices.Equal(got, []string{"ns/b@n9", "ns/c@n2", "other/d@n3"}) {
		t.Errorf("after changes: %v", got)
	}
	// Releasing v1, whose array was copied since, frees nothing of v2's.
	release1()
	_ = s.Update(podObj("ns", "c", "n7"))
	if got := names(v2); !slices.Equal(got, []string{"ns/b@n9", "ns/c@n2", "other/d@n3"}) {
		t.Errorf("a view changed under its run after an older one was released: %v", got)
	}
	v3, release3, _ := s.view()
	release2()
	release3()
	// Every view released: changes are made in place; the index stays
	// right through swaps.
	_ = s.Delete(podObj("ns", "b", ""))
	_ = s.Update(podObj("other", "d", "n4"))
	_ = s.Delete(podObj("ns", "c", ""))
	v4, _, _ := s.view()
	if got := names(v4); !slices.Equal(got, []string{"other/d@n4"}) {
		t.Errorf("after deletes: %v", got)
	}
	if unsafe.SliceData(v3) != unsafe.SliceData(v4) {
		t.Error("copied although every view was released")
	}
	if err := s.Replace(nil, "2"); err != nil {
		t.Fatal(err)
	}
	if v5, _, ok := s.view(); len(v5) != 0 || !ok || s.lists() != 2 {
		t.Errorf("after an empty relist: %v %v lists %d", names(v5), ok, s.lists())
	}
	if got := names(v4); !slices.Equal(got, []string{"other/d@n4"}) {
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
			Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", "deployment.kubernetes.io/revision": "3"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "d"}}, Template: corev1.PodTemplateSpec{
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
	if d.ManagedFields != nil || d.Status.Conditions != nil || d.Annotations != nil || d.Spec.Selector != nil {
		t.Errorf("metadata after trim: %+v, %+v", d.ObjectMeta, d.Status)
	}
	if d.Name != "d" || d.Labels["app"] != "d" || d.Spec.Template.Labels["app"] != "d" || d.Spec.Template.Annotations["a"] != "b" {
		t.Errorf("names and labels after trim: %+v", d)
	}
}

// TestTrimNode: a trimmed node keeps what checks read (labels, taints,
// podCIDRs, providerID, addresses, the Ready and NetworkUnavailable
// conditions, the kubelet's version and port, max pods) and loses its
// annotations and the rest of its status.
// A node without allocatable pods keeps capacity's.
func TestTrimNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
		Spec: corev1.NodeSpec{PodCIDR: "10.0.0.0/24", ProviderID: "cn-shanghai.i-x", Taints: []corev1.Taint{{Key: "k"}}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceCPU: resource.MustParse("16")},
			Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.1.1"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeReady, Status: corev1.ConditionTrue},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, {Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse}},
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
	// Nodes of the same max pods share one list; past maxPodsShared
	// distinct values each still gets its own value.
	same := &corev1.Node{Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100"), corev1.ResourceCPU: resource.MustParse("2")}}}
	trimNode(same)
	if reflect.ValueOf(same.Status.Allocatable).UnsafePointer() != reflect.ValueOf(st.Allocatable).UnsafePointer() {
		t.Error("two nodes of max pods 100 hold a list each")
	}
	for i := range 2 * maxPodsShared {
		v := &corev1.Node{Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(int64(1000+i), resource.DecimalSI)}}}
		trimNode(v)
		if got := v.Status.Allocatable.Pods().Value(); got != int64(1000+i) || len(v.Status.Allocatable) != 1 {
			t.Fatalf("max pods %d became %d (%v)", 1000+i, got, v.Status.Allocatable)
		}
	}
	if n.Labels["a"] != "b" || n.Spec.PodCIDR == "" || n.Spec.ProviderID == "" || len(n.Spec.Taints) != 1 ||
		len(st.Addresses) != 1 || len(st.Conditions) != 2 || st.Conditions[0].Type != corev1.NodeReady || st.Conditions[1].Type != corev1.NodeNetworkUnavailable ||
		st.DaemonEndpoints.KubeletEndpoint.Port != 10250 || n.Annotations != nil {
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

// TestCompactPodKeepsOwnerAndImagesWhereRead: a running pod of a
// ReplicaSet keeps its owner's kind but neither the owner's name nor its
// images (no check reads them); a DaemonSet pod keeps its owner's name
// (the DaemonSet checks group by it); a pod waiting on a container keeps
// both (the registry check names its workload and its image); an unbound
// pod keeps its owner's name (placement groups pods by workload).
func TestCompactPodKeepsOwnerAndImagesWhereRead(t *testing.T) {
	owned := func(kind, name, node string) *corev1.Pod {
		p := podObj("ns", name+"-x", node)
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: new(true)}}
		p.Spec.Containers = []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}
		p.Status.Phase = corev1.PodRunning
		return p
	}
	waiting := owned("ReplicaSet", "web-5d8f", "n1")
	waiting.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}
	unbound := owned("Job", "batch", "")
	unbound.Status.Phase = corev1.PodPending
	for _, c := range []struct {
		name        string
		pod         *corev1.Pod
		owner       string
		images      int
		keepsDetail bool
	}{
		{"running ReplicaSet pod", owned("ReplicaSet", "web-5d8f", "n1"), "", 0, false},
		{"DaemonSet pod", owned("DaemonSet", "kube-proxy", "n1"), "kube-proxy", 0, false},
		{"waiting pod", waiting, "web-5d8f", 1, true},
		{"unbound pod", unbound, "batch", 0, true},
	} {
		got := compactPod(c.pod)
		if got.OwnerKind != c.pod.OwnerReferences[0].Kind || got.OwnerName != c.owner || len(got.Images()) != c.images || (got.Detail != nil) != c.keepsDetail {
			t.Errorf("%s: owner %s/%q, images %v, detail %v", c.name, got.OwnerKind, got.OwnerName, got.Images(), got.Detail != nil)
		}
	}
}

// TestSnapshotOnlyCoversEveryField: a snapshot cut to every part is the
// snapshot, so every field a check can read belongs to a part it can name
// (a field added without a part fails here); cut to nodes alone it holds
// the nodes and none of the other parts.
func TestSnapshotOnlyCoversEveryField(t *testing.T) {
	var s Snapshot
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Interface:
			// API: kept as the snapshot's identity, nil here.
		default:
			t.Fatalf("field %s of kind %s: give it a value", v.Type().Field(i).Name, f.Kind())
		}
	}
	s.PartErrors = map[string]error{PartEvents: errors.New("forbidden")}
	all := append([]string{PartNodes, PartPods, PartVersion}, PartDaemonSets, PartDeployments, PartServiceCIDRs, PartCoreDNS,
		PartMetricsAPIService, PartEvents, PartClusterUID, PartNamespaces, PartPersistentVolumes, PartECIProfile, PartCNIConfig, PartKubeProxyConfig)
	if got := s.Only(all).(*Snapshot); !reflect.DeepEqual(got, &s) {
		t.Errorf("Only(every part) differs from the snapshot:\n%+v\n%+v", got, &s)
	}
	nodes := s.Only([]string{PartNodes}).(*Snapshot)
	if len(nodes.Nodes) != 1 || nodes.Pods != nil || nodes.Version != nil || nodes.PartErrors != nil || nodes.Server != "x" {
		t.Errorf("Only(nodes) = %+v", nodes)
	}
}

// TestPodIPsInPlace: a pod with one IP, v4 or v6, keeps it without a
// Detail and without a pointer (the garbage collector would follow it in
// every pod of the watch cache); a dual-stack pod, one whose IP does not
// parse and one with a zone keep their list in it.
func TestPodIPsInPlace(t *testing.T) {
	if pointers(reflect.TypeFor[packedIP]()) {
		t.Error("a pod's packed IP holds a pointer")
	}
	for _, c := range []struct {
		ips    []string
		want   string
		detail bool
	}{
		{nil, "[]", false},
		{[]string{"10.1.0.5"}, "[10.1.0.5]", false},
		{[]string{"fd00::5"}, "[fd00::5]", false},
		{[]string{"::ffff:10.1.0.5"}, "[10.1.0.5]", false},
		{[]string{"fe80::5%eth0"}, "[fe80::5%eth0]", true},
		{[]string{"10.1.0.5", "fd00::5"}, "[10.1.0.5 fd00::5]", true},
		{[]string{"not-an-ip"}, "[invalid IP]", true},
	} {
		p := podObj("ns", "a", "n1")
		for _, ip := range c.ips {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		got := compactPod(p)
		if s := fmt.Sprint(got.AppendIPs(nil)); s != c.want || (got.Detail != nil) != c.detail {
			t.Errorf("%v: IPs %s, detail %v; want %s, %v", c.ips, s, got.Detail != nil, c.want, c.detail)
		}
	}
}

// pointers reports whether values of t hold a pointer.
func pointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && pointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if pointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

// TestPodPhase: every API phase survives the byte it is kept in; a phase
// this release does not know reads as Unknown, no phase as none.
func TestPodPhase(t *testing.T) {
	for _, ph := range []corev1.PodPhase{"", corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown} {
		if got := PhaseOf(ph).String(); got != string(ph) {
			t.Errorf("%q kept as %q", ph, got)
		}
	}
	if PhaseOf("Hibernating") != PhaseUnknown || PhaseOf("") != PhaseNone {
		t.Error("an unknown phase or none is not told apart")
	}
}

// TestPodsWithDetail: the pods with a Detail, in order, found once per
// gathered snapshot and shared with the copies Only makes; a snapshot
// made by hand finds them too.
func TestPodsWithDetail(t *testing.T) {
	pods := []Pod{{Name: "a"}, {Name: "b", Detail: &PodDetail{PinnedNode: "vn-1"}}, {Name: "c"}, {Name: "d", Detail: &PodDetail{Waiting: []ContainerWaiting{{Reason: "ErrImagePull"}}}}}
	s := &Snapshot{Pods: pods, detail: &once[[]Pod]{}}
	got := s.PodsWithDetail()
	if len(got) != 2 || got[0].Name != "b" || got[1].Name != "d" {
		t.Fatalf("PodsWithDetail = %+v", got)
	}
	if again := s.Only([]string{PartPods}).(*Snapshot).PodsWithDetail(); &again[0] != &got[0] {
		t.Error("a copy made by Only found the pods again instead of sharing them")
	}
	if byHand := (&Snapshot{Pods: pods}).PodsWithDetail(); len(byHand) != 2 {
		t.Errorf("a snapshot made by hand: %+v", byHand)
	}
	if none := s.Only([]string{PartNodes}).(*Snapshot).PodsWithDetail(); none != nil {
		t.Errorf("a copy without pods has pods with detail: %+v", none)
	}
}

// TestPodNodes: each pod's node by position, -1 unbound or unknown; found
// once per gathered snapshot and shared with the copies Only makes that
// hold both nodes and pods, never with one that holds only one of them.
func TestPodNodes(t *testing.T) {
	nodes := []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, {ObjectMeta: metav1.ObjectMeta{Name: "n2"}}}
	pods := []Pod{{Name: "a", NodeName: "n2"}, {Name: "b"}, {Name: "c", NodeName: "gone"}, {Name: "d", NodeName: "n1"}}
	s := &Snapshot{Nodes: nodes, Pods: pods, podNodes: &once[[]int32]{}}
	got := s.PodNodes()
	if fmt.Sprint(got) != "[1 -1 -1 0]" {
		t.Fatalf("PodNodes = %v", got)
	}
	if again := s.Only([]string{PartNodes, PartPods}).(*Snapshot).PodNodes(); &again[0] != &got[0] {
		t.Error("a copy with nodes and pods found the positions again instead of sharing them")
	}
	if podsOnly := s.Only([]string{PartPods}).(*Snapshot).PodNodes(); fmt.Sprint(podsOnly) != "[-1 -1 -1 -1]" {
		t.Errorf("a copy without nodes: %v", podsOnly)
	}
	// Many pods, their node's name shared by some and copied for others,
	// unknown for some: the same answer as a lookup by name.
	many := make([]Pod, 20000)
	shared := []string{"n1", "n2", "gone", ""}
	for i := range many {
		name := shared[i%len(shared)]
		if i%3 == 0 {
			name = strings.Clone(name)
		}
		many[i].NodeName = name
	}
	want := map[string]int32{"n1": 0, "n2": 1, "gone": -1, "": -1}
	for i, at := range NodePositions(nodes, many) {
		if at != want[many[i].NodeName] {
			t.Fatalf("pod %d on %q: position %d, want %d", i, many[i].NodeName, at, want[many[i].NodeName])
		}
	}
}

// TestNodeFacts: each node's class and parsed podCIDRs by position, the
// positions by name and the VNodes by name; shared with the copies Only
// makes that hold the nodes.
func TestNodeFacts(t *testing.T) {
	node := func(name, cidr string, labels map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
	}
	nodes := []*corev1.Node{node("vk-b", "", map[string]string{LabelType: LabelTypeVirtual}), node("dc-1", "10.1.0.0/24", nil),
		node("vk-a", "", map[string]string{LabelVNode: "true"}), node("ecs-1", "10.2.0.7/24", map[string]string{labelInstanceType: "ecs.g7.large"})}
	s := &Snapshot{Nodes: nodes, nodeFacts: &once[*NodeFacts]{}}
	f := s.NodeFacts()
	if fmt.Sprint(f.Classes) != fmt.Sprint([]NodeClass{ClassVirtual, ClassOnPrem, ClassVirtual, ClassECS}) {
		t.Errorf("classes %v", f.Classes)
	}
	if fmt.Sprint(f.PodCIDRs) != "[[] [10.1.0.0/24] [] [10.2.0.0/24]]" || fmt.Sprint(f.ByName) != "[1 3 2 0]" {
		t.Errorf("podCIDRs %v, by name %v", f.PodCIDRs, f.ByName)
	}
	if len(f.VNodes) != 2 || f.VNodes[0].Name != "vk-a" || f.VNodes[1].Name != "vk-b" {
		t.Errorf("VNodes %v", f.VNodes)
	}
	if s.Only([]string{PartNodes}).(*Snapshot).NodeFacts() != f {
		t.Error("a copy with the nodes found the facts again instead of sharing them")
	}
	if byHand := (&Snapshot{Nodes: nodes}).NodeFacts(); len(byHand.VNodes) != 2 {
		t.Errorf("a snapshot made by hand: %+v", byHand)
	}
}

// TestStoreKey: keys tell namespaces, names and cluster-scoped objects
// apart, and an object deleted by its API form is found by the key it was
// added under in its compact form.
func TestStoreKey(t *testing.T) {
	seen := map[storeKey]string{}
	for _, nn := range [][2]string{{"", "a"}, {"a", ""}, {"ns", "a"}, {"ns", "b"}, {"n", "sa"}, {"ns/a", ""}, {"", "ns/a"}} {
		k := keyOf(nn[0], nn[1])
		if other, dup := seen[k]; dup {
			t.Errorf("%q and %q share a key", nn, other)
		}
		seen[k] = fmt.Sprint(nn)
	}
	s := newCompactStore(func(o runtime.Object) (Pod, error) { return compactPod(o.(*corev1.Pod)), nil })
	if err := s.Replace([]any{podObj("ns", "a", "n1"), podObj("ns", "b", "n1")}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(podObj("ns", "a", "n1")); err != nil {
		t.Fatal(err)
	}
	if items, _, _ := s.view(); len(items) != 1 || items[0].Name != "b" {
		t.Errorf("after deleting ns/a: %v", names(items))
	}
}

// TestTrimDaemonSet: a trimmed DaemonSet keeps what checks read (names,
// labels, template annotations, what places its pods) and loses the rest.
func TestTrimDaemonSet(t *testing.T) {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "agent", Labels: map[string]string{"addonmanager.kubernetes.io/mode": "Reconcile"},
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{...}"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "agent"}, Annotations: map[string]string{"k8s.io/x": "y"}},
			Spec: corev1.PodSpec{NodeSelector: map[string]string{"a": "b"}, HostNetwork: true, Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
				Affinity:   &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{}},
				Containers: []corev1.Container{{Name: "agent", Image: "agent:1", Env: []corev1.EnvVar{{Name: "A"}}}}, Volumes: []corev1.Volume{{Name: "v"}}}}},
		Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3},
	}
	trimDaemonSet(ds)
	spec := ds.Spec.Template.Spec
	if spec.NodeSelector["a"] != "b" || !spec.HostNetwork || len(spec.Tolerations) != 1 || spec.Affinity == nil ||
		ds.Labels["addonmanager.kubernetes.io/mode"] != "Reconcile" || ds.Spec.Template.Annotations["k8s.io/x"] != "y" || ds.Name != "agent" {
		t.Errorf("what checks read was lost: %+v", ds)
	}
	if spec.Containers != nil || spec.Volumes != nil || ds.Annotations != nil || ds.ManagedFields != nil || ds.Spec.Selector != nil || ds.Status.DesiredNumberScheduled != 0 {
		t.Errorf("the rest was kept: %+v", ds)
	}
}

// TestNodeNames: pods get the held copy of their node's name; the names
// of nodes that are gone are dropped.
func TestNodeNames(t *testing.T) {
	var n nodeNames
	if got := n.canonical("dc-1"); got != "dc-1" {
		t.Fatalf("no node yet: %q", got)
	}
	held := strings.Clone("dc-1")
	n.add(held)
	if got := n.canonical(strings.Clone("dc-1")); unsafe.StringData(got) != unsafe.StringData(held) {
		t.Error("a pod's copy of its node's name was not replaced by the held one")
	}
	n.keep([]*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "dc-2"}}})
	if _, ok := n.m["dc-1"]; ok || len(n.m) != 1 {
		t.Errorf("names after the nodes changed: %v", n.m)
	}
}
