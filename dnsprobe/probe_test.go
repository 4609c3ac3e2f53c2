package dnsprobe

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer runs a miekg/dns server on a loopback UDP port (and TCP on the
// same port when tcp is set), like blackbox_exporter's prober tests.
func startServer(t *testing.T, tcp bool, h dns.HandlerFunc) string {
	t.Helper()
	// The UDP port the kernel picks may be taken for TCP by another
	// process: pick again (a bounded number of times) until both bind.
	var pc net.PacketConn
	var l net.Listener
	var err error
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if !tcp {
			break
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		_ = pc.Close()
	}
	if err != nil {
		t.Fatalf("no loopback port free for both UDP and TCP: %v", err)
	}
	addr := pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	if tcp {
		ts := &dns.Server{Listener: l, Handler: h}
		tstarted := make(chan struct{})
		ts.NotifyStartedFunc = func() { close(tstarted) }
		go func() { _ = ts.ActivateAndServe() }()
		<-tstarted
		t.Cleanup(func() { _ = ts.Shutdown() })
	}
	return addr
}

func reply(w dns.ResponseWriter, r *dns.Msg, rcode int, rrs ...string) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	_ = w.WriteMsg(m)
}

func TestQueryClassifiesReplies(t *testing.T) {
	addr := startServer(t, true, func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		switch q.Name {
		case "a.test.":
			reply(w, r, dns.RcodeSuccess, "a.test. 60 IN A 192.0.2.1", "a.test. 60 IN A 192.0.2.2")
		case "aaaa.test.":
			reply(w, r, dns.RcodeSuccess, "aaaa.test. 30 IN AAAA 2001:db8::1")
		case "cname.test.":
			reply(w, r, dns.RcodeSuccess, "cname.test. 10 IN CNAME target.test.")
		case "srv.test.":
			reply(w, r, dns.RcodeSuccess, "srv.test. 10 IN SRV 10 5 5060 sip.test.")
		case "test.":
			reply(w, r, dns.RcodeSuccess, "test. 3600 IN SOA ns.test. root.test. 7 3600 600 86400 60")
		case "chain.test.":
			reply(w, r, dns.RcodeSuccess, "chain.test. 10 IN CNAME a.test.", "a.test. 60 IN A 192.0.2.1")
		case "nodata.test.":
			reply(w, r, dns.RcodeSuccess)
		case "nx.test.":
			reply(w, r, dns.RcodeNameError)
		case "servfail.test.":
			reply(w, r, dns.RcodeServerFailure)
		case "refused.test.":
			reply(w, r, dns.RcodeRefused)
		case "notimp.test.":
			reply(w, r, dns.RcodeNotImplemented)
		case "big.test.":
			m := new(dns.Msg)
			m.SetReply(r)
			for i := 0; i < 120; i++ {
				rr, _ := dns.NewRR("big.test. 60 IN A 192.0.2." + strconv.Itoa(i+1))
				m.Answer = append(m.Answer, rr)
			}
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				m.Truncate(512)
			}
			_ = w.WriteMsg(m)
		}
	})
	tests := []struct {
		name   string
		qtype  uint16
		kind   Kind
		values []string
		tcp    bool
	}{
		{"a.test", dns.TypeA, Answered, []string{"192.0.2.1", "192.0.2.2"}, false},
		{"aaaa.test", dns.TypeAAAA, Answered, []string{"2001:db8::1"}, false},
		{"cname.test", dns.TypeCNAME, Answered, []string{"target.test"}, false},
		{"srv.test", dns.TypeSRV, Answered, []string{"10 5 5060 sip.test"}, false},
		{"test", dns.TypeSOA, Answered, []string{"ns.test. root.test. 7"}, false},
		{"chain.test", dns.TypeA, Answered, []string{"192.0.2.1"}, false},
		{"cname.test", dns.TypeA, NoData, nil, false},
		{"nodata.test", dns.TypeA, NoData, nil, false},
		{"nx.test", dns.TypeA, NXDomain, nil, false},
		{"servfail.test", dns.TypeA, ServFail, nil, false},
		{"refused.test", dns.TypeA, Refused, nil, false},
		{"notimp.test", dns.TypeA, OtherRcode, nil, false},
		{"big.test", dns.TypeA, Answered, nil, true},
	}
	p := &Prober{}
	for _, tc := range tests {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			o := p.Query(ctx, addr, tc.name, tc.qtype)
			if o.Kind != tc.kind {
				t.Fatalf("kind %q (%s), want %q", o.Kind, o.Summary(), tc.kind)
			}
			if tc.values != nil && !slices.Equal(o.Values(), tc.values) {
				t.Errorf("values %v, want %v", o.Values(), tc.values)
			}
			if o.TCP != tc.tcp {
				t.Errorf("tcp %v, want %v", o.TCP, tc.tcp)
			}
			if tc.tcp && len(o.Values()) != 120 {
				t.Errorf("%d answers over TCP, want 120", len(o.Values()))
			}
			if o.Kind == Answered && o.Answers[0].TTL == 0 {
				t.Errorf("TTL not recorded: %+v", o.Answers)
			}
		})
	}
}

