package dnsprobe

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
)

// TestGatherProgress: each query reports "done/total queries, n answered"
// against a real DNS server on loopback, ending at the whole plan.
func TestGatherProgress(t *testing.T) {
	addr := startServer(t, false, func(w dns.ResponseWriter, r *dns.Msg) {
		reply(w, r, dns.RcodeSuccess, r.Question[0].Name+" 60 IN A 10.255.2.20")
	})
	cfg := &Config{
		OnPremResolvers:  []Resolver{{Name: "dc1", Address: addr}},
		PrivateZones:     []string{"svc.cloud.internal"},
		PrivateZoneNames: []Name{{Name: "api.svc.cloud.internal"}, {Name: "db.svc.cloud.internal"}},
	}
	p, err := NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []diag.Progress
	ctx := diag.WithProgress(context.Background(), func(ev diag.Progress) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	})
	if _, err := p.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(cfg.plan())
	if len(got) != n || n == 0 {
		t.Fatalf("%d progress events for %d queries", len(got), n)
	}
	last := got[n-1]
	if want := fmt.Sprintf("%d/%d queries, %d answered", n, n, n); last.Message != want || last.Done != int64(n) || last.Total != int64(n) || last.Source != Source.Name() {
		t.Errorf("last event %+v, want %q", last, want)
	}
}
