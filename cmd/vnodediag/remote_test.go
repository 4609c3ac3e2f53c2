package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// diagnose --server shows the daemon's progress as a local run does: a
// fresh run of a kube check against a daemon whose API server accepts
// and never answers draws the kube source gathering, from the daemon's
// DiagnoseStream, until the regather is cut short a little before the
// call's deadline and the report (the check ERROR) arrives.
func TestRemoteProgress(t *testing.T) {
	cfgs := hungConfigs(t)
	addr, _ := startServe(t, "--config", cfgs["kube"], "--kubeconfig", hungKubeconfig(t, cfgs))
	out, stderr, code := runBin(t, nil, "diagnose", "--server", addr, "--fresh", "--only", "k8s.providerid-format", "--progress", "always", "--timeout", "4s")
	// The regather is cut short before the deadline: the report, ERROR.
	if code != 2 || !strings.Contains(out, "k8s.providerid-format") {
		t.Errorf("exit %d, stdout %q; want 2 and the check's ERROR", code, out)
	}
	for _, want := range []string{"… kube", "gathering"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%q", want, stderr)
		}
	}
}

// hungKubeconfig is the kubeconfig of hungConfigs' API server, which
// accepts and never answers (serve's own flag would otherwise win over
// the config's).
func hungKubeconfig(t *testing.T, cfgs map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(cfgs["kube"])
	if err != nil {
		t.Fatal(err)
	}
	kc := regexp.MustCompile(`kubeconfig: (\S+)`).FindSubmatch(b)
	if kc == nil {
		t.Fatalf("no kubeconfig in %s", b)
	}
	return string(kc[1])
}

// scriptedWatch answers WatchReports with its events, then ends the
// stream.
type scriptedWatch struct {
	pb.UnimplementedDiagnosticsServiceServer
	events []*pb.WatchEvent
}

func (s scriptedWatch) WatchReports(_ *pb.WatchReportsRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	for _, ev := range s.events {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

// vnodediag watch prints each live transition as a line (time, check,
// object, old -> new, summary), what the daemon said escaped so it
// cannot drive the terminal, and says when it fell behind; when the
// daemon ends the stream it exits 69.
func TestWatchPrintsTransitions(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	addr := serveTest(t, scriptedWatch{events: []*pb.WatchEvent{
		{Event: &pb.WatchEvent_Run{Run: &pb.RunDone{RunId: "r1"}}},
		{Event: &pb.WatchEvent_Transition{Transition: &pb.Transition{CheckId: "bgp.session", Object: &pb.Object{Kind: "BGPPeer", Name: "tor-1"},
			OldStatus: pb.Status_PASS, NewStatus: pb.Status_FAIL, Time: timestamppb.New(at), RunId: "r2", Summary: "session with tor-1 is Active\x1b[2J"}}},
		{Event: &pb.WatchEvent_Dropped{Dropped: 7}},
		{Event: &pb.WatchEvent_Transition{Transition: &pb.Transition{CheckId: "k8s.providerid-format", Object: &pb.Object{Kind: "Node", Name: "n1"},
			NewStatus: pb.Status_PASS, Time: timestamppb.New(at), Summary: "node n1 fine"}}},
	}})
	out, stderr, code := runBin(t, nil, "watch", "--server", addr)
	want := "2026-12-04T10:30:00Z bgp.session BGPPeer/tor-1 PASS -> FAIL: session with tor-1 is Active\\x1b[2J\n" +
		"vnodediag: fell behind the daemon: 7 events dropped\n" +
		"2026-12-04T10:30:00Z k8s.providerid-format Node/n1 (none) -> PASS: node n1 fine\n"
	if out != want {
		t.Errorf("stdout:\n%q\nwant\n%q", out, want)
	}
	if code != 69 || !strings.Contains(stderr, "ended the watch") {
		t.Errorf("exit %d, stderr %q; want 69 and the daemon ended the watch", code, stderr)
	}
}
