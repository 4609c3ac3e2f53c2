package vnode

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag/kube"
)

// scaleCluster is the size the project must handle: 5,000 nodes (20 of
// them VNodes), 150,000 pods and 300 DaemonSets.
func scaleCluster() ([]*corev1.Node, []*appsv1.DaemonSet, []kube.Pod, []kube.Event) {
	var nodes []*corev1.Node
	for i := 0; i < 4980; i++ {
		nodes = append(nodes, realNode(fmt.Sprintf("node-%04d", i)))
	}
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			nodes = append(nodes, typeVNode(fmt.Sprintf("vnode-%02d", i)))
		} else {
			nodes = append(nodes, aliyunVNode(fmt.Sprintf("vnode-%02d", i)))
		}
	}
	var dss []*appsv1.DaemonSet
	for i := 0; i < 300; i++ {
		dss = append(dss, testDS(fmt.Sprintf("ns-%d", i%30), fmt.Sprintf("ds-%03d", i), func(s *corev1.PodSpec) {
			switch i % 3 {
			case 0:
				s.Tolerations = tolerateAll
			case 1:
				s.Tolerations = tolerateAll
				s.Affinity = required(term(req("type", corev1.NodeSelectorOpNotIn, "virtual-kubelet"), req("k8s.aliyun.com/vnode", corev1.NodeSelectorOpNotIn, "true")))
			}
		}))
	}
	pods := make([]kube.Pod, 0, 150000)
	for i := 0; i < 150000; i++ {
		p := kube.Pod{Namespace: fmt.Sprintf("ns-%d", i%30), Name: fmt.Sprintf("pod-%06d", i), NodeName: nodes[i%len(nodes)].Name, Phase: corev1.PodRunning,
			OwnerKind: "ReplicaSet", OwnerName: "rs", Images: []string{"harbor.corp.local:8443/app:1"}}
		if i%10 == 0 {
			p.OwnerKind, p.OwnerName = "DaemonSet", fmt.Sprintf("ds-%03d", i%300)
		}
		if i%len(nodes) >= 4980 {
			p.Waiting = []kube.ContainerWaiting{{Container: "app", Image: "harbor.corp.local:8443/app:1", Reason: "ErrImagePull", Message: x509Msg}}
		}
		pods = append(pods, p)
	}
	var events []kube.Event
	for i := 0; i < 20000; i++ {
		events = append(events, kube.Event{Namespace: "ns-1", Pod: fmt.Sprintf("pod-%06d", i), Reason: "BackOff", Message: "Back-off restarting failed container"})
	}
	return nodes, dss, pods, events
}

// TestScale bounds the evaluation at the project's largest cluster; the
// bound is loose (machines differ), the point is no O(DaemonSets x pods).
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 150,000-pod cluster")
	}
	nodes, dss, pods, events := scaleCluster()
	ctx := context.Background()
	for name, f := range map[string]func() int{
		"daemonset-affinity": func() int { return len(evaluateDaemonSets(ctx, nodes, dss, pods)) },
		"registry-tls":       func() int { return len(evaluateRegistryTLS(nodes, pods, events, nil)) },
		"present":            func() int { return len(evaluatePresent(nodes)) },
	} {
		start := time.Now()
		n := f()
		d := time.Since(start)
		t.Logf("%s: %d results in %s", name, n, d)
		if d > 5*time.Second {
			t.Errorf("%s took %s on 150,000 pods", name, d)
		}
	}
}
