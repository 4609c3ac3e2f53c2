package main

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/diag/server"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// encodings is a server stats handler that keeps, per method, the
// encoding of each request (grpc-encoding) and the largest reply's size
// before and after compression.
type encodings struct {
	mu       sync.Mutex
	requests map[string][]string
	largest  map[string][2]int // length, compressed length
}

type methodKey struct{}

func (e *encodings) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName)
}

func (e *encodings) HandleRPC(ctx context.Context, s stats.RPCStats) {
	m, _ := ctx.Value(methodKey{}).(string)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch s := s.(type) {
	case *stats.InHeader:
		e.requests[m] = append(e.requests[m], s.Compression)
	case *stats.OutPayload:
		if s.Length > e.largest[m][0] {
			e.largest[m] = [2]int{s.Length, s.CompressedLength}
		}
	}
}

func (e *encodings) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (e *encodings) HandleConn(context.Context, stats.ConnStats)                       {}

// diagnose --server and watch ask the daemon for gzipped replies: a 300 KB
// report crosses the wire in a few KB.
func TestServerCallsGzipped(t *testing.T) {
	enc := &encodings{requests: map[string][]string{}, largest: map[string][2]int{}}
	addr := serveTest(t, &server.Service{Checks: allChecks(), Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return passReport(300_000) })},
		grpc.StatsHandler(enc))
	out, stderr, code := runBin(t, nil, "diagnose", "--server", addr, "-o", "json")
	rep := &pb.Report{}
	if code != 0 || protojson.Unmarshal([]byte(out), rep) != nil || len(rep.Results) != 300 {
		t.Fatalf("exit %d, %d results, stderr %s", code, len(rep.Results), stderr)
	}
	watch := serveTest(t, scriptedWatch{events: []*pb.WatchEvent{{Event: &pb.WatchEvent_Run{Run: &pb.RunDone{RunId: "r1"}}}}}, grpc.StatsHandler(enc))
	if _, stderr, code := runBin(t, nil, "watch", "--server", watch); code != 69 {
		t.Errorf("watch: exit %d, stderr %s; want 69, the daemon ended the watch", code, stderr)
	}

	enc.mu.Lock()
	defer enc.mu.Unlock()
	for _, m := range []string{"/vnodediag.v1.DiagnosticsService/DiagnoseStream", "/vnodediag.v1.DiagnosticsService/WatchReports"} {
		if got := enc.requests[m]; len(got) != 1 || got[0] != "gzip" {
			t.Errorf("%s: request encodings %q; want one gzip", m, got)
		}
	}
	if l := enc.largest["/vnodediag.v1.DiagnosticsService/DiagnoseStream"]; l[0] < 300_000 || l[1] > l[0]/10 {
		t.Errorf("the report: %d bytes sent as %d; want it gzipped", l[0], l[1])
	}
}

// A daemon built without gzip refuses a gzipped call as UNIMPLEMENTED:
// diagnose --server and watch ask it again without and get their answer.
// The daemon here is a real gRPC server built without gzip
// (testdata/nogzipd), which names each call it sees begin.
func TestDaemonWithoutGzip(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nogzipd")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/nogzipd").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var calls diagtest.SyncBuffer
	cmd.Stderr = &calls
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("nogzipd did not stop when its stdin closed")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("nogzipd's address: %v; stderr %s", err, calls.String())
	}
	addr := strings.TrimSpace(line)

	out, stderr, code := runBin(t, nil, "diagnose", "--server", addr, "--log-level", "debug")
	if code != 0 || !strings.Contains(out, "served by a daemon without gzip") {
		t.Errorf("diagnose: exit %d, stdout %q, stderr %q; want 0 and the report", code, out, stderr)
	}
	const fellBack = "the daemon refused a gzipped call (it predates gzip)"
	if strings.Count(stderr, fellBack) != 1 {
		t.Errorf("diagnose --log-level debug: stderr %q; want the fallback said once", stderr)
	}
	out, stderr, code = runBin(t, nil, "watch", "--server", addr)
	if code != 69 || !strings.Contains(out, "bgp.session BGPPeer/tor-1 PASS -> FAIL: sent by a daemon without gzip") {
		t.Errorf("watch: exit %d, stdout %q, stderr %q; want 69 and the transition", code, out, stderr)
	}
	if strings.Contains(stderr, fellBack) {
		t.Errorf("watch at the default log level said the fallback: %q", stderr)
	}
	// Each call was made twice: gzipped (refused), then plain.
	want := strings.Repeat("call /vnodediag.v1.DiagnosticsService/DiagnoseStream\n", 2) +
		strings.Repeat("call /vnodediag.v1.DiagnosticsService/WatchReports\n", 2)
	if got := calls.String(); got != want {
		t.Errorf("calls the daemon saw:\n%s\nwant\n%s", got, want)
	}
}
