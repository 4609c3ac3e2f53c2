package daemon

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// TestHistoryPacked: a kept run unpacks to the report it was, and a
// repetitive report (100 results with 50 near-identical objects and
// evidence lines each) is kept in a small fraction of its marshalled size.
func TestHistoryPacked(t *testing.T) {
	rep := &pb.Report{RunId: "r1", Summary: &pb.Summary{Fail: 100}}
	for i := range 100 {
		r := diag.Fail("DaemonSet infra/agent-%03d can be placed on VNode(s) vk-000 ... and 47 more: its pods there stay Pending", i)
		r.CheckId = "vnode.daemonset-affinity"
		for v := range 50 {
			r.Objects = append(r.Objects, diag.Obj("Node", "", fmt.Sprintf("vk-%03d", v)))
			r.Evidence = append(r.Evidence, diag.Ev(fmt.Sprintf("placement on VNode vk-%03d", v),
				"excluded by required node affinity, nodeSelector or an untolerated VNode taint", "placeable: tolerates every taint"))
		}
		r.Remediation = "kubectl -n infra patch daemonset agent --type=merge -p '{...}'"
		rep.Results = append(rep.Results, r)
	}
	k, err := keep(rep)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.report()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, rep) {
		t.Error("the kept run does not unpack to the report")
	}
	if k.header.GetRunId() != "r1" || k.header.GetSummary().GetFail() != 100 || len(k.header.GetResults()) != 0 {
		t.Errorf("header %v", k.header)
	}
	size := proto.Size(rep)
	t.Logf("report %d bytes marshalled, kept in %d", size, len(k.packed))
	if len(k.packed)*20 > size {
		t.Errorf("kept in %d bytes, more than 1/20 of its %d", len(k.packed), size)
	}
}
