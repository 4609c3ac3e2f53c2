package route

import (
	"context"
	"strings"
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
		// Brief forms: details the kernel changes on its own (an IPv6
		// address's flags, the peer namespace of a veth another test
		// removes) are not what a write would change.
		for _, args := range [][]string{
			{"-br", "link", "show"}, {"-br", "-4", "addr", "show"}, {"-br", "-6", "addr", "show"},
			{"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
			{"-4", "rule", "show"}, {"-6", "rule", "show"}, {"-4", "neigh", "show"},
		} {
			out, err := h.Run("ip", args...)
			if err != nil {
				t.Fatal(err)
			}
			all += "$ ip " + strings.Join(args, " ") + "\n" + out
		}
		return all
	}
	// The kernel settles first: once an IPv6 address is past duplicate
	// detection it adds a local route for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := h.Run("ip", "-6", "addr", "show", "tentative")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPv6 addresses still tentative after 10 s:\n%s", out)
		}
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
