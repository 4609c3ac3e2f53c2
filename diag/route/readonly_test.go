package route

import (
	"context"
	"testing"
	"time"
)

// The route source only looks routes up: the namespace's links,
// addresses, routes of every table, policy rules and neighbours are the
// same after three gathers as before the first. It fails if a gather
// added, replaced or deleted anything there.
func TestGatherChangesNothing(t *testing.T) {
	t.Parallel()
	h := routeNetns(t, []string{"route", "add", "100.64.0.0/10", "via", leasedGW},
		[]string{"route", "add", "100.64.0.0/12", "dev", "uplink0", "table", "100"},
		[]string{"rule", "add", "from", "192.0.2.1", "lookup", "100"})
	state := func() string {
		t.Helper()
		var all string
		for _, args := range [][]string{
			{"-d", "link", "show"}, {"addr", "show"}, {"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
			{"-4", "rule", "show"}, {"-6", "rule", "show"}, {"neigh", "show"},
		} {
			out, err := h.Run("ip", args...)
			if err != nil {
				t.Fatal(err)
			}
			all += "$ ip " + args[len(args)-2] + " " + args[len(args)-1] + "\n" + out
		}
		return all
	}
	before := state()
	p := routeProvider(t, h)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := p.Gather(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if after := state(); after != before {
		t.Errorf("the namespace changed under the route source:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
