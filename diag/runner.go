package diag

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults of the Runner's limits.
const (
	DefaultCheckTimeout       = 30 * time.Second
	DefaultSourceTimeout      = 60 * time.Second
	DefaultConcurrency        = 8
	DefaultMaxResultsPerCheck = 200
	DefaultMaxReportBytes     = 8 << 20
)

// Runner runs checks against providers. It gathers each needed source once,
// concurrently, then runs the checks concurrently, each under its own deadline.
//
// Go cannot stop a goroutine from outside. When a Gather or a check outlives
// its deadline the runner stops waiting for it, reports it as ERROR and drops
// whatever it returns later; the goroutine itself ends only when the code
// looks at its context, which is why providers and checks must obey ctx and
// heavy loops poll it (see Poll). What such abandoned work may hold is
// bounded: a check goroutine keeps its concurrency slot until it really
// returns, so no more than Concurrency check goroutines of one Runner are ever
// alive, abandoned or not; and a provider whose abandoned Gather has not
// returned is not gathered again until it has.
type Runner struct {
	Providers []Provider
	// CheckTimeout bounds one check's Run (default 30 s).
	CheckTimeout time.Duration
	// SourceTimeout bounds one provider's Gather (default 60 s).
	SourceTimeout time.Duration
	// Concurrency bounds the check goroutines of this Runner alive at once,
	// across concurrent runs and including abandoned ones (default 8).
	Concurrency int
	// MaxResultsPerCheck caps the results one check adds to the report
	// (default 200, negative: no cap). The results past the cap are replaced
	// by one result that counts them by status and names their first
	// objects; the worst statuses are kept, never a PASS instead of a FAIL.
	MaxResultsPerCheck int
	// MaxReportBytes is the report's size budget in protobuf bytes (default
	// 8 MiB, negative: none). Over it, the runner trims evidence and objects
	// of passing results first, then caps results harder, and says so in a
	// result of check ID TrimmedCheckID.
	MaxReportBytes int
	// Identify, when set, fills the report's cluster identity from the
	// gathered inputs.
	Identify func(*Inputs) *pb.ClusterIdentity
	// Memo, when set, keeps each check's results and reuses them in a
	// later run when the sources the check reads did not change (see
	// Memo). The daemon sets one; a one-shot run has nothing to reuse.
	// With a Memo, a report's results are shared: read them, never write.
	Memo *Memo

	mu        sync.Mutex
	slots     chan struct{}       // one per check goroutine alive
	abandoned map[string]int      // check ID -> goroutines abandoned, not yet returned
	changed   chan struct{}       // closed and replaced when abandoned changes
	stuck     map[SourceName]bool // providers whose abandoned Gather has not returned
}

// gatherGrace is how long the runner still waits for a Gather after its
// deadline before abandoning it.
const gatherGrace = 100 * time.Millisecond

type gathered struct {
	value  any
	err    error
	status *pb.SourceStatus
}

