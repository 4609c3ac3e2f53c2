package dnsprobe_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/dnsprobe"
	"github.com/vnodediag/vnodediag/test/dnslab"
)

// capture keeps what the DNS provider gathered, for the slowest query.
type capture struct {
	diag.Provider
	obs *dnsprobe.Observations
}

func (c *capture) Gather(ctx context.Context) (any, error) {
	v, err := c.Provider.Gather(ctx)
	c.obs, _ = v.(*dnsprobe.Observations)
	return v, err
}

// silentLabConfig is the lab with the on-prem unbound dead, so dnsmasq goes
// silent for every on-prem name (each such query waits out its deadline),
// plus 20 names per side to show that the queries run concurrently.
func silentLabConfig(tb testing.TB) *dnsprobe.Config {
	lab := dnslab.StartT(tb, dnslab.Options{})
	lab.StopOnPrem()
	c := lab.Config()
	for i := 0; i < 20; i++ {
		c.OnPremNames = append(c.OnPremNames, dnsprobe.Name{Name: fmt.Sprintf("host%d.%s", i, dnslab.OnPremZone)})
		c.PrivateZoneNames = append(c.PrivateZoneNames, dnsprobe.Name{Name: fmt.Sprintf("svc%d.%s", i, dnslab.PrivateZone)})
	}
	return c
}

func runSection(tb testing.TB, c *dnsprobe.Config) (wall time.Duration, obs *dnsprobe.Observations) {
	p, err := dnsprobe.NewProvider(c, diag.Env{})
	if err != nil {
		tb.Fatal(err)
	}
	cp := &capture{Provider: p}
	r := &diag.Runner{Providers: []diag.Provider{cp}}
	start := time.Now()
	rep := r.Run(context.Background(), dnsprobe.Checks())
	wall = time.Since(start)
	if rep.Summary.Fail == 0 {
		tb.Fatalf("the silent forwarder went unnoticed: %v", rep.Summary)
	}
	return wall, cp.obs
}

// BenchmarkDNSSection reports the wall time of the whole DNS section (gather
// and every dns.* check, through diag.Runner) beside the slowest single query
// of the same run, with a silent forwarder in the lab. Times are the maximum
// over the iterations; run it with -benchtime 5x.
func BenchmarkDNSSection(b *testing.B) {
	c := silentLabConfig(b)
	var wall, slowest, sum, deadline time.Duration
	queries := 0
	for b.Loop() {
		w, obs := runSection(b, c)
		wall, slowest, queries, deadline = max(wall, w), max(slowest, obs.Slowest), len(obs.Outcomes), obs.Timeout
		sum = 0
		for _, o := range obs.Outcomes {
			sum += o.RTT
		}
	}
	b.ReportMetric(float64(queries), "queries")
	// What the same queries would cost one after another.
	b.ReportMetric(float64(sum.Milliseconds()), "sum-of-queries-ms")
	b.ReportMetric(float64(wall.Milliseconds()), "section-ms")
	b.ReportMetric(float64(slowest.Milliseconds()), "slowest-query-ms")
	b.ReportMetric(float64(wall)/float64(slowest), "section/slowest")
	b.ReportMetric(float64(wall)/float64(deadline), "section/deadline")
}

// TestDNSSectionRunsQueriesConcurrently: with a silent forwarder the
// section still ends near one query deadline, not one per silent query
// (21 of them one after another would take 40 s). The bound is loose on
// purpose: the "+10%" figure is BenchmarkDNSSection's to measure, not a
// unit test's to time.
func TestDNSSectionRunsQueriesConcurrently(t *testing.T) {
	c := silentLabConfig(t)
	wall, obs := runSection(t, c)
	t.Logf("%d queries: section %s, slowest query %s, deadline %s", len(obs.Outcomes), wall, obs.Slowest, obs.Timeout)
	if limit := 3 * obs.Timeout; wall > limit {
		t.Errorf("DNS section took %s, more than 3 query deadlines (%s): queries did not overlap", wall, limit)
	}
	if obs.Slowest < obs.Timeout*9/10 {
		t.Errorf("slowest query %s: the lab's forwarder was not silent", obs.Slowest)
	}
}
