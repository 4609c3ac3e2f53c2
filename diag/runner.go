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
	"time"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Runner runs checks against providers. It gathers each needed source once,
// concurrently, then runs the checks concurrently, each under its own deadline.
type Runner struct {
	Providers []Provider
	// CheckTimeout bounds one check's Run (default 30 s).
	CheckTimeout time.Duration
	// SourceTimeout bounds one provider's Gather (default 60 s).
	SourceTimeout time.Duration
	// Concurrency bounds checks running at once (default 8).
	Concurrency int
	// Identify, when set, fills the report's cluster identity from the
	// gathered inputs.
	Identify func(*Inputs) *pb.ClusterIdentity
}

type gathered struct {
	value  any
	err    error
	status *pb.SourceStatus
}

// Run gathers the sources the checks need and runs them. It never fails:
// every problem becomes a result.
func (r *Runner) Run(ctx context.Context, checks []Check) *pb.Report {
	start := time.Now()
	rep := &pb.Report{RunId: newRunID(), StartTime: timestamppb.New(start), Version: Version}

	g := r.gather(ctx, checks)
	values := map[SourceName]any{}
	for name, s := range g {
		if s.err == nil {
			values[name] = s.value
		}
		rep.Sources = append(rep.Sources, s.status)
	}
	sort.Slice(rep.Sources, func(i, j int) bool { return rep.Sources[i].Name < rep.Sources[j].Name })
	in := &Inputs{values: values}

	results := make([][]*pb.Result, len(checks))
	sem := make(chan struct{}, max(1, r.concurrency()))
	var wg sync.WaitGroup
	for i, c := range checks {
		if res := precondition(c, g); res != nil {
			results[i] = []*pb.Result{res}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = r.runOne(ctx, c, in)
		}()
	}
	wg.Wait()

	order := make([]int, len(checks))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return checks[order[a]].ID < checks[order[b]].ID })
	for _, i := range order {
		for _, res := range results[i] {
			res.CheckId = checks[i].ID
			if res.Reference == "" {
				res.Reference = checks[i].Reference
			}
			rep.Results = append(rep.Results, res)
		}
	}
	if r.Identify != nil {
		rep.Cluster = r.Identify(in)
	}
	rep.Summary = Summarize(rep.Results)
	rep.EndTime = timestamppb.Now()
	return rep
}

func (r *Runner) concurrency() int {
	if r.Concurrency > 0 {
		return r.Concurrency
	}
	return 8
}

// gather runs Gather once for every provider a check needs.
func (r *Runner) gather(ctx context.Context, checks []Check) map[SourceName]*gathered {
	needed := map[SourceName]bool{}
	for _, c := range checks {
		for _, n := range slices.Concat(c.Needs, c.Optional) {
			needed[n] = true
		}
	}
	out := map[SourceName]*gathered{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name := range needed {
		p := r.provider(name)
		if p == nil {
			msg := fmt.Sprintf("no %s source in this run", name)
			mu.Lock()
			out[name] = &gathered{
				err:    NotConfigured("%s", msg),
				status: &pb.SourceStatus{Name: string(name), State: pb.SourceStatus_NOT_CONFIGURED, Message: msg},
			}
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := r.gatherOne(ctx, p)
			mu.Lock()
			out[name] = g
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (r *Runner) provider(name SourceName) Provider {
	for _, p := range r.Providers {
		if p != nil && p.Name() == name {
			return p
		}
	}
	return nil
}

func (r *Runner) gatherOne(ctx context.Context, p Provider) (g *gathered) {
	timeout := r.SourceTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	st := &pb.SourceStatus{Name: string(p.Name())}
	g = &gathered{status: st}
	defer func() {
		if v := recover(); v != nil {
			g.value, g.err = nil, fmt.Errorf("source %s panicked: %v", p.Name(), v)
		}
		st.Duration = durationpb.New(time.Since(start))
		switch {
		case g.err == nil:
			st.State = pb.SourceStatus_OK
			if d, ok := g.value.(interface{ Describe() string }); ok {
				st.Message = d.Describe()
			}
		case errors.Is(g.err, ErrNotConfigured):
			st.State, st.Message = pb.SourceStatus_NOT_CONFIGURED, strings.TrimSuffix(g.err.Error(), ": "+ErrNotConfigured.Error())
		default:
			st.State, st.Message = pb.SourceStatus_FAILED, g.err.Error()
		}
	}()
	g.value, g.err = p.Gather(ctx)
	return g
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
		res := Errorf("could not read the %s source: %v", n, s.err)
		res.Evidence = []*pb.Evidence{Ev(string(n)+" source", "gathered", s.err.Error())}
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

// runOne runs one check under its deadline and turns a panic, a timeout or
// an empty answer into an ERROR result.
func (r *Runner) runOne(ctx context.Context, c Check, in *Inputs) (out []*pb.Result) {
	timeout := r.CheckTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	done := make(chan []*pb.Result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				res := Errorf("check panicked: %v", v)
				res.Evidence = []*pb.Evidence{Ev("panic", "none", fmt.Sprintf("%v\n%s", v, firstLines(string(debug.Stack()), 12)))}
				done <- []*pb.Result{res}
			}
		}()
		done <- c.Run(ctx, in)
	}()
	select {
	case out = <-done:
	case <-ctx.Done():
		// The check ignored its context; report instead of waiting for it.
		out = []*pb.Result{Errorf("check did not finish within %s: %v", timeout, ctx.Err())}
	}
	if len(out) == 0 {
		out = []*pb.Result{Errorf("check returned no result")}
	}
	d := durationpb.New(time.Since(start))
	for _, res := range out {
		if res.Status == pb.Status_STATUS_UNSPECIFIED {
			res.Status = pb.Status_ERROR
			res.Summary = "check returned a result without status: " + res.Summary
		}
		res.Duration = d
	}
	return out
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
// handle). Providers without a Close method are left alone.
func (r *Runner) Close() {
	for _, p := range r.Providers {
		if c, ok := p.(interface{ Close() }); ok {
			c.Close()
		}
	}
}
