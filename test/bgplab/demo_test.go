package bgplab_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/bgplab"
)

// TestDemo runs the demo lab as `make demo` would and expects its one fault.
func TestDemo(t *testing.T) {
	pods := []string{"172.23.0.0/26", "172.23.0.64/26", "172.23.0.128/26"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb := bgplab.DemoTableT(t, ctx, bgplab.DemoOptions{PodCIDRs: pods})
	for _, r := range diagtest.Run(t, ctx, bgp.Checks(), bgp.CheckSession, diag.NewInputs(bgp.Source.With(tb))) {
		if r.Status != pb.Status_PASS {
			t.Fatalf("session: %v", r)
		}
	}
	for _, r := range diagtest.Run(t, ctx, bgp.Checks(), bgp.CheckCloudRoutesLearned, diag.NewInputs(bgp.Source.With(tb))) {
		if r.Status != pb.Status_PASS {
			t.Fatalf("cloud routes: %v", r)
		}
	}
	var nodes []*corev1.Node
	for i, p := range pods {
		nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: []string{"op-1", "op-2", "op-3"}[i]}, Spec: corev1.NodeSpec{PodCIDR: p}})
	}
	r := diagtest.Run(t, ctx, bgp.Checks(), bgp.CheckPodCIDRAdvertised, diag.NewInputs(bgp.Source.With(tb), kube.Source.With(&kube.Snapshot{Nodes: nodes})))[0]
	if r.Status != pb.Status_FAIL || len(r.Objects) != 1 || r.Objects[0].Name != "op-3" {
		t.Fatalf("podcidr: %v", r)
	}
}
