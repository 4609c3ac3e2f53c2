package diag

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// The source names of these tests; the real ones belong to the families.
const (
	SourceKube   SourceName = "kube"
	SourceBGP    SourceName = "bgp"
	SourceDNS    SourceName = "dns"
	SourceRoutes SourceName = "routes"
	SourceCloud  SourceName = "cloud"
)

func notConfigured(reason string) error { return fmt.Errorf("%s: %w", reason, ErrNotConfigured) }

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

func TestMain(m *testing.M) {
	// Every test ends the work it starts: a check that ignores its context is
	// released before the test returns, and must then really end.
	goleak.VerifyTestMain(m)
}

func TestRunnerPolicies(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	kube := &fakeProvider{name: SourceKube, value: "snapshot"}
	broken := &fakeProvider{name: SourceBGP, err: errors.New("dial 10.0.0.1:179: connection refused")}
	unconf := &fakeProvider{name: SourceDNS, err: notConfigured("no dns section")}
	slow := &fakeProvider{name: SourceCloud, value: 1, delay: time.Hour}
	pass := func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{Pass("ok")} }
	checks := []Check{
		check("z.last", []SourceName{SourceKube}, func(_ context.Context, in *Inputs) []*pb.Result {
			return []*pb.Result{Pass("saw %v", NewKey[any](SourceKube).Get(in))}
		}),
		check("a.first", []SourceName{SourceKube}, pass),
		check("b.panics", nil, func(context.Context, *Inputs) []*pb.Result { panic("boom") }),
		check("c.hangs", nil, func(context.Context, *Inputs) []*pb.Result { <-release; return nil }),
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

// stubbornProvider ignores its context: Gather returns only when released.
type stubbornProvider struct {
	name     SourceName
	release  chan struct{}
	returned chan struct{}
	once     sync.Once
}

func (p *stubbornProvider) Name() SourceName { return p.name }
func (p *stubbornProvider) Gather(context.Context) (any, error) {
	<-p.release
	defer p.once.Do(func() { close(p.returned) })
	return "late", nil
}

// TestGatherIgnoringContextIsAbandoned: a provider that never looks at its
// context costs the source deadline, not the run. While its abandoned
// Gather has not returned the source is not gathered again (so a daemon
// does not pile them up), and once it returns it is.
func TestGatherIgnoringContextIsAbandoned(t *testing.T) {
	p := &stubbornProvider{name: SourceKube, release: make(chan struct{}), returned: make(chan struct{})}
	saw := check("k8s.sees", []SourceName{SourceKube}, func(_ context.Context, in *Inputs) []*pb.Result {
		return []*pb.Result{Pass("saw %v", NewKey[any](SourceKube).Get(in))}
	})
	r := &Runner{Providers: []Provider{p}, SourceTimeout: 100 * time.Millisecond}
	start := time.Now()
	rep := r.Run(context.Background(), []Check{saw})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run took %s with a 100ms source deadline", d)
	}
	if s := rep.Sources[0]; s.State != pb.SourceStatus_FAILED || !strings.Contains(s.Message, "did not finish within 100ms") {
		t.Errorf("source: %v", s)
	}
	if res := rep.Results[0]; res.Status != pb.Status_ERROR || !strings.Contains(res.Summary, "could not read the kube source: did not finish within 100ms") {
		t.Errorf("check: %s %q", res.Status, res.Summary)
	}

	rep = r.Run(context.Background(), []Check{saw})
	if s := rep.Sources[0]; s.State != pb.SourceStatus_FAILED || !strings.Contains(s.Message, "previous gather of this source ignored its deadline") {
		t.Errorf("second run while the first gather hangs: %v", s)
	}

	close(p.release)
	<-p.returned
	for i := 0; ; i++ {
		rep = r.Run(context.Background(), []Check{saw})
		if rep.Sources[0].State == pb.SourceStatus_OK {
			break
		}
		if i == 100 {
			t.Fatalf("source still refused after the abandoned gather returned: %v", rep.Sources[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := rep.Results[0]; res.Status != pb.Status_PASS || res.Summary != "saw late" {
		t.Errorf("after release: %s %q", res.Status, res.Summary)
	}
}

// TestRunEndsWithItsContext: when the run's context ends, Run returns at
// once; a check that finished keeps its result, a check that ignores its
// context and one that obeys it are both ERROR "interrupted", and the
// cause tells a deadline from a cancellation (Ctrl-C).
func TestRunEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	checks := []Check{
		check("a.fast", nil, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{Pass("done early")} }),
		check("b.ignores-ctx", nil, func(context.Context, *Inputs) []*pb.Result {
			<-release
			return []*pb.Result{Pass("too late")}
		}),
		check("c.obeys-ctx", nil, func(ctx context.Context, _ *Inputs) []*pb.Result {
			<-ctx.Done()
			return Stopped(ctx)
		}),
	}
	cases := []struct {
		name string
		ctx  func() (context.Context, func())
		want string
	}{
		{"deadline", func() (context.Context, func()) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, "interrupted: run deadline exceeded"},
		{"signal", func() (context.Context, func()) {
			// As signal.NotifyContext does on Ctrl-C.
			ctx, cancel := context.WithCancelCause(context.Background())
			tm := time.AfterFunc(300*time.Millisecond, func() { cancel(signalCause("interrupt signal received")) })
			return ctx, func() { tm.Stop(); cancel(nil) }
		}, "interrupted: interrupt signal received"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := c.ctx()
			defer cancel()
			r := &Runner{CheckTimeout: time.Hour}
			start := time.Now()
			rep := r.Run(ctx, checks)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Run took %s after its context ended", d)
			}
			got := map[string]*pb.Result{}
			for _, res := range rep.Results {
				got[res.CheckId] = res
			}
			if res := got["a.fast"]; res.Status != pb.Status_PASS || res.Summary != "done early" {
				t.Errorf("finished check lost its result: %s %q", res.Status, res.Summary)
			}
			if res := got["b.ignores-ctx"]; res.Status != pb.Status_ERROR || res.Summary != c.want {
				t.Errorf("check ignoring ctx: %s %q, want ERROR %q", res.Status, res.Summary, c.want)
			}
			if res := got["c.obeys-ctx"]; res.Status != pb.Status_ERROR {
				t.Errorf("check obeying ctx: %s %q, want ERROR", res.Status, res.Summary)
			}
		})
	}
	// Not started at all: the context had ended before the run.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := (&Runner{}).Run(ctx, checks[:1])
	if res := rep.Results[0]; res.Status != pb.Status_ERROR || res.Summary != "interrupted: run canceled" {
		t.Errorf("check of a canceled run: %s %q", res.Status, res.Summary)
	}
}

