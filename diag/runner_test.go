package diag

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type fakeProvider struct {
	name  SourceName
	value any
	err   error
	calls atomic.Int32
	delay time.Duration
}

func (p *fakeProvider) Name() SourceName { return p.name }
func (p *fakeProvider) Gather(ctx context.Context) (any, error) {
	p.calls.Add(1)
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.value, p.err
}

func check(id string, needs []SourceName, run func(context.Context, *Inputs) []*pb.Result) Check {
	return Check{ID: id, Title: id, Needs: needs, Run: run}
}

func TestRunnerPolicies(t *testing.T) {
	kube := &fakeProvider{name: SourceKube, value: "snapshot"}
	broken := &fakeProvider{name: SourceBGP, err: errors.New("dial 10.0.0.1:179: connection refused")}
	unconf := &fakeProvider{name: SourceDNS, err: NotConfigured("no dns section")}
	slow := &fakeProvider{name: SourceCloud, value: 1, delay: time.Hour}
	pass := func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{Pass("ok")} }
	checks := []Check{
		check("z.last", []SourceName{SourceKube}, func(_ context.Context, in *Inputs) []*pb.Result {
			return []*pb.Result{Pass("saw %v", in.Value(SourceKube))}
		}),
		check("a.first", []SourceName{SourceKube}, pass),
		check("b.panics", nil, func(context.Context, *Inputs) []*pb.Result { panic("boom") }),
		check("c.hangs", nil, func(context.Context, *Inputs) []*pb.Result { select {} }),
		check("d.bgp", []SourceName{SourceBGP, SourceKube}, pass),
		check("e.dns", []SourceName{SourceDNS}, pass),
		check("f.empty", nil, func(context.Context, *Inputs) []*pb.Result { return nil }),
		check("g.nostatus", nil, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{{Summary: "x"}} }),
		check("h.nosource", []SourceName{SourceRoutes}, pass),
		check("i.slowsource", []SourceName{SourceCloud}, pass),
	}
	r := &Runner{Providers: []Provider{kube, broken, unconf, slow}, CheckTimeout: 200 * time.Millisecond, SourceTimeout: 200 * time.Millisecond}
	rep := r.Run(context.Background(), checks)

	want := []struct {
		id     string
		status pb.Status
		substr string
	}{
		{"a.first", pb.Status_PASS, "ok"},
		{"b.panics", pb.Status_ERROR, "check panicked: boom"},
		{"c.hangs", pb.Status_ERROR, "did not finish within 200ms"},
		{"d.bgp", pb.Status_ERROR, "could not read the bgp source: dial 10.0.0.1:179: connection refused"},
		{"e.dns", pb.Status_SKIP, "dns source not configured: no dns section"},
		{"f.empty", pb.Status_ERROR, "no result"},
		{"g.nostatus", pb.Status_ERROR, "without status"},
		{"h.nosource", pb.Status_SKIP, "no routes source in this run"},
		{"i.slowsource", pb.Status_ERROR, "deadline exceeded"},
		{"z.last", pb.Status_PASS, "saw snapshot"},
	}
	if len(rep.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(want))
	}
	for i, w := range want {
		got := rep.Results[i]
		if got.CheckId != w.id || got.Status != w.status || !strings.Contains(got.Summary, w.substr) || got.Duration == nil {
			t.Errorf("result %d: %s %s %q, want %s %s containing %q", i, got.CheckId, got.Status, got.Summary, w.id, w.status, w.substr)
		}
	}
	if !strings.Contains(rep.Results[1].Evidence[0].Observed, "boom") {
		t.Errorf("panic evidence: %v", rep.Results[1].Evidence)
	}
	if kube.calls.Load() != 1 {
		t.Errorf("kube gathered %d times, want once for all its checks", kube.calls.Load())
	}
	if s := rep.Summary; s.Pass != 2 || s.Error != 6 || s.Skip != 2 {
		t.Errorf("summary %v", s)
	}
	if ExitCode(rep, false) != 2 {
		t.Errorf("exit code %d, want 2 (errors, no failures)", ExitCode(rep, false))
	}
}

