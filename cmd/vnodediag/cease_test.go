package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/test/bgplab"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// serve's SIGTERM closes its BGP sessions with a Cease NOTIFICATION: a
// BIRD router in a network namespace, Established with the daemon's
// observer, logs "Peer de-configured" once the daemon gets SIGTERM,
// instead of waiting for its hold timer; the daemon exits 0.
func TestServeSIGTERMSendsCease(t *testing.T) {
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	if _, err := os.Stat("/usr/sbin/bird"); err != nil {
		t.Skip("bird2 is not installed")
	}
	h := netlab.NewHostT(t, "cease")
	r := bgplab.Router{ASN: 65001, Neighbor: h.RootAddr, NeighborASN: 65010, Passive: true, HoldTime: 30, Routes: []string{"172.23.0.0/26"}}
	b, err := bgplab.StartBIRD(h, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	cfg := writeFile(t, "bgp.yaml", fmt.Sprintf("bgp:\n  localASN: 65010\n  routerID: 192.0.2.10\n  listenPort: -1\n  establishTimeout: 20s\n"+
		"  peers:\n    - {name: tor, address: %s, asn: 65001, holdTime: 30}\n", h.HostAddr))
	daemon := startBin(t, "serve", "--config", cfg, "--kubeconfig", unreachableKubeconfig(t), "--listen", "127.0.0.1:0")
	daemon.waitFor(t, regexp.MustCompile(`serving gRPC on (\S+)`))
	birdSays := func(want string) {
		t.Helper()
		var last string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, err := b.Birdc("show", "protocols", "all", "observer")
			if err != nil {
				t.Fatal(err)
			}
			if last = out; strings.Contains(out, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("BIRD does not say %q within 20 s:\n%s\ndaemon: %s", want, last, daemon.stderr.String())
			}
		}
	}
	birdSays("Established")
	_ = daemon.cmd.Process.Signal(syscall.SIGTERM)
	birdSays("Received: Peer de-configured")
	if _, code := daemon.wait(t, time.Now(), 15*time.Second); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM: %s", code, daemon.stderr.String())
	}
}
