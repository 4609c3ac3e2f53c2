package server

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/cmd/vnodediag/app"
	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/config"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/kubelab"
)

// The daemon over loopback gRPC with the Kubernetes source on the envtest
// API server: the periodic run's report, a node added while the daemon
// runs (a non-fresh call reads the warm state, a fresh one regathers, the
// next periodic run reports the transition to watchers), DiagnoseStream's
// order (source progress, each check, the report), the per-source health
// going NOT_SERVING when the API server stops mid-watch and SERVING again
// when it is back (the watch cache recovers alone), and no goroutine left
// after the streams are cancelled and the daemon stopped.
func TestDaemonOverGRPCWithKube(t *testing.T) {
	lab := kubelab.StartRestartableT(t)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := lab.Apply(ctx, kubelab.HybridCluster()...); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte("kubernetes:\n  kubeconfig: "+lab.Kubeconfig+"\nrunner:\n  sourceTimeout: 5s\n"), app.Sections())
	if err != nil {
		t.Fatal(err)
	}
	r, err := app.NewRunner(cfg, diag.Env{Daemon: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Options{Checks: app.Checks(), Runner: r, Only: []string{"k8s.providerid-format"},
		Config: daemon.Config{Interval: diag.Duration(time.Hour), FailureThreshold: 1,
			Refresh: map[string]diag.Duration{"kube": diag.Duration(time.Second)}}})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(&Service{Checks: app.Checks(), Runner: r, Daemon: d})
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)))
	if err != nil {
		t.Fatal(err)
	}
	client := pb.NewDiagnosticsServiceClient(conn)

	var latest *pb.LatestReport
	for deadline := time.Now().Add(30 * time.Second); latest == nil; time.Sleep(50 * time.Millisecond) {
		latest, err = client.GetLatestReport(ctx, &pb.GetLatestReportRequest{})
		if err != nil && (status.Code(err) != codes.Unavailable || time.Now().After(deadline)) {
			t.Fatalf("GetLatestReport: %v", err)
		}
	}
	if s := latest.GetReport().GetSummary(); s.GetFail() != 1 || !strings.Contains(latest.GetReport().String(), "ecs-bad-2") {
		t.Fatalf("first periodic run: %v", latest.GetReport())
	}

	wctx, wcancel := context.WithCancel(ctx)
	watch, err := client.WatchReports(wctx, &pb.WatchReportsRequest{Only: []string{"k8s"}})
	if err != nil {
		t.Fatal(err)
	}
	for d.Watchers() == 0 {
		time.Sleep(10 * time.Millisecond)
	}

	// A second node with a bad providerID, added while the daemon runs.
	if err := lab.Apply(ctx, kubelab.ECSNode("ecs-bad-9", "i-bad9", "172.22.9.0/24", "192.168.0.19")); err != nil {
		t.Fatal(err)
	}
	only := []string{"k8s.providerid-format"}
	fresh, err := client.Diagnose(ctx, &pb.DiagnoseRequest{Only: only, Fresh: true})
	if err != nil || fresh.GetSummary().GetFail() != 2 {
		t.Fatalf("fresh Diagnose after the node was added: %v %v", fresh.GetSummary(), err)
	}
	d.RunNow()
	var tr *pb.Transition
	for tr == nil {
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		tr = ev.GetTransition()
	}
	if tr.GetObject().GetName() != "ecs-bad-9" || tr.GetNewStatus() != pb.Status_FAIL || tr.GetOldStatus() != pb.Status_STATUS_UNSPECIFIED {
		t.Errorf("transition %v", tr)
	}
	if h, err := client.ListHistory(ctx, &pb.ListHistoryRequest{}); err != nil || len(h.GetReports()) != 2 {
		t.Errorf("ListHistory: %v %v", h, err)
	}

	// DiagnoseStream: kube's progress, then the check, then the report.
	stream, err := client.DiagnoseStream(ctx, &pb.DiagnoseRequest{Only: only, Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.GetEvent().(type) {
		case *pb.DiagnoseEvent_Source:
			if e.Source.GetSource() == "kube" {
				order = append(order, "kube:"+e.Source.GetKind().String())
			}
		case *pb.DiagnoseEvent_Check:
			order = append(order, "check:"+e.Check.GetCheckId())
		case *pb.DiagnoseEvent_Report:
			order = append(order, "report")
		}
	}
	got := strings.Join(order, " ")
	if !strings.HasPrefix(got, "kube:UPDATE kube:STARTED") || !strings.HasSuffix(got, "kube:DONE check:k8s.providerid-format report") {
		t.Errorf("stream order: %s", got)
	}
	bad, err := client.DiagnoseStream(ctx, &pb.DiagnoseRequest{Only: []string{"nope"}})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("DiagnoseStream of an unknown check: %v", err)
	}

	// The API server goes away mid-watch: kube is NOT_SERVING after one
	// failed refresh, and SERVING again once the watch is back.
	if err := lab.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	health := healthpb.NewHealthClient(conn)
	kubeHealth := func(want healthpb.HealthCheckResponse_ServingStatus, why string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			hc, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "vnodediag.source.kube"})
			if err == nil && hc.GetStatus() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("kube health %s: %v %v, want %v", why, hc, err, want)
			}
		}
	}
	kubeHealth(healthpb.HealthCheckResponse_NOT_SERVING, "with the API server gone")
	if hc, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf(`"" with kube down: %v %v`, hc, err)
	}
	if err := lab.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	kubeHealth(healthpb.HealthCheckResponse_SERVING, "with the API server back")

	wcancel()
	recvUntilCanceled(t, "watch", watch.Recv)
	conn.Close()
	d.Stop()
	gs.GracefulStop()
	<-served
	d.Abort()
	r.Close()
	// The restarted kube-apiserver is the lab's: envtest waits for its
	// process until the lab stops.
	if err := goleak.Find(ignore, goleak.IgnoreAnyFunction("sigs.k8s.io/controller-runtime/pkg/internal/testing/process.(*State).Start.func1")); err != nil {
		t.Error(err)
	}
}

// Past the server's cap a call's deadline is the cap.
func TestCallDeadlineCapped(t *testing.T) {
	d, err := daemon.New(daemon.Options{Checks: testChecks, Runner: &diag.Runner{},
		Config: daemon.Config{Interval: diag.Duration(time.Hour), MaxCallTimeout: diag.Duration(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	svc := &Service{Checks: testChecks, Daemon: d}
	ctx, cancel := svc.capDeadline(context.Background())
	defer cancel()
	dl, ok := ctx.Deadline()
	if left := time.Until(dl); !ok || left > time.Second || left < 500*time.Millisecond {
		t.Errorf("capped deadline in %s (%v)", left, ok)
	}
	d.Stop()
}

// A request past MaxRequestSize is refused before it is read whole.
func TestRequestSizeLimit(t *testing.T) {
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report {
		t.Error("a request past the limit ran")
		return &pb.Report{}
	})})
	req := &pb.DiagnoseRequest{Only: []string{strings.Repeat("x", MaxRequestSize+1)}}
	_, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(t.Context(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a %d-byte request: %v", MaxRequestSize+1, err)
	}
	// Gzipped, the same request is a few kilobytes on the wire: the limit
	// is on what it inflates to.
	_, err = pb.NewDiagnosticsServiceClient(conn).Diagnose(t.Context(), req, grpc.UseCompressor(grpcgzip.Name))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a %d-byte request, gzipped: %v", MaxRequestSize+1, err)
	}
}
