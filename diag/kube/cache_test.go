package kube_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// snapshotOf runs the k8s checks and a check that keeps the snapshot, with
// one provider: what a run of the daemon or of diagnose sees.
func snapshotOf(t *testing.T, ctx context.Context, p diag.Provider) (*kube.Snapshot, map[string]pb.Status) {
	t.Helper()
	var s *kube.Snapshot
	look := diag.Check{ID: "test.snapshot", Needs: diag.Needs(kube.Source), Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
		// The run releases its snapshot when it ends (the cache may then
		// change its arrays in place): what is read after is copied now.
		got := kube.Source.Get(in)
		s = &kube.Snapshot{Nodes: slices.Clone(got.Nodes), Pods: slices.Clone(got.Pods), DaemonSets: slices.Clone(got.DaemonSets),
			Deployments: slices.Clone(got.Deployments), PersistentVolumes: slices.Clone(got.PersistentVolumes), PodEvents: slices.Clone(got.PodEvents),
			Namespace: got.Namespace, Version: got.Version, ClusterUID: got.ClusterUID, ServiceCIDRs: got.ServiceCIDRs, CoreDNS: got.CoreDNS,
			MetricsAPIService: got.MetricsAPIService, NamespaceLabels: got.NamespaceLabels, ECIProfile: got.ECIProfile, CNIConfigs: got.CNIConfigs,
			KubeProxyConfigs: got.KubeProxyConfigs, PartErrors: got.PartErrors}
		return []*pb.Result{diag.Pass("read")}
	}}
	r := &diag.Runner{Providers: []diag.Provider{p}}
	rep := r.Run(ctx, append(k8s.Checks(), look))
	for _, st := range rep.Sources {
		if st.State != pb.SourceStatus_OK {
			t.Fatalf("gather: %v", st)
		}
	}
	status := map[string]pb.Status{}
	for _, res := range rep.Results {
		k := res.CheckId + " " + res.Summary
		status[k] = max(status[k], res.Status)
	}
	return s, status
}

// sameSnapshot is the difference between two snapshots of the same
// cluster, one from the cache, one from a one-shot gather; empty when
// they hold the same things (in any order).
func sameSnapshot(cached, oneShot *kube.Snapshot) string {
	pods := func(s *kube.Snapshot) []kube.Pod {
		p := slices.Clone(s.Pods)
		slices.SortFunc(p, func(a, b kube.Pod) int {
			return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		})
		return p
	}
	nodes := func(s *kube.Snapshot) []string {
		var out []string
		for _, n := range s.Nodes {
			out = append(out, n.Name+"@"+n.ResourceVersion)
		}
		slices.Sort(out)
		return out
	}
	var diffs []string
	if a, b := pods(cached), pods(oneShot); !reflect.DeepEqual(a, b) {
		diffs = append(diffs, fmt.Sprintf("pods: cached %d, one-shot %d", len(a), len(b)))
	}
	if a, b := nodes(cached), nodes(oneShot); !slices.Equal(a, b) {
		diffs = append(diffs, fmt.Sprintf("nodes: cached %v, one-shot %v", a, b))
	}
	if cached.ClusterUID != oneShot.ClusterUID || !reflect.DeepEqual(cached.NamespaceLabels, oneShot.NamespaceLabels) {
		diffs = append(diffs, "cluster UID or namespaces differ")
	}
	if !slices.Equal(cached.ServiceCIDRs, oneShot.ServiceCIDRs) || cached.Version.GitVersion != oneShot.Version.GitVersion {
		diffs = append(diffs, fmt.Sprintf("service CIDRs %v / %v or version differ", cached.ServiceCIDRs, oneShot.ServiceCIDRs))
	}
	if len(cached.PartErrors) != len(oneShot.PartErrors) {
		diffs = append(diffs, fmt.Sprintf("part errors: cached %v, one-shot %v", cached.PartErrors, oneShot.PartErrors))
	}
	return strings.Join(diffs, "; ")
}

// eventually polls cond every 100 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		if last = cond(); last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after %s: %s", what, d, last)
}

