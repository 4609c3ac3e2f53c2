package bgp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/netlab"
)

// md5ChildEnv runs TestMD5FailsClosed's body in a child process; its value
// says how the kernel refuses the key there: "probe" (the observer's own
// check sees it), "listener" (that check is skipped, so the speaker's
// setsockopt on its listener is what fails) or "mptcp" (the listener is a
// Multipath TCP socket).
const md5ChildEnv = "VNODEDIAG_TEST_MD5_CHILD"

// TestMD5FailsClosed: when the kernel refuses a peer's TCP-MD5 key, that
// peer's session is not started and bgp.session is ERROR saying why; a
// connection from the peer's address without MD5 gets no OPEN, while a
// peer without a password on the same listener does.
//
// The kernel refuses for real: the test binary runs again inside a network
// namespace whose net.core.optmem_max is 0, where no key can be allocated
// (ENOMEM) and everything else works; and inside one where Go makes its
// listeners Multipath TCP (GODEBUG=multipathtcp=2, Go's default), which
// takes no key at all (ENOPROTOOPT).
func TestMD5FailsClosed(t *testing.T) {
	if mode := os.Getenv(md5ChildEnv); mode != "" {
		md5FailsClosed(t, mode)
		return
	}
	noMem := netlab.NewHostT(t, "md5")
	if _, err := noMem.Run("sh", "-c", "echo 0 > /proc/sys/net/core/optmem_max"); err != nil {
		t.Skipf("cannot lower net.core.optmem_max in a namespace: %v", err)
	}
	mptcp := netlab.NewHostT(t, "mptcp")
	for _, tc := range []struct {
		mode, godebug string
		h             *netlab.Host
	}{{"probe", "", noMem}, {"listener", "", noMem}, {"mptcp", "multipathtcp=2", mptcp}} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := tc.h.Command(os.Args[0], "-test.run=^TestMD5FailsClosed$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), md5ChildEnv+"="+tc.mode)
			if tc.godebug != "" {
				cmd.Env = append(cmd.Env, "GODEBUG="+tc.godebug)
			}
			out, err := cmd.CombinedOutput()
			t.Logf("in %s:\n%s", tc.h.Name, out)
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestMD5FailsClosed")) {
				t.Fatalf("child: %v", err)
			}
		})
	}
}

func md5FailsClosed(t *testing.T, mode string) {
	const secret = "md5-s3cret-key"
	want, errno := "cannot allocate memory", error(syscall.ENOMEM)
	if mode == "mptcp" {
		want, errno = "Multipath TCP", nil // the probe's plain TCP socket takes the key
	}
	if err := probeMD5(netip.MustParseAddr("127.0.0.3"), secret); !errors.Is(err, errno) {
		t.Fatalf("probe in this namespace = %v, want %v", err, errno)
	}
	if mode == "listener" {
		md5Check = func(netip.Addr, string) error { return nil }
	}
	var logs bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const listenAddr = "127.0.0.61"
	port := freePort(t, listenAddr)
	cfg := &Config{LocalASN: 65010, RouterID: "192.0.2.10", ListenAddress: listenAddr, ListenPort: int32(port),
		Peers: []PeerConfig{
			{Name: "md5-passive", Address: "127.0.0.3", ASN: 65001, Password: secret, Passive: true},
			{Name: "md5-active", Address: "127.0.0.4", Port: 1, ASN: 65001, Password: secret},
			{Name: "plain", Address: "127.0.0.5", ASN: 65001, Passive: true},
		}}
	o, err := NewObserver(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	listener := netip.AddrPortFrom(netip.MustParseAddr(listenAddr), port)

	// The listener works: the peer without a password gets an OPEN.
	waitFor(t, 20*time.Second, "an OPEN for the peer without a password", func() (bool, string) {
		b, err := firstBytes("127.0.0.5", listener)
		return isOpen(b), fmt.Sprintf("%x %v", b, err)
	})
	// The peer with a password gets nothing, however often it tries.
	for i := 0; i < 5; i++ {
		if b, err := firstBytes("127.0.0.3", listener); len(b) > 0 {
			t.Fatalf("attempt %d: an unauthenticated connection from the MD5 peer's address got %x (%v)", i, b, err)
		}
	}

	tb, err := o.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := evalSessions(tb)
	for i, want := range []pb.Status{pb.Status_ERROR, pb.Status_ERROR, pb.Status_FAIL} {
		if res[i].Status != want {
			t.Errorf("%s: %s %q, want %s", tb.Peers[i].Label(), res[i].Status, res[i].Summary, want)
		}
	}
	for _, r := range res[:2] {
		if !strings.Contains(r.Summary, "was not started: the kernel refused the TCP-MD5 key") || !strings.Contains(r.Summary, want) {
			t.Errorf("summary does not say why: %q", r.Summary)
		}
	}
	report, _ := protojson.Marshal(&pb.Report{Results: res})
	if strings.Contains(string(report), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the password leaked into the report or the logs")
	}
	for _, r := range res {
		t.Logf("bgp.session: %s: %s", r.Status, r.Summary)
	}
}

// firstBytes connects to the listener from a local source address, without
// TCP-MD5, and returns what arrives within a second.
func firstBytes(from string, to netip.AddrPort) ([]byte, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	b := make([]byte, 64)
	n, err := io.ReadAtLeast(c, b, bgpHeaderLen)
	return b[:n], err
}

// isOpen reports whether b starts with a BGP OPEN (marker, length, type 1).
func isOpen(b []byte) bool {
	return len(b) >= bgpHeaderLen && bytes.Equal(b[:16], bytes.Repeat([]byte{0xff}, 16)) && b[18] == 1
}

// freePort is a port that nothing listens on at addr, for the observer to
// listen on. It is found by listening and closing again, so another
// listener could take it before the observer does: each test passes a
// loopback address of its own, on which no other test (in this package or
// another running in parallel) listens.
func freePort(t *testing.T, addr string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}
