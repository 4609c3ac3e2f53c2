package k8s

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// BenchmarkPodCIDROverlapShared runs k8s.podcidr-overlap on 1,000 nodes that
// share one podCIDR through the runner and renders the report as JSON: the
// pairwise evaluation the check used to have (kept below as the baseline,
// with the runner's caps off, as they were) beside the grouped one with the
// runner's defaults. It prints a table with the ratios.
//
//	go test -run '^$' -bench PodCIDROverlapShared -benchtime 1x ./diag/k8s/
func BenchmarkPodCIDROverlapShared(b *testing.B) {
	snap := &kube.Snapshot{Nodes: sharedCluster(1000), ServiceCIDRs: []string{"10.96.0.0/12"}, PartErrors: map[string]error{}}
	type row struct {
		name                     string
		results, jsonBytes, peak float64
		seconds                  float64
	}
	var rows []row
	for _, c := range []struct {
		name   string
		eval   func(context.Context, []*corev1.Node, []string) []*pb.Result
		capped bool
	}{
		{"pairwise-baseline", pairwiseOverlap, false},
		{"grouped", evalPodCIDROverlap, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			check := diag.Check{ID: "k8s.podcidr-overlap", Needs: diag.Needs(kube.Source), Reference: refCGNAT,
				Run: func(ctx context.Context, in *diag.Inputs) []*pb.Result {
					s := kube.Source.Get(in)
					return c.eval(ctx, s.Nodes, s.ServiceCIDRs)
				}}
			var r row
			for i := 0; i < b.N; i++ {
				runtime.GC()
				stop := samplePeakHeap()
				start := time.Now()
				runner := &diag.Runner{Providers: []diag.Provider{fixedSource{snap}}, CheckTimeout: time.Hour}
				if !c.capped {
					runner.MaxResultsPerCheck, runner.MaxReportBytes = -1, -1
				}
				rep := runner.Run(context.Background(), []diag.Check{check})
				out, err := protojson.Marshal(rep)
				if err != nil {
					b.Fatal(err)
				}
				r.seconds += time.Since(start).Seconds()
				r.peak += float64(stop()) / (1 << 20)
				r.results += float64(len(rep.Results))
				r.jsonBytes += float64(len(out))
			}
			n := float64(b.N)
			r = row{c.name, r.results / n, r.jsonBytes / n, r.peak / n, r.seconds / n}
			b.ReportMetric(r.results, "results/op")
			b.ReportMetric(r.jsonBytes, "json-B/op")
			b.ReportMetric(r.peak, "peak-heap-MB")
			rows = append(rows, r)
		})
	}
	if len(rows) == 2 {
		base, now := rows[0], rows[1]
		b.Logf("\n%-20s %12s %14s %14s %10s\n%-20s %12.0f %14.0f %14.1f %10.3f\n%-20s %12.0f %14.0f %14.1f %10.3f\n%-20s %12.0fx %13.0fx %13.1fx %9.0fx",
			"1,000 nodes, 1 podCIDR", "results", "JSON bytes", "peak heap MB", "seconds",
			base.name, base.results, base.jsonBytes, base.peak, base.seconds,
			now.name, now.results, now.jsonBytes, now.peak, now.seconds,
			"baseline / grouped", base.results/now.results, base.jsonBytes/now.jsonBytes, base.peak/now.peak, base.seconds/now.seconds)
	}
}

type fixedSource struct{ s *kube.Snapshot }

func (fixedSource) Name() diag.SourceName                 { return kube.Source.Name() }
func (f fixedSource) Gather(context.Context) (any, error) { return f.s, nil }

// samplePeakHeap samples the heap's live objects every millisecond until
// the returned function is called, which returns the largest sample.
func samplePeakHeap() func() uint64 {
	var peak atomic.Uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// pairwiseOverlap is the evaluation k8s.podcidr-overlap had before
// conflicts were grouped: one result per overlapping pair.
func pairwiseOverlap(_ context.Context, nodes []*corev1.Node, serviceCIDRs []string) []*pb.Result {
	type owned struct {
		prefix netip.Prefix
		kind   int // 0 node, 1 Service CIDR, 2 100.64.0.0/10
		owner  string
	}
	var items []owned
	for _, n := range nodes {
		if kube.ClassOf(n) == kube.ClassVirtual {
			continue
		}
		for _, p := range kube.PodCIDRs(n) {
			items = append(items, owned{p, 0, n.Name})
		}
	}
	seen := map[netip.Prefix]bool{}
	for _, s := range serviceCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && !seen[p.Masked()] {
			seen[p.Masked()] = true
			items = append(items, owned{p.Masked(), 1, "Service CIDR"})
		}
	}
	items = append(items, owned{cloudnet.CGNAT, 2, "Alibaba Cloud services"})
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].prefix, items[j].prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	describe := func(o owned) string {
		switch o.kind {
		case 0:
			return fmt.Sprintf("node %s podCIDR %s", o.owner, o.prefix)
		case 1:
			return fmt.Sprintf("Service CIDR %s", o.prefix)
		}
		return fmt.Sprintf("%s (Alibaba Cloud service addresses)", o.prefix)
	}
	var out []*pb.Result
	var stack []owned
	for _, it := range items {
		for len(stack) > 0 && !stack[len(stack)-1].prefix.Contains(it.prefix.Addr()) {
			stack = stack[:len(stack)-1]
		}
		for _, enc := range stack {
			a, b := enc, it
			if a.kind != 0 && b.kind != 0 {
				continue
			}
			if a.kind != 0 {
				a, b = b, a
			}
			r := diag.Fail("%s overlaps %s", describe(a), describe(b))
			r.Objects = []*pb.Object{diag.Obj("Node", "", a.owner), diag.Obj("Node", "", b.owner)}
			r.Evidence = []*pb.Evidence{diag.Ev("overlap", "disjoint", fmt.Sprintf("%s and %s", a.prefix, b.prefix))}
			r.Remediation = fmt.Sprintf("Two nodes share pod addresses, so routes to one black-hole the other. podCIDR cannot be changed once set: "+
				"kubectl drain %[1]s --ignore-daemonsets, kubectl delete node %[1]s, and re-register it so node IPAM gives it a free range; "+
				"do not set kubelet --pod-cidr by hand on nodes whose CIDRs the controller manager allocates.", b.owner)
			out = append(out, r)
		}
		stack = append(stack, it)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Summary < out[j].Summary })
	return out
}