// syncedCache starts a watch cache of rc and waits for its first sync. It
// is closed when the test ends (Close may come earlier: it is idempotent).
func syncedCache(tb testing.TB, ctx context.Context, cfg *kube.Config, rc *rest.Config, log *slog.Logger) *kube.CachedProvider {
	tb.Helper()
	c, err := kube.CachedForRESTConfig(cfg, rc, "lab", log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	if err := c.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := c.WaitSynced(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// hybridLab is an envtest API server holding kubelab.HybridCluster, and
// a context of 2 minutes for the test's requests to it.
func hybridLab(t *testing.T) (*kubelab.Lab, context.Context) {
	t.Helper()
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	return lab, ctx
}

// TestCachedProviderFollowsChurn: pods are created, updated and deleted
// while runs read the cache; every run succeeds, and once the churn stops
// the cache's snapshot and the k8s checks' results are those of a one-shot
// gather of the same cluster.
func TestCachedProviderFollowsChurn(t *testing.T) {
	lab, ctx := hybridLab(t)
	leaks := goleak.IgnoreCurrent()
	c := syncedCache(t, ctx, &kube.Config{}, lab.Config, nil)
	if err := c.Health(); err != nil {
		t.Fatalf("healthy after sync: %v", err)
	}
	oneShot, err := kube.ForRESTConfig(&kube.Config{}, lab.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	defer oneShot.(interface{ Close() }).Close()

	// Churn: a pod outside every podCIDR comes and goes, others are
	// created, relabelled, moved to Failed, deleted; runs go on meanwhile.
	churned := make(chan error, 1)
	go func() {
		defer close(churned)
		cs := lab.Client.CoreV1()
		for i := range 30 {
			name := fmt.Sprintf("churn-%d", i)
			if err := lab.Apply(ctx, kubelab.Pod("churn", name, "dc-1", fmt.Sprintf("172.21.0.%d", 100+i))); err != nil {
				churned <- err
				return
			}
			if i%3 == 1 {
				p, err := cs.Pods("churn").Get(ctx, name, metav1.GetOptions{})
				if err == nil {
					p.Status.Phase = corev1.PodFailed
					_, err = cs.Pods("churn").UpdateStatus(ctx, p, metav1.UpdateOptions{})
				}
				if err != nil {
					churned <- err
					return
				}
			}
			if i%3 == 2 {
				if err := cs.Pods("churn").Delete(ctx, fmt.Sprintf("churn-%d", i-2), metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
					churned <- err
					return
				}
			}
		}
	}()
	runs := 0
	for done := false; !done; runs++ {
		select {
		case err, open := <-churned:
			if err != nil {
				t.Fatalf("churn: %v", err)
			}
			done = !open
		default:
		}
		snapshotOf(t, ctx, c) // fails the test on a failed gather
	}
	t.Logf("%d runs during the churn", runs)

	// The fault (a pod outside its node's podCIDR) appears in the report
	// of the cache as it does in the one-shot's.
	if err := lab.Apply(ctx, kubelab.Pod("churn", "stray", "dc-2", "10.99.0.1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the cache follows the cluster", func() string {
		cs, cst := snapshotOf(t, ctx, c)
		os, ost := snapshotOf(t, ctx, oneShot)
		if d := sameSnapshot(cs, os); d != "" {
			return d
		}
		if !reflect.DeepEqual(cst, ost) {
			return fmt.Sprintf("results differ:\ncached   %v\none-shot %v", cst, ost)
		}
		return ""
	})

	// A forced relist keeps the same view.
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	cs, _ := snapshotOf(t, ctx, c)
	os, _ := snapshotOf(t, ctx, oneShot)
	if d := sameSnapshot(cs, os); d != "" {
		t.Errorf("after refresh: %s", d)
	}
	c.Close()
	if err := c.Health(); err == nil {
		t.Error("healthy after Close")
	}
	goleak.VerifyNone(t, leaks)
}

// TestCachedProviderRecoversFromRestart: the API server stops mid-watch;
// the cache reports itself unhealthy (and runs fail, as a one-shot run
// would) until the server is back, then recovers without help and sees
// what changed meanwhile.
func TestCachedProviderRecoversFromRestart(t *testing.T) {
	lab := kubelab.StartRestartableT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	leaks := goleak.IgnoreCurrent()
	c := syncedCache(t, ctx, &kube.Config{RequestTimeout: diag.Duration(5 * time.Second)}, lab.Config, nil)
	before, _ := snapshotOf(t, ctx, c)

	if err := lab.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "unhealthy while the API server is down", func() string {
		if c.Health() == nil {
			return "still healthy"
		}
		return ""
	})
	t.Logf("while down: %v", c.Health())
	gctx, gcancel := context.WithTimeout(ctx, time.Second)
	_, err := c.Gather(gctx)
	gcancel()
	if err == nil {
		t.Error("gather succeeded while the API server was down")
	}

	if err := lab.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	// A client of the test's own, so that its connection can be closed
	// before looking for leaks.
	hc, err := rest.HTTPClientFor(lab.Config)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfigAndClient(lab.Config, hc)
	if err != nil {
		t.Fatal(err)
	}
	pod := kubelab.Pod("shop", "after-restart", "dc-1", "172.21.0.77")
	created, err := cs.CoreV1().Pods("shop").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = pod.Status
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	hc.CloseIdleConnections()
	eventually(t, 90*time.Second, "healthy again and current", func() string {
		if err := c.Health(); err != nil {
			return err.Error()
		}
		v, err := c.Gather(ctx)
		if err != nil {
			return err.Error()
		}
		s := v.(*kube.Snapshot)
		if len(s.Pods) != len(before.Pods)+1 {
			return fmt.Sprintf("%d pods, want %d", len(s.Pods), len(before.Pods)+1)
		}
		return ""
	})
	c.Close()
	// The restarted kube-apiserver's process is the lab's.
	goleak.VerifyNone(t, leaks, goleak.IgnoreAnyFunction("sigs.k8s.io/controller-runtime/pkg/internal/testing/process.(*State).Start.func1"))
}
