package bgp

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestListenErrorNamesTheCapability(t *testing.T) {
	o, err := NewObserver(&Config{LocalASN: 1, RouterID: "192.0.2.1", ListenPort: 179, Peers: []PeerConfig{{Address: "192.0.2.2", ASN: 2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := o.listenError(fmt.Errorf("listen tcp4 0.0.0.0:179: bind: %w", syscall.EACCES)).Error()
	for _, want := range []string{"0.0.0.0:179", "CAP_NET_BIND_SERVICE", "listenPort to 1179"} {
		if !strings.Contains(got, want) {
			t.Errorf("error %q does not contain %q", got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("add peer pw=abc123 failed", []string{"abc123", ""}); got != "add peer pw=<redacted> failed" {
		t.Fatal(got)
	}
}

func TestWaitBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if d := waitBudget(ctx, 30*time.Second); d > 8*time.Second || d < 7*time.Second {
		t.Errorf("budget = %s, want about 8s", d)
	}
	if d := waitBudget(context.Background(), 30*time.Second); d != 30*time.Second {
		t.Errorf("budget = %s", d)
	}
}

// TestSettingsCanonical: the speaker, the route stream and the reports see
// one spelling of each address: IPv4-mapped IPv6 becomes IPv4.
func TestSettingsCanonical(t *testing.T) {
	s, err := (&Config{LocalASN: 1, RouterID: "::ffff:192.0.2.10", ListenAddress: "::ffff:127.0.0.1",
		Peers: []PeerConfig{{Address: "::ffff:127.0.0.3", ASN: 2}}, ServiceAddresses: []string{"::ffff:100.100.2.136"}}).settings()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(s.routerID, " ", s.listenAddress, " ", s.peers[0].address, " ", s.peers[0].name, " ", s.serviceAddresses)
	if want := "192.0.2.10 127.0.0.1 127.0.0.3 127.0.0.3 [100.100.2.136]"; got != want {
		t.Errorf("settings = %s, want %s", got, want)
	}
}