func TestQueryTruncatedAndTCPFails(t *testing.T) {
	// UDP only: the TCP retry meets a closed port.
	addr := startServer(t, false, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Truncated = true
		_ = w.WriteMsg(m)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o := (&Prober{}).Query(ctx, addr, "x.test", dns.TypeA)
	if o.Kind != TruncatedTCPFailed {
		t.Fatalf("kind %q (%s), want %q", o.Kind, o.Summary(), TruncatedTCPFailed)
	}
}

// rawServer answers every datagram with what respond returns, sent from
// the socket from returns (the listening one when nil).
func rawServer(t *testing.T, respond func(q []byte) []byte, from func() net.PacketConn) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			out := respond(append([]byte(nil), buf[:n]...))
			if out == nil {
				continue
			}
			src := pc
			if from != nil {
				src = from()
			}
			_, _ = src.WriteTo(out, peer)
		}
	}()
	return pc.LocalAddr().String()
}

func answerTo(q []byte) *dns.Msg {
	r := new(dns.Msg)
	if err := r.Unpack(q); err != nil {
		panic(err)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.66")
	m.Answer = append(m.Answer, rr)
	return m
}

func TestQueryRejectsBadReplies(t *testing.T) {
	other, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tests := []struct {
		name    string
		respond func([]byte) []byte
		from    func() net.PacketConn
		kind    Kind
		ignored int
	}{
		{"mismatched ID", func(q []byte) []byte {
			m := answerTo(q)
			m.Id++
			b, _ := m.Pack()
			return b
		}, nil, Timeout, 1},
		{"other question", func(q []byte) []byte {
			m := answerTo(q)
			m.Question[0].Name = "evil.test."
			b, _ := m.Pack()
			return b
		}, nil, Timeout, 1},
		{"not a response", func(q []byte) []byte { return q }, nil, Timeout, 1},
		{"wrong source", func(q []byte) []byte {
			b, _ := answerTo(q).Pack()
			return b
		}, func() net.PacketConn { return other }, Timeout, 0},
		{"malformed", func(q []byte) []byte {
			// Right ID, then a header promising an answer that is not there.
			return append(q[:2:2], 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0, 0xff)
		}, nil, Malformed, 0},
		{"short datagram", func(q []byte) []byte { return q[:4] }, nil, Timeout, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, tc.respond, tc.from)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			o := (&Prober{}).Query(ctx, addr, "x.test", dns.TypeA)
			if o.Kind != tc.kind {
				t.Fatalf("kind %q (%s), want %q", o.Kind, o.Summary(), tc.kind)
			}
			if o.Ignored != tc.ignored {
				t.Errorf("ignored %d, want %d", o.Ignored, tc.ignored)
			}
			if len(o.Answers) != 0 {
				t.Errorf("accepted a bad reply: %v", o.Answers)
			}
			if el := time.Since(start); el > 400*time.Millisecond {
				t.Errorf("took %s, deadline was 300ms", el)
			}
		})
	}
}

func TestQueryConnectionRefused(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	o := (&Prober{}).Query(ctx, addr, "x.test", dns.TypeA)
	if o.Kind != ConnRefused {
		t.Fatalf("kind %q (%s), want %q", o.Kind, o.Summary(), ConnRefused)
	}
	if o.RTT > 200*time.Millisecond {
		t.Errorf("connection refused took %s", o.RTT)
	}
}

func TestQueryRetriesWithinDeadline(t *testing.T) {
	var n atomic.Int32
	addr := rawServer(t, func(q []byte) []byte {
		if n.Add(1) == 1 {
			return nil // drop the first attempt
		}
		b, _ := answerTo(q).Pack()
		return b
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	o := (&Prober{Retries: 2}).Query(ctx, addr, "x.test", dns.TypeA)
	if o.Kind != Answered || o.Attempts != 2 {
		t.Fatalf("kind %q attempts %d (%s), want answered on attempt 2", o.Kind, o.Attempts, o.Summary())
	}
	if el := time.Since(start); el < 190*time.Millisecond || el > 400*time.Millisecond {
		t.Errorf("answered after %s; the first attempt should get a third of 600ms", el)
	}

	// A server that never answers: all attempts share the one deadline.
	silent := rawServer(t, func([]byte) []byte { return nil }, nil)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	o = (&Prober{Retries: 3}).Query(ctx2, silent, "x.test", dns.TypeA)
	if o.Kind != Timeout || o.Attempts != 4 {
		t.Fatalf("kind %q attempts %d, want timeout after 4 attempts", o.Kind, o.Attempts)
	}
	if el := time.Since(start); el > 350*time.Millisecond {
		t.Errorf("retries overran the deadline: %s", el)
	}
}

func TestQueryObeysCancel(t *testing.T) {
	silent := rawServer(t, func([]byte) []byte { return nil }, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	o := (&Prober{}).Query(ctx, silent, "x.test", dns.TypeA)
	if o.Kind != Timeout {
		t.Fatalf("kind %q, want timeout", o.Kind)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancel not obeyed: %s", el)
	}
}
