package bgp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/bgp"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// TestPasswordsThatAreCommonWords: a password that is also a word of the
// messages ("tcp" in "dial tcp", "bgp", "127" of the peer's address ...)
// neither mangles any message nor shows up as a value, in the logs (ours
// and gobgp's, at debug) or the report, during a real session attempt.
// A password that is no word at all appears nowhere.
func TestPasswordsThatAreCommonWords(t *testing.T) {
	// A port nobody listens on: the speaker's MD5-signed SYNs go
	// unanswered (the kernel does not reset a segment it cannot sign).
	ln, err := net.Listen("tcp", "127.0.0.41:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	for _, pw := range []string{"tcp", "peer", "bgp", "error", "127", "connect", "Zq8-not-a-word"} {
		t.Run(pw, func(t *testing.T) {
			t.Parallel()
			tb, logs := failedAttempt(t, bgp.PeerConfig{Address: "127.0.0.41", Port: port, ASN: routerASN, Password: pw})
			last := tb.Peers[0].LastError
			if !strings.HasPrefix(last, "connect: dial tcp ") || !strings.Contains(last, fmt.Sprintf("->127.0.0.41:%d: ", port)) {
				t.Errorf("last error mangled: %q", last)
			}
			report, err := protojson.Marshal(&pb.Report{Results: bgp.EvaluateSessions(tb)})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(report), "dial tcp") || !strings.Contains(string(report), "127.0.0.41") {
				t.Errorf("report lost its words: %s", report)
			}
			out := logs.String()
			for _, want := range []string{`"msg":"bgp observer started"`, `"router_id":"192.0.2.10"`, `"component":"gobgp"`,
				`"msg":"failed to connect"`, `"error":"dial tcp `, `"key":"127.0.0.41"`} {
				if !strings.Contains(out, want) {
					t.Errorf("logs lack %s", want)
				}
			}
			for _, text := range []string{out, string(report), last} {
				if strings.Contains(text, "redacted") {
					t.Errorf("text replaced by redaction (and so the password given away): %s", text)
				}
			}
			// No field of any log line is the password, nor named after one.
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				for k, v := range rec {
					if fmt.Sprint(v) == pw || strings.Contains(strings.ToLower(k), "password") {
						t.Errorf("log field %s=%v: %s", k, v, line)
					}
				}
			}
			if pw == "Zq8-not-a-word" && (strings.Contains(out, pw) || strings.Contains(string(report), pw)) {
				t.Errorf("password in the logs or the report")
			}
		})
	}
}

func freeLoopbackPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// failedAttempt runs an observer (logging at debug, gobgp's lines
// included) against peer, on a port nobody listens on, until the peer's
// first failed connection attempt; it returns the table then and the logs.
func failedAttempt(t *testing.T, peer bgp.PeerConfig) (*bgp.Table, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	lg := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := &bgp.Config{LocalASN: observerASN, RouterID: "192.0.2.10", ListenAddress: "127.0.0.1", ListenPort: int32(freeLoopbackPort(t)),
		Peers: []bgp.PeerConfig{peer}}
	o, err := bgp.NewObserver(cfg, lg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var tb *bgp.Table
	waitFor(t, 15*time.Second, "a failed connection attempt", func() (bool, string) {
		tb, err = o.Table(ctx)
		if err != nil {
			return false, err.Error()
		}
		return tb.Peers[0].LastError != "", tb.Peers[0].State
	})
	o.Stop()
	return tb, &logs
}
