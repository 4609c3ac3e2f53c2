package metrics

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/vnodediag/vnodediag/test/bgplab"
)

// The BGP series from real sessions: the tapped bgp source, gathered
// against the demo lab's routers (BIRD on-prem, FRR as the VBR), gives
// each peer its info, Established 1, an uptime and the prefixes it
// received.
func TestTapBGPLab(t *testing.T) {
	cfg, p := bgplab.DemoProviderT(t, bgplab.DemoOptions{PodCIDRs: []string{"172.23.0.0/26", "172.23.0.64/26"}})
	m := New()
	tp := m.Tap(p)
	defer func() {
		if c, ok := tp.(interface{ Close() }); ok {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := tp.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	out := exposition(t, m)
	if len(cfg.Peers) == 0 {
		t.Fatal("the lab configured no peer")
	}
	for _, peer := range cfg.Peers {
		addr := regexp.QuoteMeta(peer.Address)
		for _, re := range []string{
			`(?m)^vnodediag_bgp_peer_info\{asn="[0-9]+",name="` + regexp.QuoteMeta(peer.Name) + `",peer="` + addr + `"\} 1$`,
			`(?m)^vnodediag_bgp_session_established\{peer="` + addr + `"\} 1$`,
			`(?m)^vnodediag_bgp_session_uptime_seconds\{peer="` + addr + `"\} [0-9.e+-]+$`,
			`(?m)^vnodediag_bgp_received_prefixes\{family="ipv4-unicast",peer="` + addr + `"\} [1-9][0-9]*$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("no line matching %s in\n%s", re, out)
			}
		}
	}
}
