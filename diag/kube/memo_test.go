package kube_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	"github.com/vnodediag/vnodediag/diag/vnode"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// comparable is a report's results without what differs between two runs
// of the same inputs (durations), as text.
func comparableResults(rep *pb.Report) []string {
	var out []string
	for _, r := range rep.GetResults() {
		c := proto.Clone(r).(*pb.Result)
		c.Duration = nil
		out = append(out, fmt.Sprint(c))
	}
	return out
}

func diffResults(a, b []string) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d results against %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("result %d:\n%s\nagainst\n%s", i, a[i], b[i])
		}
	}
	return ""
}

// TestCachedMemo: a runner with a memo over the watch cache gives the
// report a runner without one gives for the same inputs; while nothing
// changes it reuses every check's results; a pod change reruns the checks
// that read pods, and only those, and the report follows the change.
func TestCachedMemo(t *testing.T) {
	lab, ctx := hybridLab(t)
	c := syncedCache(t, ctx, &kube.Config{}, lab.Config, nil)
	checks := append(k8s.Checks(), vnode.Checks()...)
	// The checks that read pods: those that name that part, and those
	// that name no part (they read all of the snapshot).
	podChecks := 0
	for _, ch := range checks {
		if slices.Contains(ch.Needs, kube.Source.Name()) && (len(ch.Reads) == 0 || slices.Contains(ch.Reads, kube.PartPods)) {
			podChecks++
		}
	}
	memo := diag.NewMemo()
	withMemo := &diag.Runner{Providers: []diag.Provider{c}, Memo: memo}
	plain := &diag.Runner{Providers: []diag.Provider{c}}

	// settle runs both until the cache holds still across the two runs.
	settle := func(what string) (hits, misses uint64) {
		t.Helper()
		eventually(t, 30*time.Second, what, func() string {
			v, err := c.Gather(ctx)
			if err != nil {
				return err.Error()
			}
			gen := v.(*kube.Snapshot).Generation()
			h0, m0 := memo.Stats()
			a := withMemo.Run(ctx, checks)
			b := plain.Run(ctx, checks)
			v, _ = c.Gather(ctx)
			if g := v.(*kube.Snapshot).Generation(); g != gen {
				return fmt.Sprintf("the cache changed during the runs (%d -> %d)", gen, g)
			}
			if d := diffResults(comparableResults(a), comparableResults(b)); d != "" {
				return "reports differ: " + d
			}
			h1, m1 := memo.Stats()
			hits, misses = h1-h0, m1-m0
			return ""
		})
		return hits, misses
	}
	settle("first runs")
	// Nothing changed: every check is reused.
	reused, misses := settle("unchanged")
	if misses != 0 || reused == 0 {
		t.Errorf("unchanged cache: %d hits, %d misses; want every check a hit", reused, misses)
	}
	if memo.Len() > len(checks) {
		t.Errorf("memo holds %d entries for %d checks", memo.Len(), len(checks))
	}

	// A pod outside every podCIDR: the kube checks rerun and the report
	// shows it, as a run without the memo does.
	before, err := c.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Apply(ctx, kubelab.Pod("shop", "memo-stray", "dc-2", "10.99.0.1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the cache sees the pod", func() string {
		v, err := c.Gather(ctx)
		if err != nil {
			return err.Error()
		}
		for _, p := range v.(*kube.Snapshot).Pods {
			// The pod is created, then its status (the IP) written: wait
			// for the second.
			if p.Name == "memo-stray" && len(p.AppendIPs(nil)) > 0 {
				return ""
			}
		}
		return "not yet"
	})
	hits, misses := settle("after the pod change")
	// Every check that was reused reads kube (the only source here; the
	// others SKIP before the memo is asked): those that read pods rerun,
	// the others (nodes, ConfigMaps, Deployments alone) are reused.
	if misses != uint64(podChecks) || hits+misses != reused || hits == 0 {
		t.Errorf("after a pod change: %d hits, %d misses; want the %d checks reading pods rerun and the other %d reused", hits, misses, podChecks, int(reused)-podChecks)
	}
	// The nodes did not change: the snapshots share their node facts.
	after, err := c.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.(*kube.Snapshot).NodeFacts() != after.(*kube.Snapshot).NodeFacts() {
		t.Error("a pod change made the node facts be found again")
	}
	rep := withMemo.Run(ctx, checks)
	found := false
	for _, r := range rep.GetResults() {
		for _, o := range r.GetObjects() {
			if o.GetName() == "memo-stray" && r.GetStatus() != pb.Status_PASS {
				found = true
			}
		}
	}
	if !found {
		t.Error("the memo's report does not show the stray pod")
	}

	// A node change: new facts, with the change in them.
	if err := lab.Apply(ctx, kubelab.VNode("memo-vk", "type")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "new node facts", func() string {
		v, err := c.Gather(ctx)
		if err != nil {
			return err.Error()
		}
		f := v.(*kube.Snapshot).NodeFacts()
		if f == after.(*kube.Snapshot).NodeFacts() || !slices.ContainsFunc(f.VNodes, func(n *corev1.Node) bool { return n.Name == "memo-vk" }) {
			return "the new VNode is not in the facts"
		}
		return ""
	})
}
