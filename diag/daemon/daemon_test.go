package daemon_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lamp is a source whose value the test sets: a map of object -> ok.
type lamp struct {
	mu      sync.Mutex
	state   map[string]bool
	err     error
	gathers atomic.Int64
	gate    chan struct{} // when set, Gather waits for it
}

var lampKey = diag.NewKey[map[string]bool]("lamp")

func (l *lamp) Name() diag.SourceName { return "lamp" }

func (l *lamp) Gather(ctx context.Context) (any, error) {
	l.gathers.Add(1)
	l.mu.Lock()
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	out := map[string]bool{}
	for k, v := range l.state {
		out[k] = v
	}
	return out, nil
}

// hold makes every gather from now on wait until the returned channel is
// closed.
func (l *lamp) hold() chan struct{} {
	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	return gate
}

func (l *lamp) set(name string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state[name] = ok
}

func lampChecks() []diag.Check {
	return []diag.Check{
		{ID: "lamp.lit", Title: "every lamp is lit", Needs: diag.Needs(lampKey), Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
			var out []*pb.Result
			for name, ok := range lampKey.Get(in) {
				r := diag.Pass("lamp %s lit", name)
				if !ok {
					r = diag.Fail("lamp %s dark", name)
				}
				r.Objects = []*pb.Object{diag.Obj("Lamp", "", name)}
				out = append(out, r)
			}
			return out
		}},
		{ID: "lamp.count", Title: "lamps counted", Needs: diag.Needs(lampKey), Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
			return []*pb.Result{diag.Pass("%d lamps", len(lampKey.Get(in)))}
		}},
	}
}

func newDaemon(t *testing.T, l *lamp, cfg daemon.Config) *daemon.Daemon {
	t.Helper()
	return startDaemon(t, daemon.Options{Config: cfg, Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}})
}

// startDaemon starts a daemon of o and stops it when the test ends.
func startDaemon(t *testing.T, o daemon.Options) *daemon.Daemon {
	t.Helper()
	d, err := daemon.New(o)
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Stop(); d.Abort() })
	return d
}

// waitFirstRun waits (at most 10 s) for d's first periodic run to be
// recorded; until then Latest must say UNAVAILABLE.
func waitFirstRun(t *testing.T, d *daemon.Daemon) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := d.Latest(); err == nil {
			return
		} else if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("Latest before the first run: %v", err)
		}
	}
}

// watch collects a watcher's events on a channel until the test ends.
func watch(t *testing.T, d *daemon.Daemon, only []string, current bool) <-chan *pb.WatchEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *pb.WatchEvent, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.Watch(ctx, only, current, func(ev *pb.WatchEvent) error {
			select {
			case ch <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); d.Watchers() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("watcher did not register")
		}
	}
	return ch
}

// next returns the next event that is not a RunDone, or the RunDone when
// wantRun.
func next(t *testing.T, ch <-chan *pb.WatchEvent) *pb.WatchEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return nil
}

func waitRun(t *testing.T, ch <-chan *pb.WatchEvent) []*pb.Transition {
	t.Helper()
	var out []*pb.Transition
	for {
		ev := next(t, ch)
		if ev.GetRun() != nil {
			return out
		}
		if tr := ev.GetTransition(); tr != nil {
			out = append(out, tr)
		}
	}
}

