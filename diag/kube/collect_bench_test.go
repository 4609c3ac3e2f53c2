package kube

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
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

// BenchmarkCacheParts is what each part of the warm watch cache of the
// server named by VNODEDIAG_BENCH_KUBECONFIG (a held `make bench` server)
// costs a collection: a forced collection with the whole cache live
// (all-ms), then with the Deployments dropped from it, then the DaemonSets
// as well, the nodes, the pods, and the rest (each the median of 21, the
// parts dropped one after another: the difference between two is the
// part's cost).
func BenchmarkCacheParts(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := CachedForRESTConfig(&Config{}, HeldServer(b), "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	// The watches stopped, nothing writes the stores while their parts
	// are dropped.
	c.Close()
	collect := func() float64 { return float64(MedianCollection(21)) / 1e6 }
	var all float64
	for b.Loop() {
		all = collect()
	}
	drop := func(items func()) float64 { items(); return collect() }
	b.ReportMetric(all, "all-ms")
	b.ReportMetric(drop(func() { c.deployments.items = nil }), "without-deployments-ms")
	b.ReportMetric(drop(func() { c.daemonSets.items = nil }), "and-daemonsets-ms")
	b.ReportMetric(drop(func() { c.nodes.items = nil }), "and-nodes-ms")
	b.ReportMetric(drop(func() { c.pods.items = nil }), "and-pods-ms")
	b.ReportMetric(drop(func() { c.events.items, c.pvs.items, c.namespaces.items = nil, nil, nil }), "and-the-rest-ms")
	runtime.KeepAlive(c)
}

// The helpers below serve the benchmarks of package kube_test as well
// (exported from a test file: they exist only in the test binary).

// HeldServer is the REST config of the held bench server named by
// VNODEDIAG_BENCH_KUBECONFIG; the benchmark is skipped without one.
func HeldServer(b *testing.B) *rest.Config {
	b.Helper()
	path := os.Getenv("VNODEDIAG_BENCH_KUBECONFIG")
	if path == "" {
		b.Skip("VNODEDIAG_BENCH_KUBECONFIG not set")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		b.Fatal(err)
	}
	return rc
}

// MedianCollection is the median wall time of n forced garbage
// collections.
func MedianCollection(n int) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		t := time.Now()
		runtime.GC()
		ds[i] = time.Since(t)
	}
	slices.Sort(ds)
	return ds[n/2]
}
