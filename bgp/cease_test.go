package bgp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/test/bgplab"
)

// TestStopSendsCease: stopping the observer (the daemon's SIGTERM, a
// reload that drops the section) closes an Established session with a
// Cease NOTIFICATION, subcode "peer de-configured", which the router logs
// as such, instead of letting its hold timer expire.
func TestStopSendsCease(t *testing.T) {
	p := birdPeer(t, bgplab.Router{Routes: []string{"172.23.0.0/26"}})
	o := startObserver(t, observerConfig(p))
	waitReady(t, o, 20*time.Second)
	o.Stop()
	var last string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := p.bird.Birdc("show", "protocols", "all", "observer")
		if err != nil {
			t.Fatal(err)
		}
		last = out
		if strings.Contains(out, "Received: Peer de-configured") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not get a Cease (peer de-configured) within 10s:\n%s", last)
		}
	}
}
