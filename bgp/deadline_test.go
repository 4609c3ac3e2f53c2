package bgp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vnodediag/vnodediag/bgp"
	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// silentPeer is a "router" that accepts TCP connections on a loopback
// address and never says a word.
type silentPeer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	got   chan struct{} // closed at the first connection
}

func newSilentPeer(t *testing.T, addr string) *silentPeer {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentPeer{ln: ln, got: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if len(s.conns) == 0 {
				close(s.got)
			}
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *silentPeer) port() uint16 { return uint16(s.ln.Addr().(*net.TCPAddr).Port) }

// blackHole returns a loopback address and port that drop every SYN: a
// listener whose accept queue (backlog 0) is already full and is never
// accepted from. The kernel then drops new SYNs silently, as a firewall
// would.
func blackHole(t *testing.T, addr string) (string, uint16) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ip := net.ParseIP(addr).To4()
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte(ip)}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(sa.(*unix.SockaddrInet4).Port)
	hostport := net.JoinHostPort(addr, fmt.Sprint(port))
	// Fill the queue, then make sure the next SYN goes unanswered.
	for i := 0; i < 5; i++ {
		c, err := net.DialTimeout("tcp", hostport, 300*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return addr, port
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s still accepts connections; cannot build a black hole", hostport)
	return "", 0
}

func loopbackConfig(addr string, port uint16) *bgp.Config {
	return &bgp.Config{LocalASN: observerASN, RouterID: "192.0.2.10", ListenPort: -1, EstablishTimeout: diag.Duration(30 * time.Second),
		Peers: []bgp.PeerConfig{{Address: addr, Port: port, ASN: routerASN, HoldTime: u32(3)}}}
}

// slack is what a deadline may be overrun by: the speaker is stopped in
// the background, so only the return itself counts.
const slack = time.Second

// TestGatherDeadline: a router that accepts TCP and never sends an OPEN,
// and one whose address drops every SYN, cost a one-shot gather its
// deadline and no more (the establish timeout is 30 s), and bgp.session
// says what happened.
func TestGatherDeadline(t *testing.T) {
	cases := []struct {
		name string
		peer func(t *testing.T) (string, uint16)
		want string // in bgp.session's summary or remediation
	}{
		{"accepts and stays silent", func(t *testing.T) (string, uint16) {
			s := newSilentPeer(t, "127.0.0.21")
			return "127.0.0.21", s.port()
		}, "accepted the TCP connection but sent no BGP OPEN"},
		{"black hole", func(t *testing.T) (string, uint16) { return blackHole(t, "127.0.0.22") }, "No BGP connection with 127.0.0.22"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, port := tc.peer(t)
			prov, err := bgp.NewProvider(loopbackConfig(addr, port), diag.Env{Log: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			v, err := prov.Gather(ctx)
			dl, _ := ctx.Deadline()
			if over := time.Since(dl); over > slack {
				t.Errorf("gather returned %s after its deadline", over.Round(time.Millisecond))
			}
			if err != nil {
				t.Fatalf("gather: %v (the deadline leaves a fifth for reading the table)", err)
			}
			r := bgp.EvaluateSessions(v.(*bgp.Table))[0]
			if r.Status != pb.Status_FAIL || !strings.Contains(r.Summary+r.Remediation, tc.want) {
				t.Fatalf("bgp.session = %s %q, remediation %q; want FAIL mentioning %q", r.Status, r.Summary, r.Remediation, tc.want)
			}
		})
	}
}

// TestGatherCancelled: a cancelled run starts no speaker, and cancelling
// while the observer waits for a silent router ends the gather at once
// with the cancellation (the establish timeout is 30 s and the context has
// no deadline).
func TestGatherCancelled(t *testing.T) {
	s := newSilentPeer(t, "127.0.0.23")
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prov, err := bgp.NewProvider(loopbackConfig("127.0.0.23", s.port()), diag.Env{Log: lg})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := prov.Gather(ctx); !errors.Is(err, context.Canceled) || v != nil {
		t.Errorf("gather with a cancelled context = %v, %v; want context.Canceled", v, err)
	}
	if strings.Contains(logs.String(), "bgp observer started") {
		t.Errorf("a cancelled run started the speaker:\n%s", logs.String())
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := prov.Gather(ctx)
		done <- result{v, err}
	}()
	select {
	case <-s.got: // the speaker connected and now waits for an OPEN
	case r := <-done:
		t.Fatalf("gather ended before the speaker connected: %v, %v", r.v, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the speaker never connected to the silent router")
	}
	cancel()
	cancelled := time.Now()
	r := <-done
	if d := time.Since(cancelled); d > slack {
		t.Errorf("gather returned %s after the cancellation", d.Round(time.Millisecond))
	}
	if !errors.Is(r.err, context.Canceled) || r.v != nil {
		t.Errorf("gather cancelled while waiting = %v, %v; want context.Canceled", r.v, r.err)
	}
}
