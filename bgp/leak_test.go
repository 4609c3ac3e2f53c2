package bgp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"go.uber.org/goleak"
)

// gobgpServe is the one goroutine a stopped speaker leaves: gobgp v3.37.0's
// BgpServer.Serve loop has no way to end (no case of its select returns),
// so it stays parked with an empty server. It is ignored by name and by
// nothing broader; everything else a speaker starts (sessions, listeners,
// the BMP client and its watcher) must be gone after Stop.
var gobgpServe = goleak.IgnoreAnyFunction("github.com/osrg/gobgp/v3/pkg/server.(*BgpServer).Serve")

// silentListener is a router on addr that accepts TCP and never answers.
func silentListener(t *testing.T, addr string) (port uint16, accepted func() int) {
	l, accepted := diagtest.HungTCP(t, addr+":0")
	return uint16(l.Addr().(*net.TCPAddr).Port), accepted
}

// TestObserverStopLeavesNoGoroutines: an observer with a session attempt
// under way and its route stream connected leaves nothing running after
// Stop but gobgp's parked Serve loop.
func TestObserverStopLeavesNoGoroutines(t *testing.T) {
	port, accepted := silentListener(t, "127.0.0.31")
	ignore := goleak.IgnoreCurrent()
	before := runtime.NumGoroutine()
	const listenAddr = "127.0.0.62"
	o, err := NewObserver(&Config{LocalASN: 65010, RouterID: "192.0.2.10", ListenAddress: listenAddr, ListenPort: int32(freePort(t, listenAddr)),
		Peers: []PeerConfig{{Address: "127.0.0.31", Port: port, ASN: 65001}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "route stream up and the router dialled", func() (bool, string) {
		o.mu.Lock()
		up := o.streamUp
		o.mu.Unlock()
		return up && accepted() > 0, fmt.Sprintf("stream %v, connections %d", up, accepted())
	})
	running := runtime.NumGoroutine() - before
	o.Stop()
	goleak.VerifyNone(t, ignore, gobgpServe) // waits for the speaker's goroutines to finish
	t.Logf("goroutines: %d while running, %d after Stop (gobgp's Serve loop)", running, runtime.NumGoroutine()-before)
}

// TestOneShotLeavesNoGoroutines: a one-shot gather, finished or cut short
// by its context, leaves nothing running but gobgp's parked Serve loop.
func TestOneShotLeavesNoGoroutines(t *testing.T) {
	port, _ := silentListener(t, "127.0.0.32")
	cfg := &Config{LocalASN: 65010, RouterID: "192.0.2.10", ListenPort: -1, EstablishTimeout: diag.Duration(1 * time.Second),
		Peers: []PeerConfig{{Address: "127.0.0.32", Port: port, ASN: 65001}}}
	prov, err := NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cancel  bool // cancel at timeout instead of a deadline
	}{
		{"establish timeout", 10 * time.Second, false},
		{"deadline during the wait", 500 * time.Millisecond, false},
		{"cancelled during the wait", 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			if tc.cancel {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(tc.timeout, cancel)
			}
			defer cancel()
			if _, err := prov.Gather(ctx); (err != nil) != tc.cancel {
				t.Fatalf("gather: %v", err)
			}
			// The speaker may still be stopping in the background.
			goleak.VerifyNone(t, ignore, gobgpServe)
		})
	}
}
