package kube_test

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/vnodediag/vnodediag/diag/kube"
)

// BenchmarkOneShotGather is a one-shot gather of the server named by
// VNODEDIAG_BENCH_KUBECONFIG (a held `make bench` server), reporting the
// live heap the snapshot holds.
func BenchmarkOneShotGather(b *testing.B) {
	path := os.Getenv("VNODEDIAG_BENCH_KUBECONFIG")
	if path == "" {
		b.Skip("VNODEDIAG_BENCH_KUBECONFIG not set")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		b.Fatal(err)
	}
	p, err := kube.ForRESTConfig(&kube.Config{}, rc, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runtime.MemProfileRate = 8192
	for b.Loop() {
		v, err := p.Gather(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapSys-m.HeapReleased)/1e6, "heapsys-MB")
		b.ReportMetric(float64(m.Sys)/1e6, "sys-MB")
		st, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
				b.Log(l)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&m)
		b.ReportMetric(float64(m.HeapAlloc)/1e6, "live-MB")
		b.ReportMetric(float64(m.HeapInuse)/1e6, "inuse-MB")
		if f := os.Getenv("HEAPPROF"); f != "" {
			fh, _ := os.Create(f)
			_ = pprof.WriteHeapProfile(fh)
			fh.Close()
		}
		runtime.KeepAlive(v)
	}
}
