package daemon_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// counter is a source whose every gather is a new value.
type counter struct{ gathers atomic.Int64 }

type count struct{ n int64 }

var countKey = diag.NewKey[*count]("counter")

func (c *counter) Name() diag.SourceName { return "counter" }

func (c *counter) Gather(context.Context) (any, error) { return &count{n: c.gathers.Add(1)}, nil }

// counterDaemon is a daemon, not started, with one check that reads src
// and counts its runs in runs.
func counterDaemon(t *testing.T, src *counter, runs *atomic.Int64) (*daemon.Daemon, []diag.Check) {
	t.Helper()
	checks := []diag.Check{{ID: "counter.read", Title: "reads the counter", Needs: diag.Needs(countKey),
		Run: func(_ context.Context, in *diag.Inputs) []*pb.Result {
			runs.Add(1)
			return []*pb.Result{diag.Pass("gather %d", countKey.Get(in).n)}
		}}}
	d, err := daemon.New(daemon.Options{Config: daemon.Config{Interval: diag.Duration(time.Hour)}, Checks: checks,
		Runner: &diag.Runner{Providers: []diag.Provider{src}}})
	if err != nil {
		t.Fatal(err)
	}
	return d, checks
}

// A Diagnose whose sources did not change reuses the checks' results and
// gives the same report; a fresh one regathers, so its checks run again
// and the report follows the new value. The first periodic run is waited
// for: running beside a Diagnose, before either stored its results, it
// runs the check too.
func TestDiagnoseReusesUnchangedChecks(t *testing.T) {
	var runs atomic.Int64
	d, checks := counterDaemon(t, &counter{}, &runs)
	d.Start()
	defer func() { d.Stop(); d.Abort() }()
	waitFirstRun(t, d)
	ctx := context.Background()
	first, err := d.Diagnose(ctx, checks, false)
	if err != nil {
		t.Fatal(err)
	}
	before := runs.Load()
	second, err := d.Diagnose(ctx, checks, false)
	if err != nil {
		t.Fatal(err)
	}
	if runs.Load() != before {
		t.Errorf("an unchanged source: the check ran %d more times", runs.Load()-before)
	}
	if a, b := first.GetResults()[0].GetSummary(), second.GetResults()[0].GetSummary(); a != b {
		t.Errorf("unchanged source, reports differ: %q, %q", a, b)
	}
	fresh, err := d.Diagnose(ctx, checks, true)
	if err != nil {
		t.Fatal(err)
	}
	if runs.Load() == before {
		t.Error("a fresh Diagnose reused the results of a regathered source")
	}
	if fresh.GetResults()[0].GetSummary() == first.GetResults()[0].GetSummary() {
		t.Errorf("fresh report did not follow the new value: %q", fresh.GetResults()[0].GetSummary())
	}
}

// A source is gathered once when the daemon starts, however the first
// run and the source's refresh loop meet: here a Diagnose gathers it
// before the loop starts, and the loop's first tick takes that value
// instead of gathering again (it did, so a test's second Diagnose could
// see a newer value than its first). Stop waits for the loop, whose first
// tick runs even when Stop has cancelled it.
func TestStartGathersOnce(t *testing.T) {
	src := &counter{}
	d, checks := counterDaemon(t, src, new(atomic.Int64))
	if _, err := d.Diagnose(context.Background(), checks, false); err != nil {
		t.Fatal(err)
	}
	d.Start()
	d.Stop()
	d.Abort()
	if n := src.gathers.Load(); n != 1 {
		t.Errorf("the source was gathered %d times, want 1", n)
	}
}
