package k8s

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestChecksAgainstAPIServer runs the k8s.* checks through the runner and the
// real Kubernetes source against a real kube-apiserver.
func TestChecksAgainstAPIServer(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 4}, lab.Config, "lab") // tiny pages: exercise paging
	if err != nil {
		t.Fatal(err)
	}
	r := &diag.Runner{Providers: []diag.Provider{p}}
	rep := r.Run(ctx, Checks())

	byCheck := map[string][]*pb.Result{}
	for _, res := range rep.Results {
		byCheck[res.CheckId] = append(byCheck[res.CheckId], res)
	}
	diagtest.ExpectOne(t, byCheck["k8s.providerid-format"], pb.Status_FAIL, `node ecs-bad-2: providerID "i-uf6cmf0kgbs9o4ex1v2q": missing region`)
	if n := len(byCheck["k8s.providerid-format"]); n != 1 {
		t.Errorf("providerid-format: %d results, want only the ecs-bad-2 failure: %v", n, diagtest.Statuses(byCheck["k8s.providerid-format"]))
	}
	diagtest.ExpectOne(t, byCheck["k8s.podcidr-assigned"], pb.Status_PASS, "all 8 non-virtual node(s)")
	ip := byCheck["k8s.pod-ip-in-podcidr"]
	diagtest.ExpectOne(t, ip, pb.Status_FAIL, "node dc-3: 1 pod IP(s) outside podCIDR 172.21.2.0/24, e.g. shop/legacy-api (10.244.7.9)")
	if len(ip) != 1 {
		t.Errorf("pod-ip-in-podcidr: want exactly the dc-3 failure, got %v", diagtest.Statuses(ip))
	}
	ov := byCheck["k8s.podcidr-overlap"]
	diagtest.ExpectOne(t, ov, pb.Status_FAIL, "node dc-4 podCIDR 100.100.8.0/24 overlaps 100.64.0.0/10")
	diagtest.ExpectOne(t, ov, pb.Status_FAIL, "podCIDR 172.21.0.0/24 is shared by 2 nodes: dc-1, dc-5")
	if len(ov) != 2 {
		t.Errorf("podcidr-overlap: want 2 failures, got %v", diagtest.Statuses(ov))
	}
	// The Service CIDR came from the API server's ServiceCIDR object.
	if s := rep.Sources[0]; s.State != pb.SourceStatus_OK || !strings.Contains(s.Message, "9 nodes") {
		t.Errorf("source status: %v", s)
	}
}

// TestFAQChecksAgainstAPIServer runs the k8s.* checks on the demo's FAQ
// faults, loaded into a real kube-apiserver, then applies a printed patch
// through the same server.
func TestFAQChecksAgainstAPIServer(t *testing.T) {
	lab := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, append(kubelab.HybridCluster(), kubelab.FAQScenario()...)...); err != nil {
		t.Fatal(err)
	}
	p, err := kube.ForRESTConfig(&kube.Config{PageSize: 4}, lab.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	run := func() map[string][]*pb.Result {
		rep := (&diag.Runner{Providers: []diag.Provider{p}}).Run(ctx, Checks())
		byCheck := map[string][]*pb.Result{}
		for _, res := range rep.Results {
			byCheck[res.CheckId] = append(byCheck[res.CheckId], res)
		}
		return byCheck
	}
	byCheck := run()
	for id, want := range map[string]string{
		CheckCNIIPAM:         "FAIL",
		CheckNodeNetwork:     "FAIL",
		CheckPodCIDRCapacity: "FAIL",
		CheckKubeProxy:       "WARN",
		CheckVersionSkew:     "FAIL,PASS",
		CheckReserved:        "WARN",
	} {
		if got := diagtest.StatusNames(byCheck[id]); got != want {
			t.Errorf("%s: %s, want %s", id, diagtest.Dump(byCheck[id]), want)
		}
	}
	diagtest.ExpectOne(t, byCheck[CheckCNIIPAM], pb.Status_FAIL, `Calico allocates pod IPs with IPAM "calico-ipam"`)
	diagtest.ExpectOne(t, byCheck[CheckNodeNetwork], pb.Status_FAIL, "ECS node ecs-bad-2 has condition NetworkUnavailable=True and taint node.kubernetes.io/network-unavailable:NoSchedule")
	diagtest.ExpectOne(t, byCheck[CheckPodCIDRCapacity], pb.Status_FAIL, "node dc-6: podCIDR 172.21.6.0/26 has 62 usable addresses but the node admits 110 pods")
	diagtest.ExpectOne(t, byCheck[CheckKubeProxy], pb.Status_WARN, "IPVS udpTimeout is 5m0s")
	diagtest.ExpectOne(t, byCheck[CheckVersionSkew], pb.Status_FAIL, "1 node(s) run kubelet "+kubelab.ScenarioOldKubelet+", 4 minor versions older than the API server")
	r := diagtest.ExpectOne(t, byCheck[CheckReserved], pb.Status_WARN, "Deployment shop/recommender sets pod annotation(s) k8s.io/ingress-bandwidth")

	// The printed patch is valid for the API server and clears the finding.
	_, patch, ok := strings.Cut(r.Remediation, "--type=merge -p '")
	if !ok {
		t.Fatalf("no patch in %q", r.Remediation)
	}
	patch = strings.TrimSuffix(patch, "'")
	if _, err := lab.Client.AppsV1().Deployments("shop").Patch(ctx, "recommender", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("apply the printed patch: %v", err)
	}
	if got := run()[CheckReserved]; diagtest.StatusNames(got) != "PASS" {
		t.Errorf("after the patch: %s", diagtest.Dump(got))
	}
}

// TestUnreachableAPIServer: a source that fails makes its checks ERROR with
// the cause; nothing crashes and nothing is reported as PASS or FAIL.
func TestUnreachableAPIServer(t *testing.T) {
	p, err := kube.ForRESTConfig(&kube.Config{RequestTimeout: diag.Duration(2 * time.Second)}, &rest.Config{Host: "https://127.0.0.1:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := (&diag.Runner{Providers: []diag.Provider{p}}).Run(context.Background(), Checks())
	if len(rep.Results) != len(Checks()) {
		t.Fatalf("want %d results, got %d", len(Checks()), len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Status != pb.Status_ERROR || !strings.Contains(r.Summary, "127.0.0.1:1") {
			t.Errorf("%s: %s %q, want ERROR naming the server", r.CheckId, r.Status, r.Summary)
		}
	}
	if diag.ExitCode(rep, false) != 2 {
		t.Errorf("exit code %d, want 2", diag.ExitCode(rep, false))
	}
}
