package diag_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type memoFacts struct{ n int }

type genFacts struct{ gen uint64 }

func (g *genFacts) Generation() uint64 { return g.gen }

var (
	factsKey = diag.NewKey[*memoFacts]("facts")
	genKey   = diag.NewKey[*genFacts]("gen")
	sliceKey = diag.NewKey[[]int]("slice")
)

func withoutDurations(rep *pb.Report) string {
	var out string
	for _, r := range rep.GetResults() {
		c := proto.Clone(r).(*pb.Result)
		c.Duration = nil
		out += fmt.Sprintln(c)
	}
	return out
}

// TestMemo: a check reruns only when a source it reads changed (a new
// value, or a new generation of a Generational one); ERROR results and
// values that cannot be compared are never reused; the report of a run
// with the memo is that of a run without (redacted, valid UTF-8); reused
// results are shared, not copied; a later trim of the report does not
// reach the memo.
func TestMemo(t *testing.T) {
	facts := &memoFacts{n: 1}
	gen := &genFacts{gen: 1}
	var runs [4]atomic.Int32
	failing := atomic.Bool{}
	mk := func(i int, id string, key diag.SourceName, res func(*diag.Inputs) []*pb.Result) diag.Check {
		return diag.Check{ID: id, Needs: []diag.SourceName{key}, Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
			runs[i].Add(1)
			return res(in)
		}}
	}
	checks := []diag.Check{
		mk(0, "t.facts", factsKey.Name(), func(in *diag.Inputs) []*pb.Result {
			// A credential in a URL and a stray byte: the memo keeps the
			// result as the report has it (redacted, valid UTF-8).
			r := diag.Pass("n=%d from https://admin:s3cret@api.example.com/\xff", factsKey.Get(in).n)
			r.Evidence = []*pb.Evidence{diag.Ev("n", "any", fmt.Sprint(factsKey.Get(in).n))}
			return []*pb.Result{r}
		}),
		mk(1, "t.gen", genKey.Name(), func(in *diag.Inputs) []*pb.Result {
			return []*pb.Result{diag.Pass("gen=%d", genKey.Get(in).gen)}
		}),
		mk(2, "t.slice", sliceKey.Name(), func(in *diag.Inputs) []*pb.Result {
			return []*pb.Result{diag.Pass("%d", len(sliceKey.Get(in)))}
		}),
		mk(3, "t.error", factsKey.Name(), func(in *diag.Inputs) []*pb.Result {
			if failing.Load() {
				return []*pb.Result{diag.Errorf("flaky")}
			}
			return []*pb.Result{diag.Pass("fine")}
		}),
	}
	providers := []diag.Provider{
		factsKey.Provide(func(context.Context) (*memoFacts, error) { return facts, nil }),
		// A new value each gather, the same generation: still reused.
		genKey.Provide(func(context.Context) (*genFacts, error) { return &genFacts{gen: gen.gen}, nil }),
		sliceKey.Provide(func(context.Context) ([]int, error) { return []int{1, 2}, nil }),
	}
	memo := diag.NewMemo()
	withMemo := &diag.Runner{Providers: providers, Memo: memo}
	plain := &diag.Runner{Providers: providers}
	ctx := context.Background()
	last := map[string]*pb.Result{}
	want := func(step string, counts [4]int32) {
		t.Helper()
		before := [4]int32{}
		for i := range runs {
			before[i] = runs[i].Load()
		}
		a := withMemo.Run(ctx, checks)
		for i := range runs {
			if got := runs[i].Load() - before[i]; got != counts[i] {
				t.Errorf("%s: %s ran %d times, want %d", step, checks[i].ID, got, counts[i])
			}
		}
		if b := plain.Run(ctx, checks); withoutDurations(a) != withoutDurations(b) {
			t.Errorf("%s: reports differ:\n%s\nagainst\n%s", step, withoutDurations(a), withoutDurations(b))
		}
		for _, r := range a.Results {
			if strings.Contains(r.Summary, "s3cret") || !utf8.ValidString(r.Summary) {
				t.Errorf("%s: a secret or invalid UTF-8 in the report: %q", step, r.Summary)
			}
		}
		// Reused results are the memo's own messages, shared, not copies.
		for _, r := range a.Results {
			if prev, ok := last[r.CheckId]; ok && counts[slices.IndexFunc(checks, func(c diag.Check) bool { return c.ID == r.CheckId })] == 0 && prev != r {
				t.Errorf("%s: %s was reused as a copy", step, r.CheckId)
			}
			last[r.CheckId] = r
		}
	}
	want("first", [4]int32{1, 1, 1, 1})
	want("unchanged", [4]int32{0, 0, 1, 0})
	facts = &memoFacts{n: 2}
	want("new facts", [4]int32{1, 0, 1, 1})
	gen.gen = 2
	want("new generation", [4]int32{0, 1, 1, 0})
	facts = &memoFacts{n: 3}
	failing.Store(true)
	want("error", [4]int32{1, 0, 1, 1})
	want("error again", [4]int32{0, 0, 1, 1})
	if memo.Len() > len(checks) {
		t.Errorf("memo holds %d entries for %d checks", memo.Len(), len(checks))
	}

	// A report over its budget is trimmed; the memo keeps the whole
	// results: a later run that fits shows them whole.
	big := mk(1, "t.big", factsKey.Name(), func(*diag.Inputs) []*pb.Result {
		r := diag.Pass("big")
		r.Evidence = []*pb.Evidence{diag.Ev("bulk", "", strings.Repeat("x", 16<<10))}
		return []*pb.Result{r}
	})
	tight := &diag.Runner{Providers: providers, Memo: diag.NewMemo(), MaxReportBytes: 8 << 10}
	if rep := tight.Run(ctx, []diag.Check{checks[0], big}); rep.Results[0].Evidence != nil {
		t.Fatalf("the report was not trimmed: %v", rep.Results[0])
	}
	got := tight.Run(ctx, checks[:1])
	if want := (&diag.Runner{Providers: providers, MaxReportBytes: 8 << 10}).Run(ctx, checks[:1]); withoutDurations(got) != withoutDurations(want) {
		t.Errorf("a trim reached the memo:\n%s\nwant\n%s", withoutDurations(got), withoutDurations(want))
	}
}

