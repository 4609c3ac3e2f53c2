package bgp

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/config/oc"
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

// TestLogValue: a gobgp log field that is, or holds, peer configuration is
// dropped whole (it would carry the password); the others print as they are.
func TestLogValue(t *testing.T) {
	const pw = "s3cret-in-config"
	n := oc.Neighbor{Config: oc.NeighborConfig{NeighborAddress: "192.0.2.1", AuthPassword: pw}}
	type wrapper struct {
		Name string
		Conf oc.NeighborConfig
	}
	type holder struct{ N *oc.Neighbor } // a nested pointer prints as an address
	for _, v := range []any{
		n, &n, n.Config, []*oc.Neighbor{&n}, map[string]oc.Neighbor{"a": n}, wrapper{"x", n.Config},
		&api.Peer{Conf: &api.PeerConf{AuthPassword: pw}}, map[string]any{"auth-password": pw},
		holder{&n},
	} {
		if got := logValue(v); strings.Contains(got, pw) {
			t.Errorf("%T printed the password: %s", v, got)
		}
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"dial tcp 127.0.0.1:0->127.0.0.3:179: i/o timeout", "dial tcp 127.0.0.1:0->127.0.0.3:179: i/o timeout"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "dial tcp: connection refused"},
		{net.ParseIP("192.0.2.1"), "192.0.2.1"},
		{uint8(6), "6"},
		{n, "<oc.Neighbor omitted>"},
		{&n, "<*oc.Neighbor omitted>"},
		{map[string]any{"a": 1}, "<map[string]interface {} omitted>"},
	} {
		if got := logValue(tc.v); got != tc.want {
			t.Errorf("logValue(%T) = %q, want %q", tc.v, got, tc.want)
		}
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
