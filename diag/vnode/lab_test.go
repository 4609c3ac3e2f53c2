package vnode

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/k8s"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// gather reads a snapshot through the real Kubernetes source.
func gather(t *testing.T, ctx context.Context, rc *rest.Config) *kube.Snapshot {
	t.Helper()
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 3}, rc, "lab")
	if err != nil {
		t.Fatal(err)
	}
	return diagtest.GatherAs(t, ctx, p, kube.Source)
}

func run(t *testing.T, ctx context.Context, s *kube.Snapshot, id string) []*pb.Result {
	t.Helper()
	return diagtest.Run(t, ctx, Checks(), id, diag.NewInputs(kube.Source.With(s)))
}

// TestLab runs the checks on the demo scenario loaded into a real API
// server, then applies their remediations through the same server and
// checks that the faults go away.
func TestLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab := kubelab.StartT(t)
	if err := lab.Apply(ctx, append(kubelab.HybridCluster(), kubelab.VNodeScenario()...)...); err != nil {
		t.Fatal(err)
	}
	// The aggregator probes the APIService's Service on its own schedule.
	var s *kube.Snapshot
	deadline := time.Now().Add(time.Minute)
	for {
		s = gather(t, ctx, lab.Config)
		if a := s.MetricsAPIService; a != nil && a.Available != "Unknown" || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(s.PartErrors) > 0 {
		t.Fatalf("part errors: %v", s.PartErrors)
	}
	if a := s.MetricsAPIService; a == nil || a.Service != "kube-system/metrics-server" || a.Available != "False" {
		t.Fatalf("APIService as the aggregator leaves it: %+v", a)
	}
	t.Logf("aggregator: APIService Available=%s reason=%s message=%q", s.MetricsAPIService.Available, s.MetricsAPIService.Reason, s.MetricsAPIService.Message)

	t.Run("present", func(t *testing.T) {
		got := run(t, ctx, s, "vnode.present")
		if diagtest.StatusNames(got) != "PASS,PASS,FAIL" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		nr := diagtest.Find(got, "Node", "", kubelab.ScenarioVNodeNotReady)
		if nr.Status != pb.Status_FAIL || !strings.Contains(nr.Summary, "Ready=Unknown (NodeStatusUnknown") || !hasEvidence(nr, "identified by", "label k8s.aliyun.com/vnode=true") {
			t.Errorf("not-ready VNode: %s", diagtest.Dump([]*pb.Result{nr}))
		}
		if !hasEvidence(got[0], "kubelet version", kubelab.VNodeKubeletVersion) {
			t.Errorf("kubelet version missing: %s", diagtest.Dump(got[:1]))
		}
	})

	t.Run("daemonset-affinity", func(t *testing.T) {
		got := run(t, ctx, s, "vnode.daemonset-affinity")
		if diagtest.StatusNames(got) != "FAIL,FAIL,PASS" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		kp := diagtest.Find(got, "DaemonSet", "kube-system", "kube-proxy")
		if kp == nil || !strings.Contains(kp.Summary, "(system DaemonSet, in namespace kube-system) can be placed on VNode(s) virtual-kubelet-cn-shanghai-l, "+kubelab.ScenarioVNodeReady+", "+kubelab.ScenarioVNodeNotReady) ||
			!hasEvidence(kp, "pod kube-system/kube-proxy-vk8s2", "Pending, bound to VNode "+kubelab.ScenarioVNodeReady) {
			t.Errorf("kube-proxy: %s", diagtest.Dump([]*pb.Result{kp}))
		}
		ne := diagtest.Find(got, "DaemonSet", "monitoring", "node-exporter")
		if ne == nil || !hasEvidence(ne, "placement on 2 VNodes virtual-kubelet-cn-shanghai-l, "+kubelab.ScenarioVNodeReady, "term 2 (kubernetes.io/os In [linux])") {
			t.Errorf("node-exporter: %s", diagtest.Dump([]*pb.Result{ne}))
		}
		if got[2].Summary != "the other 2 DaemonSets keep off the 3 VNode(s)" {
			t.Errorf("pass: %s", got[2].Summary)
		}

		// Apply the remediation exactly as printed, through the real API
		// server, and re-check: node-exporter must keep off every VNode.
		patch := between(t, ne.Remediation, "patch daemonset node-exporter --type=strategic -p '", "'")
		if _, err := lab.Client.AppsV1().DaemonSets("monitoring").Patch(ctx, "node-exporter", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("apply the printed patch: %v", err)
		}
		got = run(t, ctx, gather(t, ctx, lab.Config), "vnode.daemonset-affinity")
		if diagtest.Find(got, "DaemonSet", "monitoring", "node-exporter") != nil || diagtest.StatusNames(got) != "FAIL,PASS" {
			t.Errorf("after the patch: %s", diagtest.Dump(got))
		}
		ds, err := lab.Client.AppsV1().DaemonSets("monitoring").Get(ctx, "node-exporter", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		terms := ds.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 2 || termString(terms[0]) != "type NotIn [virtual-kubelet] AND k8s.aliyun.com/vnode NotIn [true]" ||
			termString(terms[1]) != "kubernetes.io/os In [linux] AND type NotIn [virtual-kubelet] AND k8s.aliyun.com/vnode NotIn [true]" {
			t.Errorf("merged terms on the server: %v", terms)
		}
	})

	t.Run("metrics-server", func(t *testing.T) {
		got := run(t, ctx, s, "vnode.metrics-server")
		if diagtest.StatusNames(got) != "FAIL" || !strings.Contains(got[0].Summary, "metrics-server kube-system/metrics-server is v0.6.4: it scrapes /metrics/resource") ||
			!strings.Contains(got[0].Summary, "APIService v1beta1.metrics.k8s.io is not Available") {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		patch := between(t, got[0].Remediation, "patch deployment metrics-server --type=json -p '", "'")
		if _, err := lab.Client.AppsV1().Deployments("kube-system").Patch(ctx, "metrics-server", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("apply the printed patch: %v", err)
		}
		got = run(t, ctx, gather(t, ctx, lab.Config), "vnode.metrics-server")
		// The version and flags are fixed; the lab runs no metrics-server
		// pod, so the APIService stays unavailable.
		if !strings.HasPrefix(got[0].Summary, "metrics-server kube-system/metrics-server is v0.5.2 with the VNode flags; APIService") {
			t.Errorf("after the patch: %s", diagtest.Dump(got))
		}
	})

	t.Run("k8s-version", func(t *testing.T) {
		got := run(t, ctx, s, "vnode.k8s-version")
		if diagtest.StatusNames(got) != "PASS" || !strings.Contains(got[0].Summary, "API server v1.") {
			t.Errorf("got %s", diagtest.Dump(got))
		}
	})

	t.Run("registry-tls", func(t *testing.T) {
		got := run(t, ctx, s, "vnode.registry-tls")
		if diagtest.StatusNames(got) != "WARN,WARN,WARN" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		for _, name := range []string{"storefront-6d9c7f5b8d-x7k2p", "storefront-6d9c7f5b8d-q9d4w"} {
			r := diagtest.Find(got, "Pod", "shop", name)
			if r == nil || !strings.HasSuffix(r.Summary, `add annotation k8s.aliyun.com/insecure-registry: "`+kubelab.ScenarioHarbor+`"`) ||
				!strings.HasPrefix(r.Remediation, "kubectl -n shop patch deployment storefront --type=merge -p '") {
				t.Errorf("%s: %s", name, diagtest.Dump([]*pb.Result{r}))
			}
		}
		if r := diagtest.Find(got, "Pod", "shop", "storefront-6d9c7f5b8d-q9d4w"); r == nil || !hasEvidence(r, "event Failed (count 5)", "x509: certificate signed by unknown authority") {
			t.Errorf("event evidence: %s", diagtest.Dump([]*pb.Result{r}))
		}
		cat := diagtest.Find(got, "Pod", "shop", "catalog-6d9c7f5b8d-m3n8v")
		if cat == nil || !strings.Contains(cat.Summary, `"harbor.corp.example,`+kubelab.ScenarioHarbor+`" (it carries "harbor.corp.example"`) {
			t.Errorf("catalog: %s", diagtest.Dump([]*pb.Result{cat}))
		}
		patch := between(t, diagtest.Find(got, "Pod", "shop", "storefront-6d9c7f5b8d-x7k2p").Remediation, "--type=merge -p '", "'")
		d, err := lab.Client.AppsV1().Deployments("shop").Patch(ctx, "storefront", types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("apply the printed patch: %v", err)
		}
		if v := d.Spec.Template.Annotations["k8s.aliyun.com/insecure-registry"]; v != kubelab.ScenarioHarbor {
			t.Errorf("template annotation after the patch: %q", v)
		}
	})
}

// TestLabFAQ runs the FAQ's vnode.* checks on the demo cluster loaded into
// a real API server, and applies their printed patches through it.
func TestLabFAQ(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab := kubelab.StartT(t)
	if err := lab.Apply(ctx, slices.Concat(kubelab.HybridCluster(), kubelab.VNodeScenario(), kubelab.FAQScenario())...); err != nil {
		t.Fatal(err)
	}
	s := gather(t, ctx, lab.Config)
	if len(s.PartErrors) > 0 {
		t.Fatalf("part errors: %v", s.PartErrors)
	}

	t.Run("pod-placement", func(t *testing.T) {
		got := run(t, ctx, s, CheckPodPlacement)
		if diagtest.StatusNames(got) != "FAIL,FAIL" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		job := diagtest.Find(got, "Pod", "batch", "nightly-report-7xk2p")
		if job == nil || job.Summary != "pending pod batch/nightly-report-7xk2p is meant for a VNode (nodeSelector type=virtual-kubelet) but no VNode accepts it: "+
			"VNode virtual-kubelet-cn-shanghai-l: taint virtual-kubelet.io/provider=alibabacloud:NoSchedule is not tolerated" ||
			!hasEvidence(job, "event FailedScheduling about nightly-report-7xk2p (count 12)", "untolerated taint {virtual-kubelet.io/provider: alibabacloud}") {
			t.Errorf("job: %s", diagtest.Dump([]*pb.Result{job}))
		}
		etl := diagtest.Find(got, "Deployment", "batch", "etl-worker")
		if etl == nil || !strings.HasPrefix(etl.Summary, "2 pending pods of Deployment batch/etl-worker are meant for a VNode (toleration {key: virtual-kubelet.io/provider") ||
			!strings.HasSuffix(etl.Summary, "excluded by nodeSelector {type=virtual-kubelet-eci}") {
			t.Fatalf("etl-worker: %s", diagtest.Dump([]*pb.Result{etl}))
		}
		// The printed patch, applied through the API server, gives the
		// Deployment a template the VNode accepts.
		patch := between(t, fixText(etl), "patch deployment etl-worker --type=strategic -p '", "'")
		d, err := lab.Client.AppsV1().Deployments("batch").Patch(ctx, "etl-worker", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("apply the printed patch: %v", err)
		}
		spec := &d.Spec.Template.Spec
		vn := nodeNamed(s, "virtual-kubelet-cn-shanghai-l")
		if ok, why := newPlacement(spec, spec.Tolerations).placeable(vn); !ok {
			t.Errorf("after the patch the template is still kept off: %s (nodeSelector %v)", why, spec.NodeSelector)
		}
	})

	t.Run("eci-profile", func(t *testing.T) {
		got := run(t, ctx, s, CheckECIProfile)
		if diagtest.StatusNames(got) != "FAIL,PASS" || !strings.Contains(got[0].Summary, `selectors[1] (analytics).namespaceLabels: "Equals" is not a valid label selector operator`) ||
			got[1].Summary != "eci-profile selector shop-burst matches 1 pod(s) on VNodes or meant for them: 1 running on VNodes, 0 pending" {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		if s.ECIProfile == nil || strings.Join(s.ECIProfile.VSwitchIDs, ",") != "vsw-uf6a1b2c3d4e5f6g7h8i9,vsw-uf6j0k1l2m3n4o5p6q7r8" {
			t.Errorf("parsed profile: %+v", s.ECIProfile)
		}
	})

	t.Run("nas-fsgroup", func(t *testing.T) {
		got := run(t, ctx, s, CheckNASFSGroup)
		if diagtest.StatusNames(got) != "WARN" || !strings.HasPrefix(got[0].Summary, "pod media/transcoder-6b8d4f-h7j9k on VNode virtual-kubelet-cn-shanghai-l mounts NAS volume(s) media with fsGroup 1000") ||
			!hasEvidence(got[0], "NAS volumes", "media (claim media-nas, PV nas-media, CSI nasplugin.csi.alibabacloud.com server "+kubelab.ScenarioNASServer+")") {
			t.Fatalf("got %s", diagtest.Dump(got))
		}
		patch := between(t, fixText(got[0]), "patch deployment transcoder --type=strategic -p '", "'")
		d, err := lab.Client.AppsV1().Deployments("media").Patch(ctx, "transcoder", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil {
			t.Fatalf("apply the printed patch: %v", err)
		}
		if sc := d.Spec.Template.Spec.SecurityContext; sc == nil || sc.FSGroupChangePolicy == nil || *sc.FSGroupChangePolicy != "OnRootMismatch" || sc.FSGroup == nil {
			t.Errorf("template after the patch: %+v", sc)
		}
	})
}

func nodeNamed(s *kube.Snapshot, name string) *corev1.Node {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// TestLabPartErrors reads the cluster as a user who may not list
// DaemonSets, Deployments or events: the checks that need them say so.
func TestLabPartErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab := kubelab.StartT(t)
	if err := lab.Apply(ctx, kubelab.VNodeScenario()...); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "nodes-and-pods"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "namespaces", "configmaps"}, Verbs: []string{"get", "list"}},
	}}
	if _, err := lab.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "nodes-and-pods"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "nodes-and-pods"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "narrow-reader"}}}
	if _, err := lab.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(lab.Config)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "narrow-reader"}
	// The API server's authorizer learns of the binding from a watch of its
	// own: until then the narrow reader may list nothing.
	narrow, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := narrow.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the narrow reader still may not list nodes 30 s after its binding: %v", err)
		}
	}
	s := gather(t, ctx, rc)
	if s.PartErrors[kube.PartDaemonSets] == nil || s.PartErrors[kube.PartDeployments] == nil || s.PartErrors[kube.PartEvents] == nil {
		t.Fatalf("want daemonsets, deployments and events to fail for the narrow reader, part errors: %v", s.PartErrors)
	}
	for id, want := range map[string]string{
		"vnode.daemonset-affinity": "ERROR could not read daemonsets: list daemonsets:",
		"vnode.metrics-server":     "ERROR could not read deployments: list deployments:",
	} {
		got := run(t, ctx, s, id)
		if len(got) != 1 || !strings.HasPrefix(got[0].Status.String()+" "+got[0].Summary, want) {
			t.Errorf("%s: %s", id, diagtest.Dump(got))
		}
	}
	// Status messages still show the certificate errors; the missing
	// events are reported beside them.
	got := run(t, ctx, s, "vnode.registry-tls")
	if diagtest.StatusNames(got) != "WARN,WARN,ERROR" || !strings.Contains(got[2].Summary, "could not read events") {
		t.Errorf("registry-tls: %s", diagtest.Dump(got))
	}
	// Nodes and pods are enough for these two.
	if got := run(t, ctx, s, "vnode.present"); diagtest.StatusNames(got) != "PASS,FAIL" {
		t.Errorf("present: %s", diagtest.Dump(got))
	}
	if got := run(t, ctx, s, "vnode.k8s-version"); diagtest.StatusNames(got) != "PASS" {
		t.Errorf("k8s-version: %s", diagtest.Dump(got))
	}
}