// Periodic runs: the first sets the baseline; a lamp going dark is one
// transition PASS -> FAIL for that object only; a new lamp is "first seen"
// and a lamp taken away "no longer reported"; the latest report, the states
// with their since, and the history (newest first, bounded) follow.
func TestPeriodicRunsAndTransitions(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true, "b": true}}
	var afterFirst atomic.Int32
	d := startDaemon(t, daemon.Options{Config: daemon.Config{Interval: diag.Duration(time.Hour), HistorySize: 3, Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Hour)}},
		Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}, AfterFirstRun: func() { afterFirst.Add(1) }})
	waitFirstRun(t, d)
	ch := watch(t, d, []string{"lamp.lit"}, true)
	var current []string
	for range 2 {
		c := next(t, ch).GetCurrent()
		current = append(current, c.GetObject().GetName()+"="+c.GetStatus().String())
	}
	if strings.Join(current, ",") != "a=PASS,b=PASS" {
		t.Errorf("current %v", current)
	}
	first, _ := d.Latest()
	since := first.GetStates()[0].GetSince().AsTime()

	l.set("b", false)
	if err := refresh(d); err != nil {
		t.Fatal(err)
	}
	d.RunNow()
	tr := waitRun(t, ch)
	if len(tr) != 1 || tr[0].GetObject().GetName() != "b" || tr[0].GetOldStatus() != pb.Status_PASS || tr[0].GetNewStatus() != pb.Status_FAIL ||
		tr[0].GetSummary() != "lamp b dark" {
		t.Fatalf("transitions %v", tr)
	}

	l.mu.Lock()
	delete(l.state, "a")
	l.state["c"] = true
	l.mu.Unlock()
	_ = refresh(d)
	d.RunNow()
	tr = waitRun(t, ch)
	if len(tr) != 2 || tr[0].GetObject().GetName() != "a" || tr[0].GetNewStatus() != pb.Status_STATUS_UNSPECIFIED ||
		tr[1].GetObject().GetName() != "c" || tr[1].GetOldStatus() != pb.Status_STATUS_UNSPECIFIED || tr[1].GetNewStatus() != pb.Status_PASS {
		t.Fatalf("transitions %v", tr)
	}
	d.RunNow()
	if tr := waitRun(t, ch); len(tr) != 0 {
		t.Errorf("a run without change: %v", tr)
	}

	latest, err := d.Latest()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range latest.GetStates() {
		if st.GetCheckId() == "lamp.count" && !st.GetSince().AsTime().Equal(since) {
			t.Errorf("lamp.count never changed, but its since moved from %s to %s", since, st.GetSince().AsTime())
		}
	}
	h := d.History(0, false)
	if len(h) != 3 || h[0].GetRunId() != latest.GetReport().GetRunId() || len(h[0].GetResults()) != 0 || h[0].GetSummary() == nil {
		t.Errorf("history: %d runs, newest %s (latest %s)", len(h), h[0].GetRunId(), latest.GetReport().GetRunId())
	}
	if h := d.History(1, true); len(h) != 1 || len(h[0].GetResults()) == 0 {
		t.Errorf("history with results: %v", h)
	}
	// Four runs: a call after every run would have counted three or more
	// by now (runs follow one another).
	if n := afterFirst.Load(); n != 1 {
		t.Errorf("AfterFirstRun called %d times in four runs, want once", n)
	}
}

// refresh makes the daemon regather the lamp: a fresh run of it.
func refresh(d *daemon.Daemon) error {
	_, err := d.Diagnose(context.Background(), lampChecks()[:1], true)
	return err
}

// Fresh runs of one selection share one gather; a different selection past
// maxFreshRuns is RESOURCE_EXHAUSTED with a retry hint, as are calls past
// maxRuns.
func TestFreshSingleFlight(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), MaxFreshRuns: 1, MaxRuns: 6})
	if _, err := d.Diagnose(context.Background(), lampChecks(), false); err != nil {
		t.Fatal(err)
	}
	gate := l.hold()
	before := l.gathers.Load()

	const callers = 5
	var wg sync.WaitGroup
	reps := make([]*pb.Report, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			reps[i], errs[i] = d.Diagnose(ctx, lampChecks(), true)
		}()
	}
	for deadline := time.Now().Add(5 * time.Second); l.gathers.Load() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the fresh run did not start")
		}
	}
	time.Sleep(100 * time.Millisecond) // let every caller join (or be refused)

	_, err := d.Diagnose(context.Background(), lampChecks()[:1], true)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "daemon.maxFreshRuns") {
		t.Errorf("another selection while one regathers: %v", err)
	}
	hint := false
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() >= time.Second {
			hint = true
		}
	}
	if !hint {
		t.Errorf("no retry hint in %v", st.Details())
	}
	// maxRuns 6: the five callers and one more hold every slot.
	close(gate)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || reps[i].GetSummary().GetPass() != 2 {
			t.Errorf("caller %d: %v %v", i, reps[i].GetSummary(), errs[i])
		}
	}
	if n := l.gathers.Load() - before; n != 1 {
		t.Errorf("%d concurrent fresh calls gathered %d times, want once", callers, n)
	}
	if reps[0].GetRunId() != reps[callers-1].GetRunId() {
		t.Errorf("callers got different runs: %s, %s", reps[0].GetRunId(), reps[callers-1].GetRunId())
	}
}