// signalCause is the cause os/signal.NotifyContext gives: it Is
// context.Canceled.
type signalCause string

func (s signalCause) Error() string        { return string(s) }
func (s signalCause) Is(target error) bool { return target == context.Canceled }

// TestAbandonedChecksKeepTheirSlots: a check that ignores its deadline keeps
// its concurrency slot until it really returns, so abandoned work never
// exceeds Concurrency goroutines; when every slot is so held, later checks
// are ERROR at once instead of hanging the run, and a check waiting for a
// slot held by a running check ends with the run's context.
func TestAbandonedChecksKeepTheirSlots(t *testing.T) {
	release := make(chan struct{})
	var alive atomic.Int32
	stuck := check("a.stuck", nil, func(context.Context, *Inputs) []*pb.Result {
		alive.Add(1)
		defer alive.Add(-1)
		<-release
		return nil
	})
	r := &Runner{Concurrency: 2, CheckTimeout: 50 * time.Millisecond}
	for i := 0; i < 3; i++ {
		rep := r.Run(context.Background(), []Check{stuck})
		if i < 2 && !strings.Contains(rep.Results[0].Summary, "did not finish within 50ms") {
			t.Errorf("run %d: %q", i, rep.Results[0].Summary)
		}
		if i == 2 && !strings.Contains(rep.Results[0].Summary, "not started: all 2 check slots are held by checks that ignored their deadline and have not returned (a.stuck)") {
			t.Errorf("run %d: %q", i, rep.Results[0].Summary)
		}
	}
	if n := alive.Load(); n != 2 {
		t.Errorf("%d abandoned checks alive, want 2 (Concurrency)", n)
	}
	close(release)
	fast := check("b.fast", nil, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{Pass("ok")} })
	for i := 0; ; i++ {
		if rep := r.Run(context.Background(), []Check{fast}); rep.Results[0].Status == pb.Status_PASS {
			break
		}
		if i == 100 {
			t.Fatal("slots not given back after the abandoned checks returned")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A slot held by a check that is still within its deadline.
	r = &Runner{Concurrency: 1, CheckTimeout: time.Hour}
	hold, running := make(chan struct{}), make(chan struct{})
	first := make(chan *pb.Report)
	go func() {
		first <- r.Run(context.Background(), []Check{check("a.holds", nil, func(context.Context, *Inputs) []*pb.Result {
			close(running)
			<-hold
			return []*pb.Result{Pass("held")}
		})})
	}()
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	rep := r.Run(ctx, []Check{fast})
	if res := rep.Results[0]; res.Summary != "interrupted: run deadline exceeded" {
		t.Errorf("check waiting for a slot: %s %q", res.Status, res.Summary)
	}
	close(hold)
	if rep := <-first; rep.Results[0].Summary != "held" {
		t.Errorf("first run: %q", rep.Results[0].Summary)
	}
}

// TestNilResult: a nil entry is the check's bug, reported as ERROR; the
// run goes on and the other results of the check are kept.
func TestNilResult(t *testing.T) {
	rep := (&Runner{}).Run(context.Background(), []Check{
		check("a.nil", nil, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{nil, Pass("real"), nil} }),
		check("b.only-nil", nil, func(context.Context, *Inputs) []*pb.Result { return []*pb.Result{nil} }),
	})
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.CheckId+" "+r.Status.String()+" "+r.Summary)
	}
	want := []string{
		"a.nil PASS real",
		"a.nil ERROR check returned a nil result (2 of 3 results were nil)",
		"b.only-nil ERROR check returned a nil result (1 of 1 results were nil)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSelectErrors(t *testing.T) {
	small := []Check{{ID: "bgp.session"}, {ID: "k8s.podcidr-overlap"}}
	if _, err := Select(small, []string{"k8s"}, []string{"k8s"}); err == nil ||
		err.Error() != `selection is empty: only "k8s", skip "k8s" leaves none of the 2 checks` {
		t.Errorf("only k8s, skip k8s: %v", err)
	}
	if _, err := Select(small, nil, []string{"bgp", "k8s.podcidr-overlap"}); err == nil || !strings.HasPrefix(err.Error(), "selection is empty: only (all), skip") {
		t.Errorf("skip everything: %v", err)
	}
	if _, err := Select(small, []string{"k8s.podcidr-overlp"}, nil); err == nil ||
		!strings.Contains(err.Error(), `(did you mean "k8s.podcidr-overlap" for "k8s.podcidr-overlp"?)`) {
		t.Errorf("typo: %v", err)
	}

	// A catalog as large as the real one, and a caller sending 100,000
	// unknown entries of 1 KiB each: the error stays short.
	var all []Check
	for _, f := range []string{"bgp", "cloud", "dns", "k8s", "route", "vnode"} {
		for i := 0; i < 7; i++ {
			all = append(all, Check{ID: f + ".check-" + string(rune('a'+i))})
		}
	}
	var junk []string
	for i := 0; i < 100000; i++ {
		junk = append(junk, strings.Repeat("z", 1000)+strconv.Itoa(i))
	}
	_, err := Select(all, junk, nil)
	if err == nil {
		t.Fatal("no error for unknown IDs")
	}
	msg := err.Error()
	if len(msg) > 2048 {
		t.Errorf("error is %d bytes", len(msg))
	}
	for _, want := range []string{" and 99990 more", "valid IDs: 42 checks under the prefixes bgp (7), cloud (7), dns (7), k8s (7), route (7), vnode (7); `vnodediag checks` lists them"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// TestOptionalSources: optional sources are gathered and read when present;
// a check with only optional sources runs on any one of them.
func TestOptionalSources(t *testing.T) {
	kube := &fakeProvider{name: SourceKube, value: "snapshot"}
	broken := &fakeProvider{name: SourceBGP, err: errors.New("dial 10.0.0.1:179: connection refused")}
	unconf := Unconfigured(SourceDNS, "no dns section")
	unconf2 := Unconfigured(SourceCloud, "no cloud section")
	saw := func(names ...SourceName) func(context.Context, *Inputs) []*pb.Result {
		return func(_ context.Context, in *Inputs) []*pb.Result {
			var got []string
			for _, n := range names {
				got = append(got, fmt.Sprintf("%s=%v", n, NewKey[any](n).Get(in)))
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

// dependent is a source that reads another one.
type dependent struct {
	uses SourceName
}

func (d dependent) Name() SourceName   { return SourceCloud }
func (d dependent) Uses() []SourceName { return []SourceName{d.uses} }
func (d dependent) Gather(context.Context) (any, error) {
	return nil, errors.New("Gather of a Dependent called")
}
func (d dependent) GatherFrom(_ context.Context, in *Inputs) (any, error) {
	v := NewKey[string](d.uses)
	if !v.Gathered(in) {
		return nil, fmt.Errorf("%s not gathered", d.uses)
	}
	return "cloud saw " + v.Get(in), nil
}

// TestDependentSources: a source that uses another is gathered after it,
// with its value, even when no check needs the used source itself; and a
// used source that failed reaches the dependent as absent.
func TestDependentSources(t *testing.T) {
	kube := &fakeProvider{name: SourceKube, value: "nodes", delay: 50 * time.Millisecond}
	seeCloud := check("c.cloud", []SourceName{SourceCloud}, func(_ context.Context, in *Inputs) []*pb.Result {
		return []*pb.Result{Pass("%s", NewKey[string](SourceCloud).Get(in))}
	})
	rep := (&Runner{Providers: []Provider{kube, dependent{uses: SourceKube}}}).Run(context.Background(), []Check{seeCloud})
	if got := rep.Results[0]; got.Status != pb.Status_PASS || got.Summary != "cloud saw nodes" {
		t.Errorf("got %s %q", got.Status, got.Summary)
	}
	if kube.calls.Load() != 1 || len(rep.Sources) != 2 {
		t.Errorf("kube gathered %d times, sources %v", kube.calls.Load(), rep.Sources)
	}
	broken := &fakeProvider{name: SourceKube, err: errors.New("refused")}
	rep = (&Runner{Providers: []Provider{broken, dependent{uses: SourceKube}}}).Run(context.Background(), []Check{seeCloud})
	if got := rep.Results[0]; got.Status != pb.Status_ERROR || !strings.Contains(got.Summary, "kube not gathered") {
		t.Errorf("got %s %q", got.Status, got.Summary)
	}
}