// partedFacts is a Parted value of two parts, a and b.
type partedFacts struct {
	gens map[string]uint64
	a, b string
}

func (p *partedFacts) Generation() uint64 { return p.gens["a"] + p.gens["b"] }

func (p *partedFacts) PartGeneration(part string) (uint64, bool) {
	g, ok := p.gens[part]
	return g, ok
}

func (p *partedFacts) Only(parts []string) any {
	o := &partedFacts{gens: p.gens}
	for _, part := range parts {
		switch part {
		case "a":
			o.a = p.a
		case "b":
			o.b = p.b
		}
	}
	return o
}

// TestMemoParts: a check that names the parts it reads sees those alone
// and reruns only when one of them changed; a check that names none sees
// the whole value and reruns on any change; a check naming a part the
// value does not know is keyed by the whole value.
func TestMemoParts(t *testing.T) {
	partedKey := diag.NewKey[*partedFacts]("parted")
	cur := &partedFacts{gens: map[string]uint64{"a": 1, "b": 1}, a: "a1", b: "b1"}
	runs := map[string]int{}
	var mu sync.Mutex
	mk := func(id string, reads ...string) diag.Check {
		return diag.Check{ID: id, Needs: []diag.SourceName{partedKey.Name()}, Reads: reads, Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
			mu.Lock()
			runs[id]++
			mu.Unlock()
			v := partedKey.Get(in)
			return []*pb.Result{diag.Pass("a=%q b=%q", v.a, v.b)}
		}}
	}
	checks := []diag.Check{mk("t.a", "a"), mk("t.b", "b"), mk("t.whole"), mk("t.unknown", "a", "z")}
	r := &diag.Runner{Memo: diag.NewMemo(), Providers: []diag.Provider{partedKey.Provide(func(context.Context) (*partedFacts, error) {
		c := *cur
		return &c, nil
	})}}
	summaries := func() map[string]string {
		out := map[string]string{}
		for _, res := range r.Run(context.Background(), checks).GetResults() {
			out[res.GetCheckId()] = res.GetSummary()
		}
		return out
	}
	got := summaries()
	want := map[string]string{"t.a": `a="a1" b=""`, "t.b": `a="" b="b1"`, "t.whole": `a="a1" b="b1"`, "t.unknown": `a="a1" b=""`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first run: %v, want %v", got, want)
	}
	cur = &partedFacts{gens: map[string]uint64{"a": 1, "b": 2}, a: "a1", b: "b2"}
	got = summaries()
	if got["t.b"] != `a="" b="b2"` || got["t.whole"] != `a="a1" b="b2"` {
		t.Errorf("after b changed: %v", got)
	}
	if runs["t.a"] != 1 || runs["t.b"] != 2 || runs["t.whole"] != 2 || runs["t.unknown"] != 2 {
		t.Errorf("after b changed, runs %v; want t.a reused, the others rerun", runs)
	}
}

