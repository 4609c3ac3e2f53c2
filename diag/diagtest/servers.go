package diagtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// ClosedPort is a loopback address ("127.0.0.1:port") nothing listens on
// for the test's life: a socket bound to the port without listening holds
// it, so a connection is refused and no other test's listener can take the
// port. (A port listened on and closed again can be taken by a test
// running in parallel in another package, and was.)
func ClosedPort(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// HungTCP listens on addr ("127.0.0.1:0" for any port) and accepts
// connections without ever reading or writing: an API server, a DNS server
// over TCP or a BGP peer that is alive but mute. The connections stay open
// until the test ends. accepted counts them.
func HungTCP(t testing.TB, addr string) (l net.Listener, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l, func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// PollCtx is a context that ends once its Err has been asked K times, and
// counts the asks. Heavy loops ask every diag.PollEvery iterations, so a
// loop that stops at the first ask after the end ran at most PollEvery
// iterations past it: an exact bound, where a wall clock would only be an
// estimate.
type PollCtx struct {
	context.Context
	K, Asks int
}

// Err is context.Canceled from the (K+1)th call on.
func (c *PollCtx) Err() error {
	c.Asks++
	if c.Asks > c.K {
		return context.Canceled
	}
	return nil
}

// SyncBuffer is a bytes.Buffer that goroutines may write while a test reads
// it: a log sink, or the stdout of an agent.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// LogRecords are the JSON log lines (slog's JSON handler) written to buf
// so far whose msg is msg; a line that is not JSON fails the test.
func LogRecords(t testing.TB, buf *SyncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