// Run gathers the sources the checks need and runs them. It never fails:
// every problem becomes a result. It returns soon after ctx ends: results of
// checks that finished are kept, checks still running or not started become
// ERROR "interrupted: <cause>". The report's strings are valid UTF-8 (as
// protobuf wants them) and carry no credential of a URL.
func (r *Runner) Run(ctx context.Context, checks []Check) *pb.Report {
	r.init()
	start := time.Now()
	rep := &pb.Report{RunId: newRunID(), StartTime: timestamppb.New(start), Version: BuildVersion()}

	g := r.gather(ctx, checks)
	for _, s := range g {
		rep.Sources = append(rep.Sources, s.status)
	}
	sort.Slice(rep.Sources, func(i, j int) bool { return rep.Sources[i].Name < rep.Sources[j].Name })
	in := inputsOf(g)

	refs := &runRefs{release: func() { r.release(g) }}
	refs.hold()
	// Every check's results are finished as they are made; those reused
	// from the memo were finished when stored and are shared, never
	// written again.
	results := make([][]*pb.Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		if ctx.Err() != nil {
			results[i] = finishedOne(c, interrupted(ctx, 0))
			continue
		}
		if res := precondition(c, g); res != nil {
			results[i] = finishedOne(c, res)
			reportCheckDone(ctx, c, results[i])
			continue
		}
		var key []any
		if r.Memo != nil {
			if k, ok := memoKey(c, g); ok {
				key = k
				if res, hit := r.Memo.peek(c.ID, key); hit {
					results[i] = res
					reportCheckDone(ctx, c, results[i])
					continue
				}
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.runMemo(ctx, c, key, in, refs)
			reportCheckDone(ctx, c, results[i])
		}()
	}
	wg.Wait()

	order := make([]int, len(checks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return checks[order[a]].ID < checks[order[b]].ID })
	lists := make([][]*pb.Result, 0, len(checks))
	for _, i := range order {
		lists = append(lists, results[i])
	}
	if r.Identify != nil {
		rep.Cluster = r.Identify(in)
	}
	redactReport(rep)
	for _, st := range rep.Sources {
		ValidUTF8(st)
	}
	if rep.Cluster != nil {
		ValidUTF8(rep.Cluster)
	}
	r.fitReport(rep, lists)
	rep.Summary = Summarize(rep.Results)
	rep.EndTime = timestamppb.Now()
	refs.drop()
	return rep
}

// runMemo runs c, finished, through the memo when key is not nil: the
// results another run is computing under the same key are waited for, not
// computed again, and the results computed here are kept for the runs
// after (unless ctx ended first: a check cut short may have seen less).
func (r *Runner) runMemo(ctx context.Context, c Check, key []any, in *Inputs, refs *runRefs) []*pb.Result {
	var f *flight
	if key != nil {
		// Each wait ends with the results stored (a hit), or with the run
		// that computed them gone without storing them: this run then
		// computes them itself.
		for {
			res, hit, wait, fl := r.Memo.claim(c.ID, key)
			if hit {
				return res
			}
			if wait == nil {
				f = fl
				break
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return finishedOne(c, interrupted(ctx, 0))
			}
		}
	}
	res := r.runOne(ctx, c, in.ReadBy(c), refs)
	finish(c, res)
	if key != nil {
		r.Memo.land(c.ID, key, res, ctx.Err() == nil, f)
	}
	return res
}

// runRefs counts what still reads a run's gathered values: the run itself
// and every check goroutine it started, abandoned or not. The last to let
// go releases them (see Releaser).
type runRefs struct {
	n       atomic.Int32
	release func()
}

func (u *runRefs) hold() { u.n.Add(1) }

func (u *runRefs) drop() {
	if u.n.Add(-1) == 0 {
		u.release()
	}
}

// release releases the gathered values that are Releasers, unless a
// Gather of this Runner is still stuck past its deadline: it may hold a
// value another source gave it (the kube snapshot a dependent source
// reads).
func (r *Runner) release(g map[SourceName]*gathered) {
	r.mu.Lock()
	stuck := len(r.stuck) > 0
	r.mu.Unlock()
	if stuck {
		return
	}
	for _, s := range g {
		if rel, ok := s.value.(Releaser); ok && s.err == nil {
			rel.Release()
		}
	}
}

// finish makes results what a report holds: each names its check and
// reference, has secrets in URLs redacted and only valid UTF-8. A memo
// stores them finished: reused, they are shared and never written again.
func finish(c Check, results []*pb.Result) {
	for _, res := range results {
		res.CheckId = c.ID
		if res.Reference == "" {
			res.Reference = c.Reference
		}
		redactResult(res)
		validResult(res)
	}
}

// finishedOne is res, finished, as c's only result.
func finishedOne(c Check, res *pb.Result) []*pb.Result {
	results := []*pb.Result{res}
	finish(c, results)
	return results
}

func (r *Runner) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slots != nil {
		return
	}
	n := r.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	r.slots = make(chan struct{}, n)
	r.abandoned = map[string]int{}
	r.changed = make(chan struct{})
	r.stuck = map[SourceName]bool{}
}

// interrupted is the ERROR of a check or source that the end of the run's
// context cut short. A deadline and a cancellation (Ctrl-C) read differently.
func interrupted(ctx context.Context, d time.Duration) *pb.Result {
	res := Errorf("interrupted: %s", interruption(ctx))
	res.Duration = durationpb.New(d)
	return res
}

// interruption says why ctx ended: its cause when it has one (a signal:
// "interrupt signal received"), else whether a deadline passed. Causes are
// compared by identity, since a signal's cause Is context.Canceled.
func interruption(ctx context.Context) string {
	err, cause := ctx.Err(), context.Cause(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		if cause != nil && cause != err {
			return "run deadline exceeded: " + cause.Error()
		}
		return "run deadline exceeded"
	}
	if cause != nil && cause != err {
		return cause.Error()
	}
	return "run canceled"
}