// TestMemoShared: runs that share a memo's results, at once, read them as
// a daemon's callers do (fix UTF-8, marshal) while other runs replace
// them; under the race detector, a write to a shared result fails this.
func TestMemoShared(t *testing.T) {
	var n atomic.Int32
	checks := []diag.Check{
		{ID: "t.stable", Needs: []diag.SourceName{genKey.Name()}, Run: func(context.Context, *diag.Inputs) []*pb.Result {
			r := diag.Pass("from https://admin:s3cret@api.example.com/\xff")
			r.Evidence = []*pb.Evidence{diag.Ev("url", "", "https://u:p@h/\xfe")}
			return []*pb.Result{r}
		}},
		{ID: "t.changing", Needs: []diag.SourceName{factsKey.Name()}, Run: func(context.Context, *diag.Inputs) []*pb.Result {
			return []*pb.Result{diag.Pass("run %d", n.Add(1))}
		}},
	}
	providers := []diag.Provider{
		genKey.Provide(func(context.Context) (*genFacts, error) { return &genFacts{gen: 1}, nil }),
		factsKey.Provide(func(context.Context) (*memoFacts, error) { return &memoFacts{}, nil }),
	}
	r := &diag.Runner{Providers: providers, Memo: diag.NewMemo()}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				rep := r.Run(ctx, checks)
				diag.ValidUTF8(rep)
				if _, err := proto.Marshal(rep); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if hits, _ := r.Memo.Stats(); hits == 0 {
		t.Error("no run reused a result")
	}
}

// releasable is a source value that counts its releases.
type releasable struct{ released atomic.Int32 }

func (r *releasable) Release() { r.released.Add(1) }

// TestRunReleases: a run releases its Releaser values once nothing of it
// reads them: at its end, or, when it abandoned a check that ignored its
// deadline, when that check returns; never while a Gather is stuck.
func TestRunReleases(t *testing.T) {
	relKey := diag.NewKey[*releasable]("rel")
	v := &releasable{}
	released := func(want int32, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); v.released.Load() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("released %d times, want %d", v.released.Load(), want)
			}
		}
	}
	check := func(id string, run func()) diag.Check {
		return diag.Check{ID: id, Needs: []diag.SourceName{relKey.Name()}, Run: func(context.Context, *diag.Inputs) []*pb.Result {
			run()
			return []*pb.Result{diag.Pass("ok")}
		}}
	}
	r := &diag.Runner{Providers: []diag.Provider{relKey.Provide(func(context.Context) (*releasable, error) { return v, nil })},
		CheckTimeout: 50 * time.Millisecond}
	ctx := context.Background()
	r.Run(ctx, []diag.Check{check("t.quick", func() {})})
	released(1, 0)

	block := make(chan struct{})
	rep := r.Run(ctx, []diag.Check{check("t.stuck", func() { <-block })})
	if rep.Results[0].Status != pb.Status_ERROR {
		t.Fatalf("the stuck check was not abandoned: %v", rep.Results[0])
	}
	time.Sleep(50 * time.Millisecond)
	released(1, 0) // the abandoned check still reads it
	close(block)
	released(2, 5*time.Second)

	// A Gather stuck past its deadline may hold what it was given.
	stuck := make(chan struct{})
	defer close(stuck)
	slowKey := diag.NewKey[int]("slow")
	r2 := &diag.Runner{Providers: []diag.Provider{relKey.Provide(func(context.Context) (*releasable, error) { return v, nil }),
		slowKey.Provide(func(context.Context) (int, error) { <-stuck; return 0, nil })}, SourceTimeout: 20 * time.Millisecond}
	r2.Run(ctx, []diag.Check{check("t.quick", func() {}), {ID: "t.slow", Needs: []diag.SourceName{slowKey.Name()},
		Run: func(context.Context, *diag.Inputs) []*pb.Result { return nil }}})
	released(2, 0)
}

