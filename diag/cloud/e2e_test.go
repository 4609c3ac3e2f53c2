package cloud

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/kube"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/cloudlab"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// TestChecksEndToEnd runs the cloud.* checks through the runner with the
// Kubernetes half on a real kube-apiserver (the demo's hybrid cluster) and
// the cloud half on the lab endpoint (the demo's account): the runner
// gathers the kube source (eci-profile included) first and hands its
// snapshot to the cloud source.
func TestChecksEndToEnd(t *testing.T) {
	kl := kubelab.StartT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, spec := cloudlab.Demo()
	if err := kl.Apply(ctx, append(kubelab.HybridCluster(), kubelab.ECIProfileFor(spec.ECISecurityGroup, spec.ECIVSwitches...))...); err != nil {
		t.Fatal(err)
	}
	kp, err := kube.ForRESTConfig(&kube.Config{}, kl.Config, "lab")
	if err != nil {
		t.Fatal(err)
	}
	l := startDemoLab(t)
	cfg := l.cfg
	cp, err := NewProvider(&cfg, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	r := &diag.Runner{Providers: []diag.Provider{kp, cp}}
	defer r.Close()
	rep := r.Run(ctx, Checks())

	by := map[string][]*pb.Result{}
	for _, res := range rep.Results {
		by[res.CheckId] = append(by[res.CheckId], res)
	}
	expect(t, by[CheckECSInstances], pb.Status_FAIL, "node ecs-2: instance i-uf6a1b2c3d4e5f6g7h8i: InternalIP 192.168.0.12")
	expect(t, by[CheckVPCPodRoutes], pb.Status_FAIL, "172.22.1.0/24 (node ecs-2)")
	expect(t, by[CheckVPCOnPremRoutes], pb.Status_FAIL, "172.21.2.0/24 (node dc-3)")
	expect(t, by[CheckVBRBGP], pb.Status_FAIL, "4 of 9 prefixes do not cross the leased line")
	expect(t, by[CheckPrivateZone], pb.Status_FAIL, "cluster domain cluster.local contains the PrivateZone zone svc.cluster.local")
	expect(t, by[CheckPrivateZone], pb.Status_SKIP, "no dns section")
	expect(t, by[CheckSecurityGroups], pb.Status_FAIL, "ECI pods (ConfigMap kube-system/eci-profile: security groups sg-uf6eci0000000001)")
	expect(t, by[CheckECIVSwitches], pb.Status_FAIL, "vsw-uf6eci00000000002")
	for _, res := range rep.Results {
		if res.Status == pb.Status_ERROR || res.Reference == "" {
			t.Errorf("%s: %s %s (reference %q)", res.CheckId, res.Status, res.Summary, res.Reference)
		}
	}
	var cloud *pb.SourceStatus
	for _, s := range rep.Sources {
		if s.Name == "cloud" {
			cloud = s
		}
	}
	if cloud == nil || cloud.State != pb.SourceStatus_OK || !containsAll(cloud.Message, "cn-shanghai", "vpc-uf6hybrid7demo01 (discovered", "credentials: environment variables") ||
		strings.Contains(cloud.Message, l.srv.Key().ID) {
		t.Errorf("cloud source status %v", cloud)
	}
	if diag.ExitCode(rep, false) != 1 {
		t.Errorf("exit code %d, want 1", diag.ExitCode(rep, false))
	}
}

// TestSectionAbsent: without a cloud section every cloud.* check SKIPs
// with the reason and the lines to add.
func TestSectionAbsent(t *testing.T) {
	p, err := NewProvider(nil, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	k := kube.Source.Provide(func(context.Context) (*kube.Snapshot, error) { return &kube.Snapshot{}, nil })
	rep := (&diag.Runner{Providers: []diag.Provider{p, k}}).Run(context.Background(), Checks())
	if len(rep.Results) != len(Checks()) {
		t.Fatalf("%d results", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Status != pb.Status_SKIP || !containsAll(r.Summary, "cloud source not configured", "regionId: cn-shanghai") {
			t.Errorf("%s: %s %q", r.CheckId, r.Status, r.Summary)
		}
	}
}

// TestWithoutKubernetes: with a cloud section but no kubernetes one, the
// checks SKIP for the kube source, and the cloud source says why it read
// nothing, without contacting the API.
func TestWithoutKubernetes(t *testing.T) {
	p, err := NewProvider(&Config{RegionID: "cn-shanghai"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	k := kube.Source.Unconfigured("no kubernetes section")
	rep := (&diag.Runner{Providers: []diag.Provider{p, k}}).Run(context.Background(), Checks())
	for _, r := range rep.Results {
		if r.Status != pb.Status_SKIP || !strings.Contains(r.Summary, "kube source not configured") {
			t.Errorf("%s: %s %q", r.CheckId, r.Status, r.Summary)
		}
	}
	for _, s := range rep.Sources {
		if s.Name == "cloud" && (s.State != pb.SourceStatus_NOT_CONFIGURED || !strings.Contains(s.Message, "the Kubernetes source was not gathered")) {
			t.Errorf("cloud source status %v", s)
		}
	}
}

func TestREADME(t *testing.T) { diagtest.CheckREADME(t, "README.md", Checks()) }
