package k8s

import (
	"context"
	"strings"
	"testing"
	"time"

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

// TestUnreachableAPIServer: a source that fails makes its checks ERROR with
// the cause; nothing crashes and nothing is reported as PASS or FAIL.
func TestUnreachableAPIServer(t *testing.T) {
	p, err := kube.ForRESTConfig(&kube.Config{RequestTimeout: diag.Duration(2 * time.Second)}, &rest.Config{Host: "https://127.0.0.1:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := (&diag.Runner{Providers: []diag.Provider{p}}).Run(context.Background(), Checks())
	if len(rep.Results) != 4 {
		t.Fatalf("want 4 results, got %d", len(rep.Results))
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