// TestOptionalSources: optional sources are gathered and read when present;
// a check with only optional sources runs on any one of them.
func TestOptionalSources(t *testing.T) {
	kube := &fakeProvider{name: SourceKube, value: "snapshot"}
	broken := &fakeProvider{name: SourceBGP, err: errors.New("dial 10.0.0.1:179: connection refused")}
	unconf := &fakeProvider{name: SourceDNS, err: NotConfigured("no dns section")}
	unconf2 := &fakeProvider{name: SourceCloud, err: NotConfigured("no cloud section")}
	saw := func(names ...SourceName) func(context.Context, *Inputs) []*pb.Result {
		return func(_ context.Context, in *Inputs) []*pb.Result {
			var got []string
			for _, n := range names {
				got = append(got, fmt.Sprintf("%s=%v", n, in.Value(n)))
			}
			return []*pb.Result{Pass("%s", strings.Join(got, " "))}
		}
	}
	checks := []Check{
		{ID: "a.needs-and-optional", Needs: []SourceName{SourceKube}, Optional: []SourceName{SourceDNS}, Run: saw(SourceKube, SourceDNS)},
		{ID: "b.any-one", Optional: []SourceName{SourceDNS, SourceKube}, Run: saw(SourceDNS, SourceKube)},
		{ID: "c.none-configured", Optional: []SourceName{SourceDNS, SourceCloud}, Run: saw()},
		{ID: "d.one-broken", Optional: []SourceName{SourceDNS, SourceBGP}, Run: saw()},
		{ID: "e.no-provider", Optional: []SourceName{SourceRoutes}, Run: saw()},
	}
	r := &Runner{Providers: []Provider{kube, broken, unconf, unconf2}}
	rep := r.Run(context.Background(), checks)
	want := []struct {
		status  pb.Status
		summary string
	}{
		{pb.Status_PASS, "kube=snapshot dns=<nil>"},
		{pb.Status_PASS, "dns=<nil> kube=snapshot"},
		{pb.Status_SKIP, "dns source not configured: no dns section; cloud source not configured: no cloud section"},
		{pb.Status_ERROR, "could not read the bgp source: dial 10.0.0.1:179: connection refused"},
		{pb.Status_SKIP, "routes source not configured: no routes source in this run"},
	}
	for i, w := range want {
		if got := rep.Results[i]; got.Status != w.status || got.Summary != w.summary {
			t.Errorf("%s: %s %q, want %s %q", got.CheckId, got.Status, got.Summary, w.status, w.summary)
		}
	}
	if info := checks[0].Info(); strings.Join(info.Sources, ",") != "kube,dns" {
		t.Errorf("catalog sources %v", info.Sources)
	}
}

func TestExitCode(t *testing.T) {
	rep := func(s *pb.Summary) *pb.Report { return &pb.Report{Summary: s} }
	cases := []struct {
		s          *pb.Summary
		failOnWarn bool
		want       int
	}{
		{&pb.Summary{Pass: 3}, false, 0},
		{&pb.Summary{Pass: 3, Warn: 1}, false, 0},
		{&pb.Summary{Pass: 3, Warn: 1}, true, 1},
		{&pb.Summary{Fail: 1, Error: 1}, false, 1},
		{&pb.Summary{Error: 1, Skip: 2}, false, 2},
		{&pb.Summary{Skip: 2}, false, 0},
	}
	for _, c := range cases {
		if got := ExitCode(rep(c.s), c.failOnWarn); got != c.want {
			t.Errorf("ExitCode(%v, %v) = %d, want %d", c.s, c.failOnWarn, got, c.want)
		}
	}
}

func TestSelect(t *testing.T) {
	all := []Check{{ID: "bgp.session"}, {ID: "bgp.podcidr-advertised"}, {ID: "k8s.podcidr-assigned"}, {ID: "k8s.podcidr-overlap"}}
	ids := func(cs []Check) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.ID)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		only, skip []string
		want       string
	}{
		{nil, nil, "bgp.session,bgp.podcidr-advertised,k8s.podcidr-assigned,k8s.podcidr-overlap"},
		{[]string{"bgp"}, nil, "bgp.session,bgp.podcidr-advertised"},
		{[]string{"bgp."}, []string{"bgp.session"}, "bgp.podcidr-advertised"},
		{[]string{"k8s.podcidr-overlap"}, nil, "k8s.podcidr-overlap"},
		{nil, []string{"k8s"}, "bgp.session,bgp.podcidr-advertised"},
	}
	for _, c := range cases {
		got, err := Select(all, c.only, c.skip)
		if err != nil || ids(got) != c.want {
			t.Errorf("Select(%v, %v) = %s, %v; want %s", c.only, c.skip, ids(got), err, c.want)
		}
	}
	// A prefix of a word is not a prefix of an ID ("k8s.podcidr" is not "k8s.podcidr-assigned").
	for _, bad := range [][]string{{"k8s.podcidr"}, {"bgpx"}, {"nope"}} {
		_, err := Select(all, bad, nil)
		if err == nil || !strings.Contains(err.Error(), "valid IDs: bgp.session, bgp.podcidr-advertised") {
			t.Errorf("Select(%v): %v, want an error listing valid IDs", bad, err)
		}
	}
}