// TestLabNoVNode: a cluster without VNodes skips the VNode checks with the
// reason, and still reports the version.
func TestLabNoVNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab := kubelab.StartT(t)
	if err := lab.Apply(ctx, kubelab.OnPremNode("dc-1", "172.21.0.0/24", "10.10.0.11"), kubelab.KubeProxyDaemonSet(),
		kubelab.MetricsServerDeployment("registry.k8s.io/metrics-server/metrics-server:v0.7.2")); err != nil {
		t.Fatal(err)
	}
	s := gather(t, ctx, lab.Config)
	for _, c := range Checks() {
		if len(c.Needs) != 1 || c.Needs[0] != kube.Source.Name() {
			continue // vnode.agent reads the agent source too; diag/agent tests it
		}
		got := run(t, ctx, s, c.ID)
		want, why := "SKIP", "no VNode in the cluster"
		switch c.ID {
		case "vnode.k8s-version":
			want = "PASS"
		case "vnode.eci-profile":
			why = "no ConfigMap kube-system/eci-profile"
		}
		if diagtest.StatusNames(got) != want || (want == "SKIP" && !strings.Contains(got[0].Summary, why)) {
			t.Errorf("%s: %s", c.ID, diagtest.Dump(got))
		}
	}
}

// between returns the text of s after the first start and before the next end.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("%q not in %q", start, s)
	}
	out, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("%q not after %q in %q", end, start, s)
	}
	return out
}

