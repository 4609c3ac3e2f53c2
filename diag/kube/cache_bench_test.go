package kube_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/vnode"
)

// BenchmarkCachedDiagnose runs the kube checks from a warm watch cache of
// the server named by VNODEDIAG_BENCH_KUBECONFIG (a held `make bench`
// server), as the daemon's Diagnose does: the snapshot alone (gather), the
// whole run without a memo (run), with the live heap the warm cache added;
// then with the daemon's memo of check results, while the cluster does not
// change (memo-unchanged), with one pod changed before every run
// (memo-churn: an annotation a check reads, so every check that reads
// pods reruns and the others are reused; the wait for the watch to deliver
// it is not timed) and
// with a label no check reads changed before every run (memo-relabel: the
// cache sees no change, the memo answers). Each reports p50 and p99 of its
// runs; run also reports what a forced garbage collection takes with the
// warm cache live and without it (the median of 9 each): the daemon's
// collections mark that heap.
func BenchmarkCachedDiagnose(b *testing.B) {
	rc := kube.HeldServer(b)
	live := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	before, gcBefore := live(), kube.MedianCollection(9)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := syncedCache(b, ctx, &kube.Config{}, rc, nil)
	// What the warm cache holds: the live heap it added, and what it
	// costs a collection.
	cacheMB, gcWith := (live()-before)/1e6, kube.MedianCollection(9)
	r := &diag.Runner{Providers: []diag.Provider{c}}
	checks := append(k8s.Checks(), vnode.Checks()...)
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			v, err := c.Gather(ctx)
			if err != nil {
				b.Fatal(err)
			}
			v.(*kube.Snapshot).Release()
		}
	})
	b.Run("run", func(b *testing.B) {
		timed(b, nil, func() { r.Run(ctx, checks) })
		b.ReportMetric(cacheMB, "cache-MB")
		b.ReportMetric(float64(gcBefore)/1e6, "gc-without-cache-ms")
		b.ReportMetric(float64(gcWith)/1e6, "gc-with-cache-ms")
	})
	memo := &diag.Runner{Providers: []diag.Provider{c}, Memo: diag.NewMemo()}
	memo.Run(ctx, checks)
	b.Run("memo-unchanged", func(b *testing.B) {
		timed(b, nil, func() { memo.Run(ctx, checks) })
	})
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	// churn changes one pod before every run, by a merge patch of its
	// metadata made from the run's number, and waits (untimed) until the
	// cache has it or, when the change is one no check reads, until
	// settle has passed.
	churn := func(name, patch string, seen bool) {
		b.Run(name, func(b *testing.B) {
			v, err := c.Gather(ctx)
			if err != nil {
				b.Fatal(err)
			}
			s := v.(*kube.Snapshot)
			if len(s.Pods) == 0 {
				b.Fatal("no pod to change")
			}
			pod := s.Pods[0]
			// The benchmark's own gathers are released as a run's are, so
			// that the cache copies no more than a daemon's would.
			s.Release()
			h0, m0 := memo.Memo.Stats()
			i := 0
			timed(b, func() {
				i++
				before := s.Generation()
				p := fmt.Sprintf(patch, time.Now().UnixNano(), i)
				if _, err := cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, []byte(p), metav1.PatchOptions{}); err != nil {
					b.Fatal(err)
				}
				if !seen {
					time.Sleep(300 * time.Millisecond) // the watch delivers it meanwhile
					return
				}
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
					v, err := c.Gather(ctx)
					if err != nil {
						b.Fatal(err)
					}
					s = v.(*kube.Snapshot)
					s.Release()
					if s.Generation() != before {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal("the cache did not see the change within 30 s")
					}
				}
			}, func() { memo.Run(ctx, checks) })
			hits, misses := memo.Memo.Stats()
			b.ReportMetric(float64(hits-h0), "memo-hits")
			b.ReportMetric(float64(misses-m0), "memo-misses")
		})
	}
	// A change checks read: the annotation the registry check reads.
	churn("memo-churn", `{"metadata":{"annotations":{"k8s.aliyun.com/insecure-registry":"r%d-%d.example.com"}}}`, true)
	// A change no check reads (a label of a pod no selector is matched
	// against): the cache keeps its generation, the memo every result.
	churn("memo-relabel", `{"metadata":{"labels":{"vnodediag-bench-churn":"%d-%d"}}}`, false)
}

// timed runs fn b.N times, each after setup (not timed), and reports the
// p50 and p99 of the runs.
func timed(b *testing.B, setup, fn func()) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		if setup != nil {
			b.StopTimer()
			setup()
			b.StartTimer()
		}
		start := time.Now()
		fn()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, (len(lat)*99+99)/100-1)].Microseconds())/1000, "p99-ms")
}