// Two runs that miss the same check under the same key at the same time
// compute it once: the second waits for the first's results and shares
// them. When the first is cut short, the second computes the check itself;
// a waiting run whose context ends stops waiting.
func TestMemoSingleFlight(t *testing.T) {
	var runs, gathers atomic.Int32
	release := make(chan struct{})
	slow := diag.Check{ID: "t.slow", Needs: []diag.SourceName{genKey.Name()}, Run: func(ctx context.Context, _ *diag.Inputs) []*pb.Result {
		if runs.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return []*pb.Result{diag.Errorf("cut short")}
			}
		}
		return []*pb.Result{diag.Pass("computed")}
	}}
	gen := atomic.Uint64{}
	gen.Store(1)
	r := &diag.Runner{Memo: diag.NewMemo(), Providers: []diag.Provider{
		genKey.Provide(func(context.Context) (*genFacts, error) {
			gathers.Add(1)
			return &genFacts{gen: gen.Load()}, nil
		}),
	}}
	run := func(ctx context.Context) <-chan *pb.Report {
		out := make(chan *pb.Report, 1)
		go func() { out <- r.Run(ctx, []diag.Check{slow}) }()
		return out
	}
	// waitSecond starts a second run once the first is inside the check,
	// and returns when it has gathered and had time to reach the memo.
	waitSecond := func(ctx context.Context) <-chan *pb.Report {
		t.Helper()
		for i := 0; runs.Load() == 0; i++ {
			if i == 1000 {
				t.Fatal("the first run never started the check")
			}
			time.Sleep(5 * time.Millisecond)
		}
		g := gathers.Load()
		second := run(ctx)
		for i := 0; gathers.Load() == g; i++ {
			if i == 1000 {
				t.Fatal("the second run never gathered")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		return second
	}

	// Once: the second run shares the first's results.
	first := run(context.Background())
	second := waitSecond(context.Background())
	close(release)
	a, b := <-first, <-second
	if n := runs.Load(); n != 1 {
		t.Errorf("two concurrent runs computed the check %d times, want 1", n)
	}
	if a.Results[0] != b.Results[0] || a.Results[0].GetStatus() != pb.Status_PASS {
		t.Errorf("the runs did not share one result: %v, %v", a.Results[0], b.Results[0])
	}

	// The first run is cut short: the second computes the check itself.
	runs.Store(0)
	gen.Store(2)
	release = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	first = run(ctx)
	second = waitSecond(context.Background())
	cancel()
	a, b = <-first, <-second
	if a.Results[0].GetStatus() != pb.Status_ERROR || b.Results[0].GetStatus() != pb.Status_PASS || runs.Load() != 2 {
		t.Errorf("after the first run was cut short: %v, then %v, %d runs of the check", a.Results[0], b.Results[0], runs.Load())
	}

	// A waiting run whose context ends stops waiting, with an ERROR.
	runs.Store(0)
	gen.Store(3)
	ctx, cancel = context.WithCancel(context.Background())
	first = run(context.Background())
	second = waitSecond(ctx)
	cancel()
	b = <-second
	close(release)
	a = <-first
	if b.Results[0].GetStatus() != pb.Status_ERROR || a.Results[0].GetStatus() != pb.Status_PASS || runs.Load() != 1 {
		t.Errorf("a waiting run's context ended: %v; the first run %v; %d runs of the check", b.Results[0], a.Results[0], runs.Load())
	}
}
