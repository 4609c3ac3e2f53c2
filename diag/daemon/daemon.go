package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Observer is told what the daemon does, for metrics. Its methods are
// called from the daemon's goroutines, must be quick and must not call
// back into the daemon. Reports passed are shared: read, never modify.
type Observer interface {
	// RunDone: a periodic run finished.
	RunDone(rep *pb.Report, d time.Duration)
	// SourceRefreshed: a source was regathered (or, for a source that keeps
	// its own state, its health asked); err nil is success.
	SourceRefreshed(name diag.SourceName, err error, d time.Duration)
	// HealthChanged: a source's health changed; reason says why when it
	// is not serving.
	HealthChanged(name diag.SourceName, serving bool, reason string)
	// Reloaded: a configuration reload was applied (err nil) or rejected.
	Reloaded(err error)
}

// HealthServicePrefix is the prefix of the grpc.health.v1 service names
// of the sources: "vnodediag.source.kube".
const HealthServicePrefix = "vnodediag.source."

// Options build a Daemon.
type Options struct {
	Config Config
	// Checks is the whole catalog; the periodic runs select from it.
	Checks []diag.Check
	// Runner carries the providers and the engine's limits; the daemon
	// runs its own Runner with the same limits over the warm sources. The
	// daemon never closes the providers: their owner does, after Stop.
	Runner *diag.Runner
	// Only and Skip are the selection when the daemon section names none
	// (the runner section's).
	Only, Skip []string
	Log        *slog.Logger
	Observer   Observer
	// AfterFirstRun, when set, is called once, after the first periodic
	// run is recorded: what warming up cost (the watch cache's initial
	// lists) is garbage by then, and serve returns it to the OS
	// (debug.FreeOSMemory) instead of holding the sync's peak until the
	// runtime's scavenger gets to it.
	AfterFirstRun func()
}

