package bgp_test

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
)

// TestGatherProgress: while the observer waits for a router that never
// sends an OPEN, it reports the peer's state and the time waited of its
// budget, as the terminal's progress line shows them.
func TestGatherProgress(t *testing.T) {
	s := newSilentPeer(t, "127.0.0.24")
	prov, err := bgp.NewProvider(loopbackConfig("127.0.0.24", s.port()), diag.Env{Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	ctx = diag.WithProgress(ctx, func(p diag.Progress) {
		if p.Kind == diag.SourceUpdate && p.Source == bgp.Source.Name() {
			mu.Lock()
			msgs = append(msgs, p.Message)
			mu.Unlock()
		}
	})
	if _, err := prov.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The wait's budget is the 2.5 s deadline less a fifth kept for reading the table.
	line := regexp.MustCompile(`^127\.0\.0\.24: (Idle|Connect|Active|Opensent|Openconfirm) \d+s/2s$`)
	seen := false
	for _, m := range msgs {
		if !line.MatchString(m) {
			t.Errorf("progress %q does not read like %s", m, line)
		}
		seen = seen || m != msgs[0]
	}
	if len(msgs) < 2 || !seen {
		t.Errorf("want the line updated while waiting (every second), got %q", msgs)
	}
}
