package k8s

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/cloudnet"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// sharedCluster is n nodes that all have the podCIDR 10.0.0.0/24.
func sharedCluster(n int) []*corev1.Node {
	nodes := make([]*corev1.Node, n)
	for i := range nodes {
		nodes[i] = kubelab.OnPremNode(fmt.Sprintf("node-%04d", i), "10.0.0.0/24", "10.10.0.1")
	}
	return nodes
}

// TestOverlapOneResultPerConflict: 1,000 nodes sharing one podCIDR are one
// conflict, reported once, not as 499,500 pairs.
func TestOverlapOneResultPerConflict(t *testing.T) {
	rs := evalPodCIDROverlap(context.Background(), sharedCluster(1000), []string{"10.96.0.0/12"})
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	if r.Status != pb.Status_FAIL || r.Summary != "podCIDR 10.0.0.0/24 is shared by 1000 nodes: node-0000, node-0001, node-0002 ... and 997 more" {
		t.Errorf("%s %q", r.Status, r.Summary)
	}
	if len(r.Objects) != diag.ListLimit || !strings.Contains(r.Evidence[0].Observed, "and 980 more") {
		t.Errorf("%d objects, evidence %q", len(r.Objects), r.Evidence[0].Observed)
	}
}

// TestOverlapAgainstPairs compares the sweep with the pairwise definition
// on random prefixes: every pair of overlapping claims with a node in it
// is covered by a conflict that names both.
func TestOverlapAgainstPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked := map[string]int{}
	for round := 0; round < 300; round++ {
		var claims []claim
		for i := 0; i < 2+rng.IntN(25); i++ {
			// Few distinct prefixes, so that they often coincide or nest.
			bits := []int{8, 10, 12, 16, 24}[rng.IntN(5)]
			addr := netip.AddrFrom4([4]byte{byte(100 + rng.IntN(2)), byte(rng.IntN(2) * 64), byte(rng.IntN(2) * 128), 0})
			p := netip.PrefixFrom(addr, bits).Masked()
			switch rng.IntN(8) {
			case 0:
				claims = append(claims, claim{prefix: p, service: true})
			default:
				claims = append(claims, claim{prefix: p, node: fmt.Sprintf("n%d", i)})
			}
		}
		claims = append(claims, claim{prefix: cloudnet.CGNAT, cgnat: true})
		pairs := append([]claim{}, claims...)
		shared, ranges, nests, _ := sweep(diag.NewPoll(context.Background()), mergeClaims(claims))

		inShared := func(p netip.Prefix, a, b string) bool {
			for _, s := range shared {
				if s.prefix == p && contains(s.nodes, a) && contains(s.nodes, b) {
					return true
				}
			}
			return false
		}
		inRange := func(r netip.Prefix, node string, p netip.Prefix) bool {
			for _, g := range ranges {
				if g.slot.prefix == r && containsMember(g.members, member{node, p}) {
					return true
				}
			}
			return false
		}
		inNest := func(a, b member) bool {
			for _, g := range nests {
				has := func(m member) bool {
					return containsMember(g.members, m) || g.outer.prefix == m.prefix && contains(g.outer.nodes, m.node)
				}
				if has(a) && has(b) {
					return true
				}
			}
			return false
		}
		for i, x := range pairs {
			for _, y := range pairs[i+1:] {
				if !x.prefix.Overlaps(y.prefix) || x.node == "" && y.node == "" || x.node == y.node {
					continue
				}
				var ok bool
				switch {
				case x.node != "" && y.node != "" && x.prefix == y.prefix:
					ok = inShared(x.prefix, x.node, y.node)
					checked["shared"]++
				case x.node == "":
					ok = inRange(x.prefix, y.node, y.prefix)
					checked["range"]++
				case y.node == "":
					ok = inRange(y.prefix, x.node, x.prefix)
					checked["range"]++
				default:
					ok = inNest(member{x.node, x.prefix}, member{y.node, y.prefix})
					checked["nested"]++
				}
				if !ok {
					t.Fatalf("round %d: overlap of %+v and %+v not reported", round, x, y)
				}
			}
		}
	}
	t.Logf("overlapping pairs checked: %v", checked)
	for _, kind := range []string{"shared", "range", "nested"} {
		if checked[kind] < 50 {
			t.Errorf("only %d %s overlaps in the random rounds: %v", checked[kind], kind, checked)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsMember(s []member, v member) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// bigCluster is 1,000 nodes with 100 pods each, every pod IP in place.
func bigCluster() ([]*corev1.Node, []kube.Pod) {
	var nodes []*corev1.Node
	var pods []kube.Pod
	for i := 0; i < 1000; i++ {
		cidr := fmt.Sprintf("10.%d.%d.0/24", 100+i/256, i%256)
		nodes = append(nodes, kubelab.OnPremNode(fmt.Sprintf("node-%04d", i), cidr, "10.10.0.1"))
		for j := 0; j < 100; j++ {
			p := kube.Pod{Namespace: "shop", Name: fmt.Sprintf("p-%d-%d", i, j), NodeName: nodes[i].Name}
			p.SetIPs([]netip.Addr{netip.AddrFrom4([4]byte{10, byte(100 + i/256), byte(i % 256), byte(j + 2)})})
			pods = append(pods, p)
		}
	}
	return nodes, pods
}

// TestHeavyLoopsStopSoonAfterTheirContext: the evaluations over 1,000 nodes
// and 100,000 pods look at their context regularly and, once it has ended,
// stop at the next look with ERROR, whatever point they had reached.
func TestHeavyLoopsStopSoonAfterTheirContext(t *testing.T) {
	nodes, pods := bigCluster()
	evals := map[string]func(context.Context) []*pb.Result{
		"pod-ip-in-podcidr":   func(ctx context.Context) []*pb.Result { return evalPodIPInPodCIDR(ctx, nodes, pods, nil, nil) },
		"podcidr-overlap":     func(ctx context.Context) []*pb.Result { return evalPodCIDROverlap(ctx, nodes, nil) },
		"podcidr-assigned":    func(ctx context.Context) []*pb.Result { return evalPodCIDRAssigned(ctx, nodes) },
		"providerid-format":   func(ctx context.Context) []*pb.Result { return evalProviderIDFormat(ctx, nodes) },
		"overlap of a shared": func(ctx context.Context) []*pb.Result { return evalPodCIDROverlap(ctx, sharedCluster(5000), nil) },
		"podcidr-capacity":    func(ctx context.Context) []*pb.Result { return evalPodCIDRCapacity(ctx, nodes, pods, nil, nil) },
		"node-network":        func(ctx context.Context) []*pb.Result { return evalNodeNetwork(ctx, nodes) },
		"version-skew":        func(ctx context.Context) []*pb.Result { return evalVersionSkew(ctx, v137, nodes) },
		"cni-ipam flannel": func(ctx context.Context) []*pb.Result {
			return evalCNIIPAM(ctx, nodes, []*corev1.ConfigMap{kubelab.FlannelConfig("kube-system", "10.0.0.0/8", kubelab.FlannelCNIConf("0.3.1"))}, v137)
		},
	}
	for name, eval := range evals {
		t.Run(name, func(t *testing.T) {
			// How often it looks when nothing ends.
			free := &diagtest.PollCtx{Context: context.Background(), K: 1 << 30}
			if r := eval(free); r[0].Status == pb.Status_ERROR {
				t.Fatalf("uncanceled run: %q", r[0].Summary)
			}
			if free.Asks < 1 {
				t.Fatal("never looks at its context")
			}
			for _, k := range []int{0, free.Asks / 2, free.Asks - 1} {
				c := &diagtest.PollCtx{Context: context.Background(), K: k}
				rs := eval(c)
				if len(rs) != 1 || rs[0].Status != pb.Status_ERROR || !strings.HasPrefix(rs[0].Summary, "stopped: canceled") {
					t.Fatalf("ended at look %d: %d results, first %s %q", k, len(rs), rs[0].Status, rs[0].Summary)
				}
				// The look that saw the end, and the one Stopped makes.
				if c.Asks > k+2 {
					t.Errorf("ended at look %d, looked %d times: it ran on past the end", k, c.Asks)
				}
			}
			t.Logf("%d looks at the context in a full evaluation", free.Asks)
		})
	}
	// The pod loop looks at least once per PollEvery pods.
	free := &diagtest.PollCtx{Context: context.Background(), K: 1 << 30}
	evalPodIPInPodCIDR(free, nodes, pods, nil, nil)
	if want := len(pods) / diag.PollEvery; free.Asks < want {
		t.Errorf("pod-ip-in-podcidr looked %d times over %d pods, want at least %d", free.Asks, len(pods), want)
	}
}