// generation is what a configuration makes: replaced whole by a reload.
type generation struct {
	cfg    Config
	runner *diag.Runner
	warm   map[diag.SourceName]*warm
	sel    []diag.Check
	needed map[diag.SourceName]bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Daemon is the daemon's state. Start it once, Stop it once.
type Daemon struct {
	log    *slog.Logger
	obs    Observer
	checks []diag.Check
	health *health.Server

	ctx    context.Context
	cancel context.CancelFunc
	// calls ends the fresh runs, which outlive the callers that joined
	// them: Abort cancels it.
	calls      context.Context
	abortCalls context.CancelFunc
	flightWG   sync.WaitGroup
	done       chan struct{} // closed by Stop
	loopWG     sync.WaitGroup
	kick       chan struct{}

	mu       sync.Mutex
	gen      *generation
	latest   *pb.LatestReport // built once per run; shared read-only by every caller
	history  []kept           // oldest first
	states   map[string]*pb.CheckState
	baseline bool // a periodic run has set the states
	watchers map[*watcher]struct{}
	fails    map[diag.SourceName]int
	reasons  map[diag.SourceName]string
	flights  map[string]*flight
	lastRun  time.Duration // duration of the newest fresh run
	runs     int           // Diagnose calls running

	reloads, reloadFailures atomic.Int64

	afterFirst func() // Options.AfterFirstRun; the periodic loop's alone
}

// New builds a daemon; nothing runs before Start.
func New(o Options) (*Daemon, error) {
	d := &Daemon{
		log: o.Log, obs: o.Observer, checks: o.Checks, afterFirst: o.AfterFirstRun,
		health:   health.NewServer(),
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		states:   map[string]*pb.CheckState{},
		watchers: map[*watcher]struct{}{},
		fails:    map[diag.SourceName]int{},
		reasons:  map[diag.SourceName]string{},
		flights:  map[string]*flight{},
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.calls, d.abortCalls = context.WithCancel(context.Background())
	g, err := d.newGeneration(o, nil)
	if err != nil {
		d.cancel()
		d.abortCalls()
		return nil, err
	}
	d.gen = g
	d.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	d.health.SetServingStatus(pb.DiagnosticsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	for name := range g.warm {
		d.health.SetServingStatus(HealthServicePrefix+string(name), healthpb.HealthCheckResponse_SERVING)
	}
	return d, nil
}

// Health is the grpc.health.v1 server the daemon keeps: "" (overall), the
// DiagnosticsService and HealthServicePrefix+source.
func (d *Daemon) Health() *health.Server { return d.health }

// Config is the daemon section in force, with its defaults.
func (d *Daemon) Config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen.cfg
}

// newGeneration wraps the providers of o.Runner, reusing the warm state of
// a provider old already holds (a reload that leaves a section alone keeps
// its source warm).
func (d *Daemon) newGeneration(o Options, old *generation) (*generation, error) {
	if o.Runner == nil {
		return nil, fmt.Errorf("daemon: no runner")
	}
	cfg := o.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	only, skip := cfg.Only, cfg.Skip
	if len(only) == 0 && len(skip) == 0 {
		only, skip = o.Only, o.Skip
	}
	sel, err := diag.Select(o.Checks, only, skip)
	if err != nil {
		return nil, fmt.Errorf("daemon: periodic selection: %w", err)
	}
	timeout := o.Runner.SourceTimeout
	if timeout <= 0 {
		timeout = diag.DefaultSourceTimeout
	}
	g := &generation{cfg: cfg, sel: sel, warm: map[diag.SourceName]*warm{}, needed: map[diag.SourceName]bool{}}
	r := &diag.Runner{
		CheckTimeout: o.Runner.CheckTimeout, SourceTimeout: o.Runner.SourceTimeout, Concurrency: o.Runner.Concurrency,
		MaxResultsPerCheck: o.Runner.MaxResultsPerCheck, MaxReportBytes: o.Runner.MaxReportBytes, Identify: o.Runner.Identify,
		// One memo per generation: its runner's limits are part of what
		// the results depend on. A run reuses the results of the checks
		// whose sources did not change since the last run of each.
		Memo: diag.NewMemo(),
	}
	for _, p := range o.Runner.Providers {
		if p == nil || p.Name() == SectionKey {
			continue
		}
		name := p.Name()
		var wp diag.Provider
		if old != nil {
			if ow := old.warm[name]; ow != nil && sameProvider(ow.p, p) {
				// Same provider: keep its value, take the new intervals.
				nw := &warm{p: p, interval: cfg.refreshOf(name), timeout: timeout, onDone: d.refreshed}
				ow.mu.Lock()
				nw.have, nw.value, nw.err, nw.at = ow.have, ow.value, ow.err, ow.at
				ow.mu.Unlock()
				wp = nw
				if dep, ok := p.(diag.Dependent); ok {
					wp = warmDependent{warm: nw, d: dep}
				}
			}
		}
		if wp == nil {
			wp = wrap(p, cfg.refreshOf(name), timeout, d.refreshed)
		}
		g.warm[name] = warmOf(wp)
		r.Providers = append(r.Providers, wp)
	}
	for k := range cfg.Refresh {
		if g.warm[diag.SourceName(k)] == nil {
			names := make([]string, 0, len(g.warm))
			for n := range g.warm {
				names = append(names, string(n))
			}
			sort.Strings(names)
			return nil, fmt.Errorf("daemon: refresh.%s: no such source (sources: %s)", k, strings.Join(names, ", "))
		}
	}
	for _, c := range sel {
		for _, n := range slices.Concat(c.Needs, c.Optional) {
			g.needed[n] = true
		}
	}
	for _, p := range r.Providers {
		if dep, ok := p.(diag.Dependent); ok && g.needed[p.Name()] {
			for _, u := range dep.Uses() {
				g.needed[u] = true
			}
		}
	}
	g.runner = r
	return g, nil
}

// warmProvider is the runner's (wrapped) provider of name, nil if none.
func (g *generation) warmProvider(name diag.SourceName) diag.Provider {
	for _, p := range g.runner.Providers {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// sameProvider reports whether a and b are the same provider value.
func sameProvider(a, b diag.Provider) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// Start starts the refresh loops and the periodic runs.
func (d *Daemon) Start() {
	d.mu.Lock()
	d.startGeneration(d.gen)
	d.mu.Unlock()
	d.loopWG.Add(1)
	go func() {
		defer d.loopWG.Done()
		d.periodic()
	}()
}

// startGeneration starts g's refresh loops; d.mu is held.
func (d *Daemon) startGeneration(g *generation) {
	ctx, cancel := context.WithCancel(d.ctx)
	g.cancel = cancel
	for _, w := range g.warm {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			w.loop(ctx)
		}()
	}
}

// Reload replaces the configuration: the daemon section, the selection
// and the providers (o.Runner). On error nothing changes. Providers of the
// old runner that o.Runner does not hold any more are the caller's to
// close, after Reload returns.
func (d *Daemon) Reload(o Options) error {
	d.mu.Lock()
	old := d.gen
	d.mu.Unlock()
	g, err := d.newGeneration(o, old)
	if err != nil {
		d.NoteReload(err)
		return err
	}
	if old.cancel != nil {
		old.cancel()
	}
	old.wg.Wait()
	d.mu.Lock()
	d.gen = g
	for name := range old.warm {
		if g.warm[name] == nil {
			d.health.SetServingStatus(HealthServicePrefix+string(name), healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
			delete(d.fails, name)
			delete(d.reasons, name)
		}
	}
	for name := range g.warm {
		if old.warm[name] == nil {
			d.health.SetServingStatus(HealthServicePrefix+string(name), healthpb.HealthCheckResponse_SERVING)
		}
	}
	d.updateOverallLocked()
	d.startGeneration(g)
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	d.NoteReload(nil)
	return nil
}

// NoteReload counts and logs a reload, applied (err nil) or rejected; the
// caller reports a configuration it could not even load this way.
func (d *Daemon) NoteReload(err error) {
	if err != nil {
		d.reloadFailures.Add(1)
		d.log.Error("configuration reload rejected; the old configuration stays in force", "error", err)
	} else {
		d.reloads.Add(1)
		d.log.Warn("configuration reloaded")
	}
	if d.obs != nil {
		d.obs.Reloaded(err)
	}
}

// Reloads counts the reloads applied and rejected.
func (d *Daemon) Reloads() (applied, rejected int64) {
	return d.reloads.Load(), d.reloadFailures.Load()
}

// Stop ends the periodic runs, the refresh loops and every watch stream
// (they end with UNAVAILABLE), and sets every health status NOT_SERVING.
// Calls running go on until they finish. Stop waits for the loops.
func (d *Daemon) Stop() {
	d.mu.Lock()
	select {
	case <-d.done:
		d.mu.Unlock()
		return
	default:
	}
	close(d.done)
	g := d.gen
	d.mu.Unlock()
	d.health.Shutdown()
	d.cancel()
	g.wg.Wait()
	d.loopWG.Wait()
}

// Abort cancels the fresh runs still running (after Stop, when the grace
// period is over) and waits for them to return.
func (d *Daemon) Abort() {
	d.abortCalls()
	d.flightWG.Wait()
}

// refreshed counts a source's refresh for its health.
func (d *Daemon) refreshed(name diag.SourceName, err error, dur time.Duration) {
	if d.obs != nil {
		d.obs.SourceRefreshed(name, err, dur)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	threshold := d.gen.cfg.FailureThreshold
	was := d.fails[name] < threshold
	if err == nil || notConfigured(err) {
		d.fails[name] = 0
		delete(d.reasons, name)
	} else {
		d.fails[name]++
		d.reasons[name] = diag.RedactURLs(err.Error())
		d.log.Warn("source refresh failed", "source", name, "consecutive", d.fails[name], "error", d.reasons[name])
	}
	now := d.fails[name] < threshold
	if was == now || d.gen.warm[name] == nil {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if !now {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		d.log.Error("source not serving", "source", name, "failedRefreshes", d.fails[name], "reason", d.reasons[name])
	} else {
		d.log.Warn("source serving again", "source", name)
	}
	select {
	case <-d.done:
		return
	default:
	}
	d.health.SetServingStatus(HealthServicePrefix+string(name), st)
	d.updateOverallLocked()
	if d.obs != nil {
		d.obs.HealthChanged(name, now, d.reasons[name])
	}
}

// updateOverallLocked sets "" from the sources the periodic selection needs.
func (d *Daemon) updateOverallLocked() {
	select {
	case <-d.done:
		return
	default:
	}
	st := healthpb.HealthCheckResponse_SERVING
	for name := range d.gen.needed {
		if d.gen.warm[name] != nil && d.fails[name] >= d.gen.cfg.FailureThreshold {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
	}
	d.health.SetServingStatus("", st)
}

// SourceHealth is one source's health as the daemon sees it.
type SourceHealth struct {
	Name diag.SourceName
	// Serving is false after FailureThreshold consecutive failed refreshes.
	Serving bool
	// ConsecutiveFailures and Reason (the last failure's cause).
	ConsecutiveFailures int
	Reason              string
}

// Sources returns the health of every source, sorted by name.
func (d *Daemon) Sources() []SourceHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []SourceHealth
	for name := range d.gen.warm {
		out = append(out, SourceHealth{Name: name, Serving: d.fails[name] < d.gen.cfg.FailureThreshold,
			ConsecutiveFailures: d.fails[name], Reason: d.reasons[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// periodic runs the selection at once, then every interval, until Stop;
// a reload starts the next run at once.
func (d *Daemon) periodic() {
	for {
		d.mu.Lock()
		g := d.gen
		d.mu.Unlock()
		start := time.Now()
		rep := g.runner.Run(d.ctx, g.sel)
		if d.ctx.Err() != nil {
			return
		}
		d.record(rep, time.Since(start))
		if f := d.afterFirst; f != nil {
			d.afterFirst = nil
			f()
		}
		t := time.NewTimer(max(g.cfg.Interval.D()-time.Since(start), 0))
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-d.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunNow starts a periodic run at once (after the one running, if any).
func (d *Daemon) RunNow() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *Daemon) record(rep *pb.Report, dur time.Duration) {
	// Protobuf strings must be UTF-8, or the report cannot be sent.
	diag.ValidReport(rep)
	now := time.Now()
	d.mu.Lock()
	cfg := d.gen.cfg
	nsel := len(d.gen.sel)
	if k, err := keep(rep); err != nil {
		d.log.Error("periodic run not kept in the history", "run", rep.GetRunId(), "err", err)
	} else {
		d.history = append(d.history, k)
	}
	cut := 0
	for cut < len(d.history) && (len(d.history)-cut > cfg.HistorySize ||
		now.Sub(d.history[cut].header.GetEndTime().AsTime()) > cfg.HistoryWindow.D()) && cut < len(d.history)-1 {
		cut++
	}
	if cut > 0 {
		d.history = slices.Clone(d.history[cut:])
	}
	trans := d.transitionsLocked(rep, now)
	d.latest = &pb.LatestReport{Report: rep, States: d.statesLocked(nil)}
	ws := make([]*watcher, 0, len(d.watchers))
	for w := range d.watchers {
		ws = append(ws, w)
	}
	d.mu.Unlock()

	for _, t := range trans {
		for _, w := range ws {
			if w.wants(t.CheckId) {
				w.offer(&pb.WatchEvent{Event: &pb.WatchEvent_Transition{Transition: t}})
			}
		}
	}
	run := &pb.WatchEvent{Event: &pb.WatchEvent_Run{Run: &pb.RunDone{RunId: rep.GetRunId(), Summary: rep.GetSummary(), EndTime: rep.GetEndTime()}}}
	for _, w := range ws {
		w.offer(run)
	}
	sm := rep.GetSummary()
	d.log.Info("periodic run", "run", rep.GetRunId(), "checks", nsel, "pass", sm.GetPass(), "warn", sm.GetWarn(),
		"fail", sm.GetFail(), "error", sm.GetError(), "skip", sm.GetSkip(), "transitions", len(trans), "duration", dur, "goroutines", runtime.NumGoroutine())
	if d.obs != nil {
		d.obs.RunDone(rep, dur)
	}
}

// stateKey names a (check, object) pair.
func stateKey(checkID string, o *pb.Object) string {
	if o == nil {
		return checkID
	}
	return checkID + "\x00" + o.GetKind() + "\x00" + o.GetNamespace() + "\x00" + o.GetName()
}

// transitionsLocked replaces the states with rep's and returns what
// changed, sorted by check and object. The first run sets the baseline and
// changes nothing.
func (d *Daemon) transitionsLocked(rep *pb.Report, now time.Time) []*pb.Transition {
	ts := timestamppb.New(now)
	next := map[string]*pb.CheckState{}
	for _, res := range rep.GetResults() {
		var obj *pb.Object
		if len(res.GetObjects()) > 0 {
			obj = res.GetObjects()[0]
		}
		k := stateKey(res.GetCheckId(), obj)
		st := next[k]
		if st == nil {
			next[k] = &pb.CheckState{CheckId: res.GetCheckId(), Object: obj, Status: res.GetStatus(), Summary: res.GetSummary()}
			continue
		}
		if diag.Severity(res.GetStatus()) > diag.Severity(st.Status) {
			st.Status, st.Summary = res.GetStatus(), res.GetSummary()
		}
	}
	var out []*pb.Transition
	for k, st := range next {
		old := d.states[k]
		switch {
		case old == nil:
			st.Since = ts
			if d.baseline {
				out = append(out, &pb.Transition{CheckId: st.CheckId, Object: st.Object, NewStatus: st.Status, Time: ts, RunId: rep.GetRunId(), Summary: st.Summary})
			}
		case old.Status != st.Status:
			st.Since = ts
			out = append(out, &pb.Transition{CheckId: st.CheckId, Object: st.Object, OldStatus: old.Status, NewStatus: st.Status, Time: ts, RunId: rep.GetRunId(), Summary: st.Summary})
		default:
			st.Since = old.Since
		}
	}
	if d.baseline {
		for k, old := range d.states {
			if next[k] == nil {
				out = append(out, &pb.Transition{CheckId: old.CheckId, Object: old.Object, OldStatus: old.Status, Time: ts, RunId: rep.GetRunId(), Summary: "no longer reported"})
			}
		}
	}
	d.states = next
	d.baseline = true
	sort.Slice(out, func(i, j int) bool {
		return stateKey(out[i].CheckId, out[i].Object) < stateKey(out[j].CheckId, out[j].Object)
	})
	return out
}

// statesLocked returns the states sorted, those of the checks want takes.
func (d *Daemon) statesLocked(want func(string) bool) []*pb.CheckState {
	out := make([]*pb.CheckState, 0, len(d.states))
	for _, st := range d.states {
		if want == nil || want(st.CheckId) {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return stateKey(out[i].CheckId, out[i].Object) < stateKey(out[j].CheckId, out[j].Object)
	})
	return out
}

// Latest returns the newest periodic report and the states; UNAVAILABLE
// before the first run finished.
func (d *Daemon) Latest() (*pb.LatestReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest == nil {
		return nil, status.Error(codes.Unavailable, "the first periodic run has not finished yet; retry in a few seconds")
	}
	return d.latest, nil
}

// History returns up to limit kept runs (0: all) within the history
// window, newest first; without results unless asked (then each is
// unpacked, a copy of its own).
func (d *Daemon) History(limit int, results bool) []*pb.Report {
	d.mu.Lock()
	h := slices.Clone(d.history)
	window := d.gen.cfg.HistoryWindow.D()
	d.mu.Unlock()
	slices.Reverse(h)
	// Runs that aged past the window since the last was recorded are not
	// listed either; the newest always is.
	now := time.Now()
	for i := 1; i < len(h); i++ {
		if now.Sub(h[i].header.GetEndTime().AsTime()) > window {
			h = h[:i]
			break
		}
	}
	if limit > 0 && len(h) > limit {
		h = h[:limit]
	}
	out := make([]*pb.Report, len(h))
	for i, k := range h {
		out[i] = k.header
		if !results {
			continue
		}
		rep, err := k.report()
		if err != nil {
			d.log.Error("kept run does not unpack; sent without results", "run", k.header.GetRunId(), "err", err)
			continue
		}
		out[i] = rep
	}
	return out
}

// busy is RESOURCE_EXHAUSTED with a retry hint.
func busy(retry time.Duration, format string, args ...any) error {
	retry = max(retry.Round(time.Second), time.Second)
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(format, args...)+fmt.Sprintf("; retry in %s", retry))
	if ds, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)}); err == nil {
		st = ds
	}
	return st.Err()
}

// CallTimeout is the longest deadline a Diagnose call gets.
func (d *Daemon) CallTimeout() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen.cfg.MaxCallTimeout.D()
}

// Diagnose runs sel over the warm sources (fresh: regathers the sources
// sel needs first; calls of the same selection share that). Progress goes
// to ctx's progress function. Past MaxRuns running calls, or MaxFreshRuns
// selections regathering, it refuses with RESOURCE_EXHAUSTED.
func (d *Daemon) Diagnose(ctx context.Context, sel []diag.Check, fresh bool) (*pb.Report, error) {
	d.mu.Lock()
	g := d.gen
	if d.runs >= g.cfg.MaxRuns {
		d.mu.Unlock()
		return nil, busy(time.Second, "%d diagnose calls are running, the daemon's bound (daemon.maxRuns)", g.cfg.MaxRuns)
	}
	d.runs++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.runs--
		d.mu.Unlock()
	}()
	if !fresh {
		return g.runner.Run(ctx, sel), nil
	}
	return d.fresh(ctx, g, sel)
}

// checkMargin is what a fresh run keeps of its deadline, at most, for
// the checks after the regather (a tenth of it when shorter).
const checkMargin = 500 * time.Millisecond

// flight is one fresh run that calls of the same selection share.
type flight struct {
	done chan struct{}
	rep  *pb.Report
	mu   sync.Mutex
	subs []func(diag.Progress)
}

func (f *flight) progress(ev diag.Progress) {
	f.mu.Lock()
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

func (f *flight) subscribe(ctx context.Context) {
	fn := func(ev diag.Progress) { diag.ReportProgress(ctx, ev) }
	if diag.Reporting(ctx) {
		f.mu.Lock()
		f.subs = append(f.subs, fn)
		f.mu.Unlock()
	}
}

func selectionKey(sel []diag.Check) string {
	ids := make([]string, len(sel))
	for i, c := range sel {
		ids[i] = c.ID
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

func (d *Daemon) fresh(ctx context.Context, g *generation, sel []diag.Check) (*pb.Report, error) {
	key := selectionKey(sel)
	d.mu.Lock()
	f := d.flights[key]
	if f == nil {
		if len(d.flights) >= g.cfg.MaxFreshRuns {
			retry := d.lastRun
			d.mu.Unlock()
			return nil, busy(retry, "%d fresh diagnose runs of other selections are regathering, the daemon's bound (daemon.maxFreshRuns)", g.cfg.MaxFreshRuns)
		}
		f = &flight{done: make(chan struct{})}
		d.flights[key] = f
		f.subscribe(ctx)
		// The run belongs to every caller that joins it: the first one
		// leaving does not cancel it; its deadline still bounds it.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		if dl, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
		}
		stopAbort := context.AfterFunc(d.calls, cancel)
		fctx = diag.WithProgress(fctx, f.progress)
		d.flightWG.Add(1)
		d.mu.Unlock()
		go func() {
			defer d.flightWG.Done()
			defer stopAbort()
			defer cancel()
			start := time.Now()
			// The regather ends a little before the run's deadline, so
			// that the checks still run on what it got (a source cut
			// short is ERROR) and the report reaches its callers: cut
			// together, the callers would see only their deadline.
			rctx, rcancel := fctx, context.CancelFunc(func() {})
			if dl, ok := fctx.Deadline(); ok {
				rctx, rcancel = context.WithDeadline(fctx, dl.Add(-min(checkMargin, time.Until(dl)/10)))
			}
			d.refreshFor(rctx, g, sel)
			rcancel()
			f.rep = g.runner.Run(fctx, sel)
			d.mu.Lock()
			delete(d.flights, key)
			d.lastRun = time.Since(start)
			d.mu.Unlock()
			close(f.done)
		}()
	} else {
		f.subscribe(ctx)
		d.mu.Unlock()
	}
	select {
	case <-f.done:
		return f.rep, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// refreshFor regathers, concurrently, the sources sel needs.
func (d *Daemon) refreshFor(ctx context.Context, g *generation, sel []diag.Check) {
	needed := map[diag.SourceName]bool{}
	for _, c := range sel {
		for _, n := range slices.Concat(c.Needs, c.Optional) {
			needed[n] = true
			if dep, ok := g.warmProvider(n).(diag.Dependent); ok {
				for _, u := range dep.Uses() {
					needed[u] = true
				}
			}
		}
	}
	var wg sync.WaitGroup
	for name := range needed {
		w := g.warm[name]
		if w == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			diag.ReportProgress(ctx, diag.Progress{Kind: diag.SourceUpdate, Source: name, Message: "regathering"})
			_ = w.refresh(ctx)
		}()
	}
	wg.Wait()
}
