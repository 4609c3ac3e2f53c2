package dnsprobe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Deadline compliance is a correctness bound, so these tests assert an upper
// bound on the time taken: generous (1 s past the deadline or the cancel),
// yet far below what a prober that ignores its context takes (the 30 s
// deadline).

// hungTCP accepts connections on addr's port (":0" for any) and never reads
// or writes.
func hungTCP(t *testing.T, addr string) string {
	l, _ := diagtest.HungTCP(t, addr)
	return l.Addr().String()
}

// truncatingUDPHungTCP answers every UDP query with an empty truncated
// reply, so the prober retries over TCP, where a listener on the same port
// accepts and never answers.
func truncatingUDPHungTCP(t *testing.T) string {
	t.Helper()
	for range 20 { // a free UDP port whose TCP twin is free too
		addr := rawServer(t, func(q []byte) []byte {
			r := new(dns.Msg)
			if r.Unpack(q) != nil {
				return nil
			}
			m := new(dns.Msg)
			m.SetReply(r)
			m.Truncated = true
			b, _ := m.Pack()
			return b
		}, nil)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return hungTCP(t, addr)
	}
	t.Fatal("no UDP port with a free TCP twin")
	return ""
}

func TestQueryObeysContextAgainstHungServers(t *testing.T) {
	silentUDP := rawServer(t, func([]byte) []byte { return nil }, nil)
	hungTCPAfterTC := truncatingUDPHungTCP(t)
	servers := []struct {
		name, addr string
		kind       Kind
	}{
		{"udp never answers", silentUDP, Timeout},
		{"tcp accepts and never answers", hungTCPAfterTC, TruncatedTCPFailed},
	}
	for _, s := range servers {
		t.Run(s.name+"/deadline", func(t *testing.T) {
			const deadline = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			o := (&Prober{Retries: 1}).Query(ctx, s.addr, "x.test", dns.TypeA)
			if o.Kind != s.kind {
				t.Errorf("kind %q (%s), want %q", o.Kind, o.Summary(), s.kind)
			}
			if el := time.Since(start); el > deadline+time.Second {
				t.Errorf("took %s with a %s deadline", el, deadline)
			}
		})
		t.Run(s.name+"/cancel", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const after = 100 * time.Millisecond
			time.AfterFunc(after, cancel)
			start := time.Now()
			o := (&Prober{}).Query(ctx, s.addr, "x.test", dns.TypeA)
			if o.Kind != s.kind {
				t.Errorf("kind %q (%s), want %q", o.Kind, o.Summary(), s.kind)
			}
			if el := time.Since(start); el > after+time.Second {
				t.Errorf("took %s; the context was canceled after %s", el, after)
			}
		})
	}
}

// The whole DNS source, against resolvers and forward targets that never
// answer, ends within 1 s of its context even with a 30 s query deadline.
func TestGatherObeysContextAgainstHungServers(t *testing.T) {
	silentUDP := rawServer(t, func([]byte) []byte { return nil }, nil)
	hung := truncatingUDPHungTCP(t)
	cfg := &Config{
		OnPremResolvers:  []Resolver{{Name: "silent", Address: silentUDP}, {Name: "hung-tcp", Address: hung}},
		CloudResolvers:   []Resolver{{Name: "cloud", Address: rawServer(t, func([]byte) []byte { return nil }, nil)}},
		CloudReachable:   ReachYes,
		PrivateZones:     []string{"svc.cloud.internal"},
		OnPremZones:      []string{"corp.example"},
		PrivateZoneNames: []Name{{Name: "api.svc.cloud.internal"}},
		OnPremNames:      []Name{{Name: "db.corp.example"}},
		Forwarders:       []Forwarder{{Zone: "svc.cloud.internal", Targets: []string{hung, silentUDP}}},
		Timeout:          diag.Duration(30 * time.Second),
	}
	p, err := NewProvider(cfg, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const after = 200 * time.Millisecond
	time.AfterFunc(after, cancel)
	start := time.Now()
	v, err := p.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > after+time.Second {
		t.Errorf("gather took %s; the context was canceled after %s", el, after)
	}
	obs := v.(*Observations)
	for q, o := range obs.Outcomes {
		if o.Kind != Interrupted {
			t.Errorf("%s: %s, want interrupted: the run ended before the query's deadline", q, o.Summary())
		}
	}
	// Cut short by the run, a query says nothing about its server: ERROR,
	// never FAIL ("does not answer").
	for _, r := range append(evalResolverReachable(obs), evalPrivateZoneFromOnPrem(obs)...) {
		if r.Status != pb.Status_ERROR || !strings.Contains(r.Summary, "cut short: a deadline of the run or an interrupt came before the query's own") {
			t.Errorf("%s: %s, want ERROR", r.Status, r.Summary)
		}
	}
	if len(obs.Outcomes) == 0 {
		t.Error("no query was planned")
	}
}

// A run deadline shorter than the query deadline cuts the queries short:
// interrupted, whichever of the socket's deadline and the context's timer
// fires first.
func TestGatherRunDeadlineBeforeQueryDeadline(t *testing.T) {
	silentUDP := rawServer(t, func([]byte) []byte { return nil }, nil)
	p, err := NewProvider(&Config{
		OnPremResolvers: []Resolver{{Name: "silent", Address: silentUDP}},
		OnPremZones:     []string{"corp.example"},
		Timeout:         diag.Duration(30 * time.Second),
	}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		v, err := p.Gather(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for q, o := range v.(*Observations).Outcomes {
			if o.Kind != Interrupted {
				t.Fatalf("%s: %s, want interrupted", q, o.Summary())
			}
		}
	}
}