// labReport loads objs into lab and runs the k8s.* and vnode.* checks on it
// through the engine's Runner, reading in small pages.
func labReport(t *testing.T, ctx context.Context, lab *kubelab.Lab, objs []any) *pb.Report {
	t.Helper()
	if err := lab.Apply(ctx, objs...); err != nil {
		t.Fatal(err)
	}
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 3}, lab.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	return (&diag.Runner{Providers: []diag.Provider{p}}).Run(ctx, append(k8s.Checks(), Checks()...))
}

// TestLabRunner runs the vnode.* and k8s.* checks through the engine's
// Runner on the demo cluster, and proves that adding VNodeScenario to
// HybridCluster changes no k8s.* result: the demo's faults stay one per
// check family.
func TestLabRunner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	report := func(objs []any) *pb.Report { return labReport(t, ctx, kubelab.StartT(t), objs) }
	k8sResults := func(rep *pb.Report) string {
		var b strings.Builder
		for _, r := range rep.Results {
			if !strings.HasPrefix(r.CheckId, "k8s.") {
				continue
			}
			// A PASS may count the objects it looked at, which the
			// scenario adds to; what it finds wrong must not change.
			b.WriteString(r.CheckId + " " + r.Status.String())
			if r.Status != pb.Status_PASS {
				b.WriteString(" " + r.Summary)
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	base := report(kubelab.HybridCluster())
	demo := report(append(kubelab.HybridCluster(), kubelab.VNodeScenario()...))
	if a, b := k8sResults(base), k8sResults(demo); a != b {
		t.Errorf("VNodeScenario changes k8s.* results:\nHybridCluster alone:\n%s\nwith VNodeScenario:\n%s", a, b)
	}
	byCheck := map[string]string{}
	for _, r := range demo.Results {
		if strings.HasPrefix(r.CheckId, "vnode.") {
			byCheck[r.CheckId] += r.Status.String() + ","
		}
	}
	want := map[string]string{
		"vnode.present":            "PASS,PASS,FAIL,",
		"vnode.daemonset-affinity": "FAIL,FAIL,PASS,",
		"vnode.metrics-server":     "FAIL,",
		"vnode.k8s-version":        "PASS,",
		"vnode.registry-tls":       "WARN,WARN,WARN,",
	}
	for id, w := range want {
		if byCheck[id] != w {
			t.Errorf("%s: %s, want %s", id, byCheck[id], w)
		}
	}
	for _, r := range demo.Results {
		if r.Reference == "" || r.Duration == nil {
			t.Errorf("%s: result without reference or duration", r.CheckId)
		}
	}
}

// TestLabLegacyServer runs against a real kube-apiserver v1.15.12, the last
// release without label-based VNode scheduling: vnode.k8s-version FAILs with
// the upgrade path, and the rest of the run goes on.
func TestLabLegacyServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real API server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := labReport(t, ctx, kubelab.StartLegacyT(t), kubelab.LegacyCluster())
	for _, s := range rep.Sources {
		t.Logf("source %s: %s %s", s.Name, s.State, s.Message)
	}
	byCheck := map[string][]*pb.Result{}
	for _, r := range rep.Results {
		t.Logf("%s %s %s", r.CheckId, r.Status, r.Summary)
		byCheck[r.CheckId] = append(byCheck[r.CheckId], r)
	}
	got := byCheck["vnode.k8s-version"]
	if diagtest.StatusNames(got) != "FAIL" || got[0].Summary != "API server "+kubelab.LegacyVersion+" is older than v1.16: label-based VNode scheduling is not supported" ||
		!strings.Contains(got[0].Remediation, "from 1.15") {
		t.Fatalf("k8s-version on %s: %s", kubelab.LegacyVersion, diagtest.Dump(got))
	}
	if got := byCheck["vnode.present"]; diagtest.StatusNames(got) != "PASS" {
		t.Errorf("present: %s", diagtest.Dump(got))
	}
	// Found on this server: it has no spec.podCIDRs (1.16) and no
	// ServiceCIDR API (1.33); neither is a fault of the cluster.
	if got := byCheck["k8s.podcidr-assigned"]; diagtest.StatusNames(got) != "PASS" {
		t.Errorf("podcidr-assigned: %s", diagtest.Dump(got))
	}
	if got := byCheck["k8s.podcidr-overlap"]; diagtest.StatusNames(got) != "PASS,WARN" || !strings.Contains(got[1].Summary, "the server has no ServiceCIDR API") {
		t.Errorf("podcidr-overlap: %s", diagtest.Dump(got))
	}
	for id, rs := range byCheck {
		for _, r := range rs {
			if r.Status == pb.Status_ERROR {
				t.Errorf("%s: ERROR on the old server: %s", id, r.Summary)
			}
		}
	}
}
