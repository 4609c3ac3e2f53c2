package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// HTTP/2 frame types and codes a bare client needs (RFC 9113).
const (
	h2Settings        = 0x4
	h2Ping            = 0x6
	h2GoAway          = 0x7
	h2Ack             = 0x1
	h2EnhanceYourCalm = 0xb
)

// h2conn is a bare HTTP/2 connection, frames written by hand: it does what
// no gRPC client does (a gRPC client never pings more often than every
// 10 s, whatever it is configured with).
type h2conn struct {
	c net.Conn
	r *bufio.Reader
}

func dialH2(t *testing.T, addr string) *h2conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &h2conn{c: c, r: bufio.NewReader(c)}
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := h.write(h2Settings, 0, nil); err != nil {
		t.Fatal(err)
	}
	return h
}

// write sends one frame on stream 0.
func (h *h2conn) write(typ, flags byte, payload []byte) error {
	f := make([]byte, 9, 9+len(payload))
	f[0], f[1], f[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	f[3], f[4] = typ, flags
	_, err := h.c.Write(append(f, payload...))
	return err
}

// read returns the next frame (the server's settings are acknowledged).
func (h *h2conn) read() (typ, flags byte, payload []byte, err error) {
	for {
		_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var hdr [9]byte
		if _, err := io.ReadFull(h.r, hdr[:]); err != nil {
			return 0, 0, nil, err
		}
		payload = make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
		if _, err := io.ReadFull(h.r, payload); err != nil {
			return 0, 0, nil, err
		}
		if hdr[3] == h2Settings && hdr[4]&h2Ack == 0 {
			if err := h.write(h2Settings, h2Ack, nil); err != nil {
				return 0, 0, nil, err
			}
			continue
		}
		return hdr[3], hdr[4], payload, nil
	}
}

// ping sends PING n and returns the frames up to its acknowledgement, or
// up to the first GOAWAY or the end of the connection: what ended it is
// goaway (its code and debug data) or err.
func (h *h2conn) ping(n uint64) (acked bool, goaway string, err error) {
	data := binary.BigEndian.AppendUint64(nil, n)
	if err := h.write(h2Ping, 0, data); err != nil {
		return false, "", err
	}
	for {
		typ, flags, payload, err := h.read()
		if err != nil {
			return false, "", err
		}
		switch {
		case typ == h2Ping && flags&h2Ack != 0 && bytes.Equal(payload, data):
			return true, "", nil
		case typ == h2GoAway && len(payload) >= 8:
			return false, fmt.Sprintf("code %#x %s", binary.BigEndian.Uint32(payload[4:8]), payload[8:]), nil
		}
	}
}

// The keepalive enforcement policy of every server (limitOptions), on a
// bare HTTP/2 connection without any call: pings at least KeepaliveMinTime
// apart are allowed even without a stream (PermitWithoutStream), so a
// client pinging an idle connection every 10 s keeps it; pings closer than
// that are strikes, and past gRPC's two strikes the server answers GOAWAY
// ENHANCE_YOUR_CALM "too_many_pings" and closes the connection. gRPC's
// default policy (5 minutes, no pings without a stream) would send the
// GOAWAY after the fourth ping already; no policy, or a MinTime shorter
// than the gap between two pings sent at once, never. Takes
// KeepaliveMinTime (10 s).
func TestKeepaliveEnforcement(t *testing.T) {
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return &pb.Report{} })})
	h := dialH2(t, conn.Target())
	// The first ping is never a strike; the next two, at once, are two.
	for n := range uint64(3) {
		if acked, goaway, err := h.ping(n); !acked {
			t.Fatalf("ping %d: goaway %q, %v", n, goaway, err)
		}
	}
	gap := KeepaliveMinTime + 500*time.Millisecond
	time.Sleep(gap)
	if acked, goaway, err := h.ping(3); !acked {
		t.Fatalf("a ping %s after the last one: goaway %q, %v", gap, goaway, err)
	}
	// Ping 3 was no strike: the server still answers. (Were it a strike,
	// its GOAWAY would come before this ping's acknowledgement.)
	if acked, goaway, err := h.ping(4); !acked {
		t.Fatalf("a ping %s after the one before, without a stream, was refused: goaway %q, %v", gap, goaway, err)
	}
	// Ping 4, at once after ping 3, is the third strike.
	if code, debug := awaitGoAway(t, h); code != h2EnhanceYourCalm || debug != "too_many_pings" {
		t.Fatalf("GOAWAY code %#x %q, want ENHANCE_YOUR_CALM too_many_pings", code, debug)
	}
	// And the connection is closed.
	awaitClose(t, h)
}

