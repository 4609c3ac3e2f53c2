package render

import (
	"bytes"
	"strings"
	"testing"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// causeReport is what the runner makes of one API server that cannot be
// reached and a BGP section left out: the same ERROR and the same SKIP for
// every check that needs them.
func causeReport() *pb.Report {
	down := func(id string) *pb.Result {
		msg := `kubernetes API https://10.9.9.9:6443 (context "prod"): Get "https://10.9.9.9:6443/version": dial tcp 10.9.9.9:6443: connect: connection refused`
		return &pb.Result{CheckId: id, Status: pb.Status_ERROR, Summary: "could not read the kube source: " + msg,
			Evidence: []*pb.Evidence{{Label: "kube source", Expected: "gathered", Observed: msg}}}
	}
	skip := func(id string) *pb.Result {
		return &pb.Result{CheckId: id, Status: pb.Status_SKIP, Summary: "bgp source not configured: no bgp section in the configuration: add bgp.localASN and bgp.peers"}
	}
	long := "set protocols bgp group vnodediag neighbor 10.0.0.9 description \"vnodediag observer, read-only, advertises nothing\""
	return &pb.Report{Results: []*pb.Result{
		skip("bgp.cloud-routes-learned"), skip("bgp.session"),
		{CheckId: "bgp.x", Status: pb.Status_FAIL, Summary: "session down", Remediation: "Add the neighbor (config below).",
			Snippets: []*pb.Snippet{{Title: "Junos: the observer's session", Language: "junos", Text: long + "\nset protocols bgp group vnodediag peer-as 65010"}}},
		down("k8s.podcidr-assigned"), down("k8s.providerid-format"), down("vnode.present"),
		{CheckId: "vnode.registry-tls", Status: pb.Status_SKIP, Summary: "kube source not configured: something else"},
	}, Summary: &pb.Summary{Fail: 1, Error: 3, Skip: 3}}
}

func TestTableOneCauseOneBlock(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, causeReport(), Options{Width: 60}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	golden(t, "cause.txt", b.Bytes())
	if n := strings.Count(out, "connection refused"); n != 1 {
		t.Errorf("the kube source's error is shown %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{
		"ERROR  kube source failed\n",
		"checks it takes down: k8s.podcidr-assigned,",
		"SKIP   bgp source not configured\n",
		"checks skipped: bgp.cloud-routes-learned, bgp.session\n",
		// One SKIP of its own cause stays a result of its own.
		"SKIP   vnode.registry-tls\n",
		// The snippet is not wrapped at 60 columns.
		"\n         set protocols bgp group vnodediag neighbor 10.0.0.9 description \"vnodediag observer, read-only, advertises nothing\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if strings.Count(out, "bgp source not configured") != 1 {
		t.Errorf("the bgp SKIP is not grouped:\n%s", out)
	}
}

// JUnit keeps one test case per check, the snippet in its details.
func TestJUnitKeepsEveryCheck(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, causeReport()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<testcase "); n != 7 {
		t.Errorf("%d test cases, want 7", n)
	}
	if !strings.Contains(b.String(), "peer-as 65010") {
		t.Error("snippet missing from the JUnit details")
	}
}
