package kube

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkCollection is what the compact pods of a large cluster cost
// each collection of the garbage collector, which marks them whenever the
// daemon's watch cache holds them: a forced collection with 150,000
// compact pods live (compact-pods), shaped as `make bench-large` loads
// them (50 namespaces, 5,000 nodes, a ReplicaSet to every 30 pods, one
// IP), beside one with nothing of this benchmark's live (none). The
// collector's cost is the pointers it follows: one per string a pod
// keeps, none for its IP (TestPodIPsInPlace).
func BenchmarkCollection(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
	}{{"none", 0}, {"compact-pods", 150000}} {
		b.Run(c.name, func(b *testing.B) {
			pods := benchPods(c.n)
			runtime.GC()
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(pods)
		})
	}
}

// benchPods are n compact pods made as compactPod makes them from the
// watch.
func benchPods(n int) []Pod {
	pods := make([]Pod, n)
	controller := true
	for i := range pods {
		rs := fmt.Sprintf("app-%d-5f7d8c9b4", i/30)
		pods[i] = compactPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Namespace:       fmt.Sprintf("ns-%d", i%50),
				Name:            fmt.Sprintf("%s-%05d", rs, i),
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs, Controller: &controller}},
			},
			Spec:   corev1.PodSpec{NodeName: fmt.Sprintf("node-%04d", i%5000)},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)},
		})
	}
	return pods
}