// gather runs Gather once for every provider a check needs, and for every
// source such a provider uses: independent providers first, concurrently,
// then the Dependent ones with what the first ones gathered.
func (r *Runner) gather(ctx context.Context, checks []Check) map[SourceName]*gathered {
	needed := map[SourceName]bool{}
	for _, c := range checks {
		for _, n := range slices.Concat(c.Needs, c.Optional) {
			needed[n] = true
			if d, ok := r.provider(n).(Dependent); ok {
				for _, u := range d.Uses() {
					needed[u] = true
				}
			}
		}
	}
	out := map[SourceName]*gathered{}
	var mu sync.Mutex
	phase := func(dependents bool) {
		in := inputsOf(out)
		var wg sync.WaitGroup
		for name := range needed {
			p := r.provider(name)
			if _, isDep := p.(Dependent); isDep != dependents || (p == nil && dependents) {
				continue
			}
			if p == nil {
				msg := fmt.Sprintf("no %s source in this run", name)
				mu.Lock()
				out[name] = &gathered{
					err:    fmt.Errorf("%s: %w", msg, ErrNotConfigured),
					status: &pb.SourceStatus{Name: string(name), State: pb.SourceStatus_NOT_CONFIGURED, Message: msg},
				}
				mu.Unlock()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := r.gatherOne(ctx, p, in)
				mu.Lock()
				out[name] = g
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	phase(false)
	phase(true)
	return out
}

// Dependent is a Provider that reads other sources (the cloud source maps
// the Kubernetes nodes it gathered): the runner gathers the sources it Uses
// first, when the run has them, and passes them to GatherFrom instead of
// calling Gather. Used sources are never Dependent themselves.
type Dependent interface {
	Provider
	Uses() []SourceName
	GatherFrom(ctx context.Context, in *Inputs) (any, error)
}

func inputsOf(g map[SourceName]*gathered) *Inputs {
	values := map[SourceName]any{}
	for name, s := range g {
		if s.err == nil {
			values[name] = s.value
		}
	}
	return &Inputs{values: values}
}

func (r *Runner) provider(name SourceName) Provider {
	for _, p := range r.Providers {
		if p != nil && p.Name() == name {
			return p
		}
	}
	return nil
}

// gatherOne runs one provider's Gather under the source deadline and
// returns when the deadline passes even if Gather does not.
func (r *Runner) gatherOne(ctx context.Context, p Provider, in *Inputs) *gathered {
	timeout := r.SourceTimeout
	if timeout <= 0 {
		timeout = DefaultSourceTimeout
	}
	name := p.Name()
	start := time.Now()
	g := &gathered{status: &pb.SourceStatus{Name: string(name)}}
	ReportProgress(ctx, Progress{Kind: SourceStarted, Source: name})
	defer func() {
		g.finish(time.Since(start))
		if Reporting(ctx) {
			st := proto.Clone(g.status).(*pb.SourceStatus)
			st.Message = RedactURLs(st.Message)
			ReportProgress(ctx, Progress{Kind: SourceDone, Source: name, Status: st})
		}
	}()

	r.mu.Lock()
	stuck := r.stuck[name]
	r.mu.Unlock()
	if stuck {
		g.err = fmt.Errorf("not gathered: the previous gather of this source ignored its deadline and has not returned")
		return g
	}

	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type answer struct {
		value any
		err   error
	}
	done := make(chan answer, 1) // buffered: an abandoned Gather still ends
	var mu sync.Mutex
	finished, abandoned := false, false
	go func() {
		var a answer
		defer func() {
			if v := recover(); v != nil {
				a = answer{nil, fmt.Errorf("source %s panicked: %v", name, v)}
			}
			done <- a
			mu.Lock()
			finished = true
			if abandoned {
				r.mu.Lock()
				delete(r.stuck, name)
				r.mu.Unlock()
			}
			mu.Unlock()
		}()
		if d, ok := p.(Dependent); ok {
			a.value, a.err = d.GatherFrom(gctx, in)
		} else {
			a.value, a.err = p.Gather(gctx)
		}
	}()

	select {
	case a := <-done:
		g.value, g.err = a.value, a.err
	case <-gctx.Done():
		// A provider that obeys its context returns at once, with an error
		// that says which request hung: worth a moment's wait.
		grace := time.NewTimer(gatherGrace)
		defer grace.Stop()
		select {
		case a := <-done:
			g.value, g.err = a.value, a.err
		case <-grace.C:
			mu.Lock()
			if !finished {
				abandoned = true
				r.mu.Lock()
				r.stuck[name] = true
				r.mu.Unlock()
			}
			mu.Unlock()
			if ctx.Err() != nil {
				g.err = fmt.Errorf("interrupted: %s", interruption(ctx))
			} else {
				g.err = fmt.Errorf("did not finish within %s (the gather ignored its deadline and was abandoned)", timeout)
			}
			return g
		}
	}
	if g.err != nil && gctx.Err() != nil && !errors.Is(g.err, ErrNotConfigured) {
		// Name the deadline that ended it, whatever the provider's error says.
		if ctx.Err() != nil {
			g.err = fmt.Errorf("interrupted: %s: %w", interruption(ctx), g.err)
		} else {
			g.err = fmt.Errorf("did not finish within %s: %w", timeout, g.err)
		}
	}
	return g
}

func (g *gathered) finish(d time.Duration) {
	st := g.status
	st.Duration = durationpb.New(d)
	switch {
	case g.err == nil:
		st.State = pb.SourceStatus_OK
		if d, ok := g.value.(interface{ Describe() string }); ok {
			st.Message = d.Describe()
		}
	case errors.Is(g.err, ErrNotConfigured):
		g.value = nil
		st.State, st.Message = pb.SourceStatus_NOT_CONFIGURED, strings.TrimSuffix(g.err.Error(), ": "+ErrNotConfigured.Error())
	default:
		g.value = nil
		st.State, st.Message = pb.SourceStatus_FAILED, g.err.Error()
	}
}

// precondition turns a missing or failed source into the check's one result.
func precondition(c Check, g map[SourceName]*gathered) *pb.Result {
	for _, n := range c.Needs {
		s := g[n]
		if s == nil || s.err == nil {
			continue
		}
		if errors.Is(s.err, ErrNotConfigured) {
			res := Skip("%s source not configured: %s", n, s.status.Message)
			res.Duration = durationpb.New(0)
			return res
		}
		res := Errorf("could not read the %s source: %s", n, s.status.Message)
		res.Evidence = []*pb.Evidence{Ev(string(n)+" source", "gathered", s.status.Message)}
		res.Duration = durationpb.New(0)
		return res
	}
	if len(c.Needs) > 0 || len(c.Optional) == 0 {
		return nil
	}
	// Any one of the optional sources is enough; without one, an error of
	// one of them says more than the SKIPs of the others.
	var skips []string
	for _, n := range c.Optional {
		s := g[n]
		if s == nil || s.err == nil {
			return nil
		}
		if !errors.Is(s.err, ErrNotConfigured) {
			return precondition(Check{Needs: []SourceName{n}}, g)
		}
		skips = append(skips, fmt.Sprintf("%s source not configured: %s", n, s.status.Message))
	}
	res := Skip("%s", strings.Join(skips, "; "))
	res.Duration = durationpb.New(0)
	return res
}

// acquire waits for a concurrency slot. It gives up when ctx ends, and when
// every slot is held by a check that ignored its deadline: those may never
// return, and waiting for them would hang the run.
func (r *Runner) acquire(ctx context.Context) (release func(), problem *pb.Result) {
	for {
		r.mu.Lock()
		held, ids := 0, make([]string, 0, len(r.abandoned))
		for id, n := range r.abandoned {
			held += n
			ids = append(ids, id)
		}
		changed := r.changed
		r.mu.Unlock()
		if held >= cap(r.slots) {
			sort.Strings(ids)
			return nil, Errorf("not started: all %d check slots are held by checks that ignored their deadline and have not returned (%s)",
				cap(r.slots), strings.Join(ids, ", "))
		}
		select {
		case r.slots <- struct{}{}:
			return func() { <-r.slots }, nil
		case <-ctx.Done():
			return nil, interrupted(ctx, 0)
		case <-changed:
		}
	}
}

func (r *Runner) setAbandoned(id string, delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandoned[id] += delta
	if r.abandoned[id] <= 0 {
		delete(r.abandoned, id)
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// runOne runs one check under its deadline and turns a panic, a timeout,
// an interruption or a malformed answer into ERROR results.
func (r *Runner) runOne(ctx context.Context, c Check, in *Inputs, refs *runRefs) []*pb.Result {
	start := time.Now()
	release, problem := r.acquire(ctx)
	if problem != nil {
		problem.Duration = durationpb.New(time.Since(start))
		return []*pb.Result{problem}
	}
	timeout := r.CheckTimeout
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan []*pb.Result, 1) // buffered: an abandoned check still ends
	var mu sync.Mutex
	finished, abandoned := false, false
	refs.hold()
	go func() {
		defer refs.drop() // last: the check no longer reads its inputs
		defer func() {
			mu.Lock()
			finished = true
			if abandoned {
				r.setAbandoned(c.ID, -1)
			}
			mu.Unlock()
			release() // only now: abandoned work keeps its slot until it ends
		}()
		defer func() {
			if v := recover(); v != nil {
				res := Errorf("check panicked: %v", v)
				res.Evidence = []*pb.Evidence{Ev("panic", "none", fmt.Sprintf("%v\n%s", v, firstLines(string(debug.Stack()), 12)))}
				done <- []*pb.Result{res}
			}
		}()
		done <- c.Run(cctx, in)
	}()
	var out []*pb.Result
	select {
	case out = <-done:
	case <-cctx.Done():
		select {
		case out = <-done: // it returned just in time
		default:
			mu.Lock()
			if !finished {
				abandoned = true
				r.setAbandoned(c.ID, 1)
			}
			mu.Unlock()
			if ctx.Err() != nil {
				return []*pb.Result{interrupted(ctx, time.Since(start))}
			}
			out = []*pb.Result{Errorf("check did not finish within %s: it ignored its context and was abandoned", timeout)}
		}
	}
	out = normalize(out)
	d := durationpb.New(time.Since(start))
	for _, res := range out {
		res.Duration = d
	}
	return out
}

// normalize makes every result well-formed: nil entries and missing
// statuses are the check's bugs, reported rather than crashing the run.
func normalize(out []*pb.Result) []*pb.Result {
	kept := out[:0:0]
	nils := 0
	for _, res := range out {
		if res == nil {
			nils++
			continue
		}
		if res.Status == pb.Status_STATUS_UNSPECIFIED {
			res.Status = pb.Status_ERROR
			res.Summary = "check returned a result without status: " + res.Summary
		}
		kept = append(kept, res)
	}
	if nils > 0 {
		kept = append(kept, Errorf("check returned a nil result (%d of %d results were nil)", nils, len(out)))
	}
	if len(kept) == 0 {
		kept = append(kept, Errorf("check returned no result"))
	}
	return kept
}

func (r *Runner) maxResults() int {
	switch {
	case r.MaxResultsPerCheck < 0:
		return 0
	case r.MaxResultsPerCheck == 0:
		return DefaultMaxResultsPerCheck
	}
	return r.MaxResultsPerCheck
}

// Summarize counts results by status.
func Summarize(results []*pb.Result) *pb.Summary {
	s := &pb.Summary{}
	for _, r := range results {
		switch r.Status {
		case pb.Status_PASS:
			s.Pass++
		case pb.Status_WARN:
			s.Warn++
		case pb.Status_FAIL:
			s.Fail++
		case pb.Status_ERROR:
			s.Error++
		case pb.Status_SKIP:
			s.Skip++
		}
	}
	return s
}

// ExitCode maps a report to the exit code of `diagnose`: 1 when anything
// failed (or warned, with failOnWarn), else 2 when anything errored, else 0.
func ExitCode(rep *pb.Report, failOnWarn bool) int {
	s := rep.GetSummary()
	switch {
	case s.GetFail() > 0 || (failOnWarn && s.GetWarn() > 0):
		return 1
	case s.GetError() > 0:
		return 2
	}
	return 0
}

func newRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// Close releases providers that hold resources (a BGP speaker, a netns
// handle, idle connections). Providers without a Close method are left alone.
func (r *Runner) Close() {
	for _, p := range r.Providers {
		if c, ok := p.(interface{ Close() }); ok {
			c.Close()
		}
	}
}