// Connections without a call are closed (connectionKeepalive, shortened
// here to a second): the server sends GOAWAY "max_idle" and closes the
// connection, while a connection with a call running is kept. Without
// MaxConnectionIdle the idle connection would stay open and the test would
// time out reading.
func TestIdleConnectionClosed(t *testing.T) {
	shortKeepalive(t, keepalive.ServerParameters{MaxConnectionIdle: time.Second, Time: time.Hour, Timeout: time.Hour})
	release := make(chan struct{})
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(ctx context.Context, _ []diag.Check) *pb.Report {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return &pb.Report{RunId: "held"}
	})})
	// A gRPC connection with a call running past the idle time keeps it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(ctx, &pb.DiagnoseRequest{})
		done <- err
	}()
	h := dialH2(t, conn.Target())
	start := time.Now()
	code, debug := awaitGoAway(t, h)
	if code != 0 || debug != "max_idle" {
		t.Fatalf("GOAWAY code %#x %q, want NO_ERROR max_idle", code, debug)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("GOAWAY %s after the connection was opened, MaxConnectionIdle is a second", took.Round(time.Millisecond))
	}
	awaitClose(t, h)
	close(release)
	if err := <-done; err != nil {
		t.Errorf("the call running past the idle time: %v", err)
	}
}

// A connection whose peer stopped answering is closed: the server pings it
// after connectionKeepalive.Time without a frame (a second here) and closes
// it when the ping is not acknowledged within Timeout (a second). The bare
// connection answers nothing but SETTINGS, as a peer that vanished behind
// a firewall keeps no state to answer with. Without the server's pings it
// would stay open and the test would time out reading.
func TestDeadPeerClosed(t *testing.T) {
	shortKeepalive(t, keepalive.ServerParameters{MaxConnectionIdle: time.Hour, Time: time.Second, Timeout: time.Second})
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return &pb.Report{} })})
	h := dialH2(t, conn.Target())
	for {
		typ, flags, _, err := h.read()
		if err != nil {
			t.Fatalf("no ping from the server: %v", err)
		}
		if typ == h2Ping && flags&h2Ack == 0 {
			break
		}
	}
	awaitClose(t, h)
}

// shortKeepalive sets connectionKeepalive for the servers the test starts.
func shortKeepalive(t *testing.T, p keepalive.ServerParameters) {
	old := connectionKeepalive
	connectionKeepalive = p
	t.Cleanup(func() { connectionKeepalive = old })
}

// awaitGoAway reads frames up to a GOAWAY and returns its code and debug
// data.
func awaitGoAway(t *testing.T, h *h2conn) (uint32, string) {
	t.Helper()
	for {
		typ, _, payload, err := h.read()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if typ == h2GoAway && len(payload) >= 8 {
			return binary.BigEndian.Uint32(payload[4:8]), string(payload[8:])
		}
	}
}

// awaitClose reads frames until the server closes the connection; a read
// that times out (10 s) fails the test.
func awaitClose(t *testing.T, h *h2conn) {
	t.Helper()
	for {
		if _, _, _, err := h.read(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the connection is still open after 10 s")
			}
			return
		}
	}
}

// MaxStreamsPerConn bounds the calls running at once on one connection:
// the server announces it, so a gRPC client holds the next call until one
// of those running ends (a server without the bound would run it at once).
func TestMaxStreamsPerConnection(t *testing.T) {
	var entered atomic.Int64
	release := make(chan struct{})
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(ctx context.Context, _ []diag.Check) *pb.Report {
		entered.Add(1)
		select {
		case <-ctx.Done():
		case <-release:
		}
		return &pb.Report{RunId: "held"}
	})})
	client := pb.NewDiagnosticsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitEntered := func(n int64, why string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); entered.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d calls reached the handler, want %d", why, entered.Load(), n)
			}
		}
	}
	errs := make(chan error, MaxStreamsPerConn+1)
	cancels := make([]context.CancelFunc, MaxStreamsPerConn)
	for i := range MaxStreamsPerConn {
		cctx, ccancel := context.WithCancel(ctx)
		cancels[i] = ccancel
		go func() {
			_, err := client.Diagnose(cctx, &pb.DiagnoseRequest{})
			errs <- err
		}()
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	waitEntered(MaxStreamsPerConn, "the calls up to the bound")

	go func() {
		_, err := client.Diagnose(ctx, &pb.DiagnoseRequest{})
		errs <- err
	}()
	time.Sleep(500 * time.Millisecond)
	if n := entered.Load(); n != MaxStreamsPerConn {
		t.Fatalf("%d calls run at once on one connection, want at most %d", n, MaxStreamsPerConn)
	}
	cancels[0]()
	if err := <-errs; status.Code(err) != codes.Canceled {
		t.Errorf("the cancelled call: %v", err)
	}
	waitEntered(MaxStreamsPerConn+1, "the held call once one ended")
	close(release)
	for range MaxStreamsPerConn {
		if err := <-errs; err != nil {
			t.Errorf("a call released: %v", err)
		}
	}
}

