package dnsprobe

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
)

// The DNS source only queries: against servers that record every
// message it receives over UDP and TCP (replies truncated over UDP, so the
// prober retries over TCP), a whole gather of every kind of probe sends
// standard queries alone, one question each, no record in any other
// section (an UPDATE carries its changes there), no zone transfer. It
// fails if the prober ever sent an UPDATE, a NOTIFY or an AXFR.
func TestGatherOnlyQueries(t *testing.T) {
	var mu sync.Mutex
	var got []*dns.Msg
	var tcp int
	h := func(w dns.ResponseWriter, r *dns.Msg) {
		mu.Lock()
		got = append(got, r.Copy())
		_, overTCP := w.RemoteAddr().(*net.TCPAddr)
		if overTCP {
			tcp++
		}
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = !overTCP
		_ = w.WriteMsg(m)
	}
	onPrem, cloud, target := startServer(t, true, h), startServer(t, true, h), startServer(t, true, h)
	cfg := &Config{
		OnPremResolvers:  []Resolver{{Name: "onprem", Address: onPrem}},
		CloudResolvers:   []Resolver{{Name: "cloud", Address: cloud}},
		CloudReachable:   ReachYes,
		PrivateZones:     []string{"svc.cloud.internal"},
		OnPremZones:      []string{"corp.example"},
		PrivateZoneNames: []Name{{Name: "api.svc.cloud.internal"}, {Name: "_grpc._tcp.svc.cloud.internal", Type: "SRV"}},
		OnPremNames:      []Name{{Name: "db.corp.example", Type: "AAAA"}, {Name: "corp.example", Type: "SOA"}},
		Forwarders:       []Forwarder{{Zone: "svc.cloud.internal", Targets: []string{target}}},
		Timeout:          diag.Duration(2 * time.Second),
	}
	p, err := NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.Gather(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || tcp == 0 {
		t.Fatalf("the server saw %d messages, %d over TCP: nothing was probed", len(got), tcp)
	}
	for _, m := range got {
		q := "no question"
		if len(m.Question) > 0 {
			q = m.Question[0].String()
		}
		switch {
		case m.Opcode != dns.OpcodeQuery:
			t.Errorf("%s: opcode %s, want QUERY", q, dns.OpcodeToString[m.Opcode])
		case m.Response:
			t.Errorf("%s: sent as a response", q)
		case len(m.Question) != 1:
			t.Errorf("%d questions, want 1", len(m.Question))
		case len(m.Answer) > 0 || len(m.Ns) > 0:
			t.Errorf("%s: records in the answer or authority (update) section: %v %v", q, m.Answer, m.Ns)
		case m.Question[0].Qtype == dns.TypeAXFR || m.Question[0].Qtype == dns.TypeIXFR:
			t.Errorf("%s: a zone transfer", q)
		}
		for _, rr := range m.Extra {
			if _, opt := rr.(*dns.OPT); !opt {
				t.Errorf("%s: a record other than EDNS0 in the additional section: %s", q, rr)
			}
		}
	}
}
