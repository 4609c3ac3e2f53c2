package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// The client library's log goes through vnodediag's handler: its level
// filter, its format, and no URL userinfo in the message, a string, an
// error or another value's text, however the library passes it.
func TestLibraryLogs(t *testing.T) {
	var buf bytes.Buffer
	prev := libraryTarget.Load()
	libraryLogs(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() { libraryTarget.Store(prev) })
	klog.ErrorS(errors.New(`Get "https://diag:s3cret-1@api.example:6443/api/v1/nodes": dial tcp: i/o timeout`),
		"Failed to watch https://diag:s3cret-2@api.example:6443", "reflector", "nodes",
		"url", "https://diag:s3cret-3@api.example:6443/api", "obj", struct{ URL string }{"https://diag:s3cret-4@api.example"})
	klog.InfoS("throttled", "url", "https://diag:s3cret-5@api.example")
	klog.FromContext(t.Context()).WithValues("server", "https://diag:s3cret-6@api.example").Error(nil, "with values")
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("a password reached the log:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want the two errors (info is below --log-level warn):\n%s", len(lines), out)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["level"] != "ERROR" || rec["logger"] != "client-go" {
			t.Errorf("line %q: %v, want a JSON ERROR record of client-go", l, err)
		}
	}
	if !strings.Contains(lines[0], `"msg":"Failed to watch https://api.example:6443"`) || !strings.Contains(lines[0], `https://api.example:6443/api/v1/nodes`) {
		t.Errorf("the message or the error lost more than the userinfo: %s", lines[0])
	}
}

// With --log-format json every line `serve` writes to stderr parses as a
// JSON record, from start to SIGTERM: its own log, the client library's
// (the API server is unreachable, so it has much to say at debug level)
// and where it listens, which is a record of its own ("serving gRPC",
// "serving metrics") at any --log-level.
func TestServeJSONLog(t *testing.T) {
	for _, level := range []string{"debug", "error"} {
		t.Run(level, func(t *testing.T) {
			s := startBin(t, "serve", "--kubeconfig", unreachableKubeconfig(t), "--listen", "127.0.0.1:0",
				"--metrics-address", "127.0.0.1:0", "--log-format", "json", "--log-level", level)
			grpcAddr := s.waitFor(t, regexp.MustCompile(`"msg":"serving gRPC","address":"([^"]+)"`))
			metricsAddr := s.waitFor(t, regexp.MustCompile(`"msg":"serving metrics","address":"([^"]+)"`))
			for _, addr := range []string{grpcAddr, metricsAddr} {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatalf("the announced address %s: %v", addr, err)
				}
				c.Close()
			}
			if level == "debug" {
				s.waitFor(t, regexp.MustCompile(`"logger":"client-go"`))
			}
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			if _, code := s.wait(t, time.Now(), 20*time.Second); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			out := s.stderr.String()
			for l := range strings.Lines(out) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
					t.Errorf("not a JSON log record: %q (%v)", l, err)
				}
			}
		})
	}
}

// Why vnodediag exits is a JSON record too under --log-format json (level
// ERROR, the error as msg, exit_code), whatever --log-level, and a
// control character quoted from the input stays escaped; under text it is
// the one "vnodediag: ..." line.
func TestExitErrorJSON(t *testing.T) {
	badConfig := writeFile(t, "bad.yaml", "kubernetes: {pageSize: -1}\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:0"}, exitUsage, "not a loopback address"},
		{[]string{"diagnose", "--config", badConfig}, exitUsage, "pageSize"},
		{[]string{"diagnose", "--only", "no.such-check\x1b]0;x\x07"}, exitUsage, "no.such-check"},
	} {
		for _, level := range []string{"info", "error"} {
			_, stderr, code := runBin(t, nil, append(c.args, "--log-format", "json", "--log-level", level)...)
			if code != c.code {
				t.Errorf("%v: exit %d, want %d", c.args, code, c.code)
			}
			if strings.ContainsAny(stderr, "\x1b\x07") {
				t.Errorf("%v: a raw control character reached stderr: %q", c.args, stderr)
			}
			var exits int
			for l := range strings.Lines(stderr) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(l), &rec); err != nil {
					t.Errorf("%v --log-level %s: not a JSON record: %q (%v)", c.args, level, l, err)
					continue
				}
				if code, ok := rec["exit_code"].(float64); ok {
					exits++
					if rec["level"] != "ERROR" || int(code) != c.code || !strings.Contains(rec["msg"].(string), c.want) {
						t.Errorf("%v: exit record %q, want level ERROR, exit_code %d, msg naming %q", c.args, l, c.code, c.want)
					}
				}
			}
			if exits != 1 {
				t.Errorf("%v --log-level %s: %d exit records, want 1:\n%s", c.args, level, exits, stderr)
			}
		}
		_, stderr, _ := runBin(t, nil, c.args...)
		if !strings.HasPrefix(stderr, "vnodediag: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v, text logs: %q, want one line \"vnodediag: ...%s...\"", c.args, stderr, c.want)
		}
	}
}