// maxWatchers bounds the WatchReports streams over gRPC: that many are
// served, the next is RESOURCE_EXHAUSTED naming the bound with a retry
// hint of one interval (when the next run, and so the next event, comes),
// and once one stream ends a new one is served.
func TestMaxWatchersOverGRPC(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // last: after the server and the daemon stop
	const maxWatchers = 3
	interval := 7 * time.Minute
	d, err := daemon.New(daemon.Options{Checks: testChecks, Runner: &diag.Runner{},
		Config: daemon.Config{Interval: diag.Duration(interval), MaxWatchers: maxWatchers}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	t.Cleanup(func() { d.Stop(); d.Abort() })
	waitLatest(t, d, nil)
	conn, _ := serve(t, &Service{Checks: testChecks, Daemon: d})
	client := pb.NewDiagnosticsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// open starts a stream asking for the current states: one served gets
	// them at once, one refused gets its error.
	open := func() (context.CancelFunc, error) {
		wctx, wcancel := context.WithCancel(ctx)
		s, err := client.WatchReports(wctx, &pb.WatchReportsRequest{Current: true})
		if err == nil {
			var ev *pb.WatchEvent
			if ev, err = s.Recv(); err == nil && ev.GetCurrent() == nil {
				err = fmt.Errorf("first event %v, want a current state", ev)
			}
		}
		return wcancel, err
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range maxWatchers {
		c, err := open()
		cancels = append(cancels, c)
		if err != nil {
			t.Fatalf("watch %d of %d: %v", i+1, maxWatchers, err)
		}
	}
	c, err := open()
	cancels = append(cancels, c)
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), fmt.Sprintf("%d watch streams are open", maxWatchers)) ||
		!strings.Contains(st.Message(), "daemon.maxWatchers") || !strings.Contains(st.Message(), "retry in 7m0s") {
		t.Fatalf("watch %d: %v, want RESOURCE_EXHAUSTED naming daemon.maxWatchers", maxWatchers+1, err)
	}
	hint := time.Duration(0)
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok {
			hint = ri.GetRetryDelay().AsDuration()
		}
	}
	if hint != interval {
		t.Errorf("retry hint %s, want the interval %s", hint, interval)
	}
	if n := d.Watchers(); n != maxWatchers {
		t.Errorf("%d watchers after the refusal, want %d", n, maxWatchers)
	}

	cancels[0]()
	for deadline := time.Now().Add(10 * time.Second); d.Watchers() != maxWatchers-1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a cancelled stream still counts: %d watchers", d.Watchers())
		}
	}
	c, err = open()
	cancels = append(cancels, c)
	if err != nil {
		t.Fatalf("a watch after one ended: %v", err)
	}
}

// A DiagnoseStream its client cancels mid-run (a check waiting for its
// context) ends that run: the check's context ends with the call, or, for
// a fresh run of the daemon (which belongs to every caller that joins it),
// at the call's capped deadline; the stream ends CANCELED, and once the
// server and the daemon stop no goroutine is left.
func TestDiagnoseStreamCancelledMidRun(t *testing.T) {
	for _, c := range []struct {
		name          string
		daemon, fresh bool
		want          error // why the check's context ended
	}{
		{"direct", false, false, context.Canceled},
		{"daemon", true, false, context.Canceled},
		{"daemon fresh", true, true, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			leaks := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, leaks) }) // last
			started := make(chan struct{}, 1)
			ended := make(chan error, 1)
			checks := append([]diag.Check{{ID: "test.hang", Title: "waits for its context", Run: func(ctx context.Context, _ *diag.Inputs) []*pb.Result {
				started <- struct{}{}
				<-ctx.Done()
				ended <- ctx.Err()
				return []*pb.Result{diag.Errorf("interrupted")}
			}}}, testChecks...)
			r := &diag.Runner{}
			svc := &Service{Checks: checks, Runner: r}
			if c.daemon {
				// A call's deadline is capped at 2 s: the fresh run that
				// outlives its caller ends there.
				d, err := daemon.New(daemon.Options{Checks: checks, Runner: r, Only: []string{"test.one"},
					Config: daemon.Config{Interval: diag.Duration(time.Hour), MaxCallTimeout: diag.Duration(2 * time.Second)}})
				if err != nil {
					t.Fatal(err)
				}
				d.Start()
				t.Cleanup(func() { d.Stop(); d.Abort() })
				svc.Daemon = d
			}
			conn, _ := serve(t, svc)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := pb.NewDiagnosticsServiceClient(conn).DiagnoseStream(ctx, &pb.DiagnoseRequest{Only: []string{"test.hang"}, Fresh: c.fresh})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				t.Fatal("the check did not start")
			}
			cancel()
			recvUntilCanceled(t, "stream", stream.Recv)
			select {
			case err := <-ended:
				if !errors.Is(err, c.want) {
					t.Errorf("the check's context ended with %v, want %v", err, c.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the run goes on 20 s after its caller left")
			}
		})
	}
}

// recvUntilCanceled reads a stream whose call was cancelled to its end,
// which must be CANCELED; what names the stream in the error.
func recvUntilCanceled[T any](t *testing.T, what string, recv func() (T, error)) {
	t.Helper()
	for {
		if _, err := recv(); err != nil {
			if status.Code(err) != codes.Canceled {
				t.Errorf("%s after cancel: %v", what, err)
			}
			return
		}
	}
}
