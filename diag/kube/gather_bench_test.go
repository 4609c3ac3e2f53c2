package kube_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag/kube"
)

// BenchmarkOneShotGather is a one-shot gather (what `diagnose` reads) of
// the server named by VNODEDIAG_BENCH_KUBECONFIG (a held `make bench`
// server), reporting the live heap the snapshot holds (live-MB) and the
// heap in use at the end of the gather, before a collection (end-MB). Run
// it with GOGC=25, as `diagnose` runs, to see what a run peaks at.
func BenchmarkOneShotGather(b *testing.B) {
	p, err := kube.ForRESTConfig(&kube.Config{}, kube.HeldServer(b), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer p.(interface{ Close() }).Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for b.Loop() {
		v, err := p.Gather(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapInuse)/1e6, "end-MB")
		runtime.GC()
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/1e6, "live-MB")
		runtime.KeepAlive(v)
	}
}
