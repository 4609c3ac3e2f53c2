package diag

import (
	"context"
	"strings"
	"sync"
	"testing"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// A run with a listener reports each source's start, the source's own
// updates and its end, and each check as it finishes, redacted; the events
// are copies the listener cannot use to change the report.
func TestProgressEvents(t *testing.T) {
	var mu sync.Mutex
	var events []Progress
	ctx := WithProgress(context.Background(), func(ev Progress) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	kube := NewKey[string](SourceKube).Provide(func(ctx context.Context) (string, error) {
		ReportProgress(ctx, Progress{Kind: SourceUpdate, Source: SourceKube, Message: "pods", Done: 5, Total: 10})
		return "ok", nil
	})
	r := &Runner{Providers: []Provider{kube, &fakeProvider{name: SourceBGP, err: notConfigured("no bgp section")}}}
	defer r.Close()
	rep := r.Run(ctx, []Check{
		check("k8s.a", []SourceName{SourceKube}, func(context.Context, *Inputs) []*pb.Result {
			return []*pb.Result{Fail("server https://admin:s3cret@api.example:6443 said no")}
		}),
		check("bgp.a", []SourceName{SourceBGP}, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{Pass("x")} }),
	})
	kinds := map[ProgressKind]int{}
	for _, ev := range events {
		kinds[ev.Kind]++
		if ev.Kind == CheckDone {
			if ev.Check == "" || len(ev.Results) != 1 || ev.Results[0].CheckId != ev.Check {
				t.Errorf("CheckDone event %+v: want the check's ID on it and its result", ev)
			}
			if strings.Contains(ev.Results[0].Summary, "s3cret") {
				t.Errorf("CheckDone result not redacted: %q", ev.Results[0].Summary)
			}
			ev.Results[0].Status = pb.Status_PASS
		}
		if ev.Kind == SourceUpdate && (ev.Done != 5 || ev.Total != 10) {
			t.Errorf("update %+v lost its counts", ev)
		}
	}
	if kinds[SourceStarted] != 2 || kinds[SourceDone] != 2 || kinds[SourceUpdate] != 1 || kinds[CheckDone] != 2 {
		t.Errorf("event counts %v: want 2 started, 1 update, 2 done, 2 checks", kinds)
	}
	for _, res := range rep.Results {
		if res.CheckId == "k8s.a" && res.Status != pb.Status_FAIL {
			t.Errorf("a listener changed the report: %v", res.Status)
		}
	}
	// No listener: nothing to report to, and nothing breaks.
	if Reporting(context.Background()) {
		t.Error("Reporting without a listener")
	}
	ReportProgress(context.Background(), Progress{Kind: SourceUpdate})
}
