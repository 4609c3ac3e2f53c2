package kube_test

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/vnode"
)

// BenchmarkCachedDiagnose runs the kube checks from a warm watch cache of
// the server named by VNODEDIAG_BENCH_KUBECONFIG (a held `make bench`
// server), as the daemon's Diagnose does: the snapshot alone (gather) and
// the whole run (run), with the live heap the warm cache added.
func BenchmarkCachedDiagnose(b *testing.B) {
	path := os.Getenv("VNODEDIAG_BENCH_KUBECONFIG")
	if path == "" {
		b.Skip("VNODEDIAG_BENCH_KUBECONFIG not set")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		b.Fatal(err)
	}
	live := func() float64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.HeapAlloc)
	}
	before := live()
	c, err := kube.CachedForRESTConfig(&kube.Config{}, rc, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		b.Fatal(err)
	}
	// What the warm cache holds: the live heap it added.
	cacheMB := (live() - before) / 1e6
	r := &diag.Runner{Providers: []diag.Provider{c}}
	checks := append(k8s.Checks(), vnode.Checks()...)
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Gather(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("run", func(b *testing.B) {
		for b.Loop() {
			r.Run(ctx, checks)
		}
		b.ReportMetric(cacheMB, "cache-MB")
	})
}
