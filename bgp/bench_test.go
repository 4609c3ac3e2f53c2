package bgp_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/bgp"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/bgplab"
)

// coverageFixture is the benchmark's table: 100,000 /28s (what the BIRD
// benchmark feeds) plus one /24 per node for 5,000 on-prem nodes, of which
// every 100th is missing.
func coverageFixture() (*bgp.Table, []*corev1.Node) {
	tb := &bgp.Table{Peers: []bgp.PeerStatus{{Name: "r1", State: "ESTABLISHED"}}}
	for i := 0; i < 100_000; i++ {
		tb.Routes = append(tb.Routes, bgp.Route{Prefix: bgplab.BulkPrefix(i), Peer: "r1"})
	}
	nodes := make([]*corev1.Node, 5000)
	for i := range nodes {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i/256), byte(i % 256), 0}), 24)
		if i%100 != 0 {
			tb.Routes = append(tb.Routes, bgp.Route{Prefix: p, Peer: "r1"})
		}
		nodes[i] = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("op-%d", i)}, Spec: corev1.NodeSpec{PodCIDR: p.String(), PodCIDRs: []string{p.String()}}}
	}
	return tb, nodes
}

// BenchmarkCoverage5000 evaluates bgp.podcidr-advertised for 5,000
// podCIDRs against a 105,000-route table, building the index each time.
func BenchmarkCoverage5000(b *testing.B) {
	base, nodes := coverageFixture()
	b.ReportAllocs()
	for b.Loop() {
		tb := &bgp.Table{Peers: base.Peers, Routes: base.Routes}
		res := bgp.EvaluatePodCIDRs(context.Background(), tb, nodes)
		if res[0].Status != pb.Status_FAIL || len(res[0].Objects) != 50 {
			b.Fatalf("got %s with %d objects", res[0].Status, len(res[0].Objects))
		}
	}
}

// BenchmarkCoverage5000Indexed is the same with the index already built
// (the second check of a run that reads the same table).
func BenchmarkCoverage5000Indexed(b *testing.B) {
	tb, nodes := coverageFixture()
	tb.Set()
	b.ReportAllocs()
	for b.Loop() {
		bgp.EvaluatePodCIDRs(context.Background(), tb, nodes)
	}
}
