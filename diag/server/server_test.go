package server

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/diagtest"
	"github.com/vnodediag/vnodediag/dnsprobe"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// runnerFunc adapts a function to Runner.
type runnerFunc func(ctx context.Context, checks []diag.Check) *pb.Report

func (f runnerFunc) Run(ctx context.Context, checks []diag.Check) *pb.Report { return f(ctx, checks) }

var testChecks = []diag.Check{
	{ID: "test.one", Title: "one", Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Pass("fine")} }},
	{ID: "test.two", Title: "two", Run: func(context.Context, *diag.Inputs) []*pb.Result { return []*pb.Result{diag.Pass("fine")} }},
}

// serve starts svc on a loopback port and returns a client connection; the
// server and the connection stop when the test ends.
func serve(t *testing.T, svc *Service, opts ...grpc.ServerOption) (*grpc.ClientConn, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(svc, opts...)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	return conn, gs
}

// A panic in a handler is INTERNAL for that call, is logged with the run,
// and the daemon goes on serving.
func TestPanicBecomesInternal(t *testing.T) {
	var logs diagtest.SyncBuffer
	svc := &Service{Checks: testChecks, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report {
			var rep *pb.Report
			return &pb.Report{RunId: rep.Results[0].CheckId} // nil dereference
		})}
	conn, _ := serve(t, svc)
	client := pb.NewDiagnosticsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.Diagnose(ctx, &pb.DiagnoseRequest{Only: []string{"test.one"}})
	if status.Code(err) != codes.Internal {
		t.Fatalf("Diagnose: %v, want INTERNAL", err)
	}
	if msg := status.Convert(err).Message(); msg != "internal error in /vnodediag.v1.DiagnosticsService/Diagnose; the daemon logged it" {
		t.Errorf("message %q", msg)
	}
	for _, want := range []string{`msg="diagnose did not complete" checks=1 only=[test.one]`, `msg="grpc handler panicked" method=/vnodediag.v1.DiagnosticsService/Diagnose panic="runtime error: invalid memory address or nil pointer dereference"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, err := client.ListChecks(ctx, &pb.ListChecksRequest{}); err != nil {
		t.Errorf("the daemon stopped serving after the panic: %v", err)
	}
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after the panic: %v %v", hc, err)
	}
}

func TestRecoverStream(t *testing.T) {
	var logs diagtest.SyncBuffer
	err := RecoverStream(slog.New(slog.NewTextHandler(&logs, nil)))(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x.Y/Z"},
		func(any, grpc.ServerStream) error { panic("boom") })
	if status.Code(err) != codes.Internal || !strings.Contains(logs.String(), `panic=boom`) {
		t.Errorf("err %v, log %s", err, logs.String())
	}
}

// diag.Select refuses an empty selection (the engine's promise); the
// daemon answers InvalidArgument and never runs it.
func TestEmptySelectionIsInvalidArgument(t *testing.T) {
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report {
		t.Error("the runner ran an empty selection")
		return &pb.Report{}
	})})
	_, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(t.Context(), &pb.DiagnoseRequest{Only: []string{"test"}, Skip: []string{"test"}})
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != `selection is empty: only "test", skip "test" leaves none of the 2 checks` {
		t.Errorf("Diagnose: %v, want InvalidArgument", err)
	}
}

// bigReport is a report of about size bytes.
func bigReport(size int) *pb.Report {
	rep := &pb.Report{RunId: "big"}
	chunk := strings.Repeat("x", 1000)
	for range size / 1000 {
		rep.Results = append(rep.Results, &pb.Result{CheckId: "test.one", Status: pb.Status_PASS, Summary: chunk})
	}
	return rep
}

// A 10 MB report reaches a client that uses MaxMessageSize (gRPC's default
// limit, 4 MiB, refuses it); past MaxMessageSize the server refuses to send
// with RESOURCE_EXHAUSTED naming the size.
func TestMessageSizeLimits(t *testing.T) {
	size := 10 << 20
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report { return bigReport(size) })})
	client := pb.NewDiagnosticsServiceClient(conn)
	rep, err := client.Diagnose(t.Context(), &pb.DiagnoseRequest{})
	if err != nil || len(rep.GetResults()) != size/1000 {
		t.Fatalf("10 MB report: %v", err)
	}
	_, err = client.Diagnose(t.Context(), &pb.DiagnoseRequest{}, grpc.MaxCallRecvMsgSize(4<<20))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("with the 4 MiB default: %v", err)
	}
	size = MaxMessageSize + 1<<20
	_, err = client.Diagnose(t.Context(), &pb.DiagnoseRequest{})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") {
		t.Errorf("report past the limit: %v", err)
	}
}

// A run that hits the caller's deadline still returns its (partial) report
// to the caller: the server ends it a little before the deadline.
func TestPartialReportBeforeCallerDeadline(t *testing.T) {
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(ctx context.Context, _ []diag.Check) *pb.Report {
		<-ctx.Done()
		return &pb.Report{RunId: "partial", Results: []*pb.Result{diag.Errorf("interrupted")}}
	})})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(ctx, &pb.DiagnoseRequest{})
	if err != nil || rep.GetRunId() != "partial" {
		t.Fatalf("got %v, %v; want the partial report", rep, err)
	}
}

// Invalid UTF-8 in a report (a container message with a stray byte) must
// not make the reply fail to marshal.
func TestInvalidUTF8Reply(t *testing.T) {
	conn, _ := serve(t, &Service{Checks: testChecks, Runner: runnerFunc(func(context.Context, []diag.Check) *pb.Report {
		return &pb.Report{Results: []*pb.Result{{CheckId: "test.one", Status: pb.Status_WARN, Summary: "bad \xff byte"}}}
	})})
	rep, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(t.Context(), &pb.DiagnoseRequest{})
	if err != nil || rep.Results[0].Summary != "bad \uFFFD byte" {
		t.Fatalf("got %v, %v", rep, err)
	}
}

// No goroutine survives the daemon's shutdown: the gRPC server, its
// connections and a run against a DNS resolver that never answers.
func TestNoGoroutineSurvivesShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	dnsP, err := dnsprobe.NewProvider(&dnsprobe.Config{
		OnPremResolvers: []dnsprobe.Resolver{{Name: "silent", Address: silent.LocalAddr().String()}},
		OnPremZones:     []string{"corp.example"},
		Timeout:         diag.Duration(200 * time.Millisecond),
	}, diag.Env{})
	if err != nil {
		t.Fatal(err)
	}
	r := &diag.Runner{Providers: []diag.Provider{dnsP}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(&Service{Checks: dnsprobe.Checks(), Runner: r})
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pb.NewDiagnosticsServiceClient(conn).Diagnose(t.Context(), &pb.DiagnoseRequest{Only: []string{"dns.resolver-reachable"}})
	if err != nil || rep.GetSummary().GetFail() != 1 {
		t.Fatalf("Diagnose: %v %v", rep, err)
	}
	conn.Close()
	gs.GracefulStop()
	<-served
	r.Close()
}