func TestMaxRuns(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), MaxRuns: 1})
	if _, err := d.Diagnose(context.Background(), lampChecks(), false); err != nil {
		t.Fatal(err)
	}
	gate := l.hold()
	before := l.gathers.Load()
	done := make(chan error, 1)
	go func() {
		_, err := d.Diagnose(context.Background(), lampChecks(), true)
		done <- err
	}()
	for l.gathers.Load() == before {
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := d.Diagnose(context.Background(), lampChecks(), false)
		if status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "daemon.maxRuns") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a call past maxRuns: %v", err)
		}
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A source failing its last failureThreshold refreshes is NOT_SERVING, and
// so is "" since the periodic selection needs it; it serves again after
// one good refresh. The reason is kept.
func TestHealthFollowsRefreshes(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}, err: errors.New("lamp controller unreachable")}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), FailureThreshold: 2, Refresh: map[string]diag.Duration{"lamp": diag.Duration(time.Second)}})
	hs := d.Health()
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := hs.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	waitFor := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); check("vnodediag.source.lamp") != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("lamp health is %s, want %s; %+v", check("vnodediag.source.lamp"), want, d.Sources())
			}
		}
	}
	waitFor(healthpb.HealthCheckResponse_NOT_SERVING)
	if s := d.Sources()[0]; s.ConsecutiveFailures < 2 || s.Reason != "lamp controller unreachable" {
		t.Errorf("sources %+v", s)
	}
	if check("") != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Error(`"" serves while a needed source does not`)
	}
	l.mu.Lock()
	l.err = nil
	l.mu.Unlock()
	waitFor(healthpb.HealthCheckResponse_SERVING)
	if check("") != healthpb.HealthCheckResponse_SERVING {
		t.Error(`"" does not serve again`)
	}
	d.Stop()
	if check("") != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Error(`"" serves after Stop`)
	}
}

// A watcher that does not read loses events beyond its buffer and is told
// how many before the next one it gets; the runs never wait for it.
func TestSlowWatcherDropped(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour), WatchBuffer: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	got := make(chan *pb.WatchEvent, 100)
	done := make(chan error, 1)
	go func() {
		done <- d.Watch(ctx, nil, false, func(ev *pb.WatchEvent) error {
			<-release
			got <- ev
			return nil
		})
	}()
	for d.Watchers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	for range 5 {
		before := len(d.History(0, false))
		d.RunNow()
		for len(d.History(0, false)) == before || len(d.History(0, false)) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(release)
	var dropped uint64
	for deadline := time.After(10 * time.Second); dropped == 0; {
		select {
		case ev := <-got:
			dropped += ev.GetDropped()
		case <-deadline:
			t.Fatal("the slow watcher was not told it lost events")
		}
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("Watch after its context ended: %v", err)
	}
}

// Stop ends the watch streams with UNAVAILABLE; a reload with a bad
// selection is rejected, counted, and changes nothing.
func TestStopEndsWatchAndBadReload(t *testing.T) {
	l := &lamp{state: map[string]bool{"a": true}}
	d := newDaemon(t, l, daemon.Config{Interval: diag.Duration(time.Hour)})
	err := d.Reload(daemon.Options{Config: daemon.Config{Only: []string{"nope"}}, Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}})
	if err == nil || !strings.Contains(err.Error(), "periodic selection") {
		t.Errorf("bad reload: %v", err)
	}
	err = d.Reload(daemon.Options{Config: daemon.Config{Refresh: map[string]diag.Duration{"lamb": diag.Duration(time.Minute)}}, Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}})
	if err == nil || !strings.Contains(err.Error(), "refresh.lamb: no such source (sources: lamp)") {
		t.Errorf("bad reload: %v", err)
	}
	if err := d.Reload(daemon.Options{Config: daemon.Config{Interval: diag.Duration(2 * time.Hour)}, Checks: lampChecks(), Runner: &diag.Runner{Providers: []diag.Provider{l}}}); err != nil {
		t.Fatal(err)
	}
	if applied, rejected := d.Reloads(); applied != 1 || rejected != 2 || d.Config().Interval.D() != 2*time.Hour {
		t.Errorf("reloads %d applied, %d rejected; interval %s", applied, rejected, d.Config().Interval.D())
	}
	done := make(chan error, 1)
	go func() { done <- d.Watch(context.Background(), nil, false, func(*pb.WatchEvent) error { return nil }) }()
	for d.Watchers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	d.Stop()
	select {
	case err := <-done:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("Watch after Stop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the watch")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  daemon.Config
		want string
	}{
		{daemon.Config{Interval: diag.Duration(time.Millisecond)}, "interval: want at least 1s, got 1ms"},
		{daemon.Config{HistorySize: -1}, "historySize: want 1-10000, got -1"},
		{daemon.Config{Refresh: map[string]diag.Duration{"dns": 0}}, "refresh.dns: want at least 1s, got 0s"},
		{daemon.Config{MaxCallTimeout: diag.Duration(time.Millisecond)}, "maxCallTimeout: want at least 1s, got 1ms"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := (&daemon.Config{}).Validate(); err != nil {
		t.Error(err)
	}
}
