package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func waitLatest(t testing.TB, d *daemon.Daemon, not *pb.LatestReport) *pb.LatestReport {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		l, err := d.Latest()
		if err == nil && l != not {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new latest report: %v", err)
		}
	}
}

// startDaemon starts a daemon of benchChecks that runs once an hour and
// returns it with its first report; it is stopped when tb ends.
func startDaemon(tb testing.TB) (*daemon.Daemon, *pb.LatestReport) {
	tb.Helper()
	d, err := daemon.New(daemon.Options{Checks: benchChecks(), Runner: &diag.Runner{}, Config: daemon.Config{Interval: diag.Duration(time.Hour)}})
	if err != nil {
		tb.Fatal(err)
	}
	d.Start()
	tb.Cleanup(func() { d.Stop(); d.Abort() })
	return d, waitLatest(tb, d, nil)
}

// GetLatestReport's reply is marshalled once per run and sent as those
// bytes: the client decodes the daemon's message, every call of a run
// shares one encoding, a new run gets a new one, a caller that names the
// newest run gets only "unchanged", and the other services
// (health, reflection, the other methods) are unaffected by the codec.
func TestLatestReportPreEncoded(t *testing.T) {
	d, want := startDaemon(t)
	svc := &Service{Checks: benchChecks(), Daemon: d}
	conn, _ := serve(t, svc)
	client := pb.NewDiagnosticsServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got, err := client.GetLatestReport(ctx, &pb.GetLatestReportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("GetLatestReport decoded to another message:\n%v\nwant\n%v", got, want)
	}
	first := svc.latest.enc
	if first == nil || first.msg != want {
		t.Fatal("the reply was not pre-encoded")
	}
	var dec pb.LatestReport
	if err := proto.Unmarshal(first.PreEncoded(), &dec); err != nil || !proto.Equal(&dec, want) {
		t.Fatalf("the pre-encoded bytes decode to another message (%v)", err)
	}
	if _, err := client.GetLatestReport(ctx, &pb.GetLatestReportRequest{}); err != nil {
		t.Fatal(err)
	}
	if svc.latest.enc != first {
		t.Error("a second call of the same run marshalled the reply again")
	}
	// A caller that names the newest run gets only "unchanged", and the
	// cached wire form stays; one that names another run gets the report.
	known := want.GetReport().GetRunId()
	if got, err := client.GetLatestReport(ctx, &pb.GetLatestReportRequest{KnownRunId: known}); err != nil || !got.GetUnchanged() || got.GetReport() != nil || len(got.GetStates()) != 0 {
		t.Errorf("known run %s: %v, %v; want only unchanged", known, got, err)
	}
	if svc.latest.enc != first {
		t.Error("an unchanged reply replaced the cached wire form")
	}
	if got, err := client.GetLatestReport(ctx, &pb.GetLatestReportRequest{KnownRunId: "no-such-run"}); err != nil || !proto.Equal(got, want) {
		t.Errorf("unknown run: %v; want the report", err)
	}

	d.RunNow()
	next := waitLatest(t, d, want)
	got, err = client.GetLatestReport(ctx, &pb.GetLatestReportRequest{KnownRunId: known})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, next) || got.GetReport().GetRunId() == known {
		t.Errorf("after a new run, asked with the old run's ID: got run %s, want %s", got.GetReport().GetRunId(), next.GetReport().GetRunId())
	}

	// The other services through the same codec.
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health: %v", err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if r, err := rs.Recv(); err != nil || len(r.GetListServicesResponse().GetService()) < 3 {
		t.Errorf("reflection: %v %v", r, err)
	}
	_ = rs.CloseSend()
	cat, err := client.ListChecks(ctx, &pb.ListChecksRequest{})
	if err != nil || len(cat.GetChecks()) != len(benchChecks()) {
		t.Errorf("ListChecks: %v, %v", cat, err)
	}
	rep, err := client.Diagnose(ctx, &pb.DiagnoseRequest{Only: []string{"bench.c1"}})
	if err != nil || len(rep.GetResults()) != 20 {
		t.Errorf("Diagnose: %d results, %v", len(rep.GetResults()), err)
	}
	h, err := client.ListHistory(ctx, &pb.ListHistoryRequest{})
	if err != nil || len(h.GetReports()) != 2 {
		t.Errorf("ListHistory: %d reports, %v", len(h.GetReports()), err)
	}
}

// The codec passes a PreEncoded value's bytes through and marshals and
// unmarshals everything else as gRPC's own proto codec does.
func TestCodec(t *testing.T) {
	c := newCodec()
	if c.Name() != "proto" {
		t.Errorf("name %q", c.Name())
	}
	msg := &pb.LatestReport{Report: &pb.Report{RunId: "r1"}}
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal(&encodedLatest{msg: msg, gzipOnce: gzipOnce{b: b}})
	if err != nil || string(out.Materialize()) != string(b) {
		t.Fatalf("pre-encoded: %q, %v", out.Materialize(), err)
	}
	std := encoding.GetCodecV2("proto")
	sameBytes(t, c, std, msg)
	// A reply gRPC pools (above its threshold, up to pooledLimit), then
	// one larger than pooledLimit: the same bytes, the latter in a buffer
	// of its own that no pool keeps.
	big := &pb.Report{RunId: "big"}
	for i := 0; proto.Size(big) <= pooledLimit; i++ {
		big.Results = append(big.Results, diag.Pass("node-%d: %s", i, strings.Repeat("x", 1000)))
		if i == 20 {
			if mem.IsBelowBufferPoolingThreshold(proto.Size(big)) {
				t.Fatalf("a %d-byte report is below gRPC's pooling threshold", proto.Size(big))
			}
			sameBytes(t, c, std, big)
		}
	}
	got := sameBytes(t, c, std, big)
	if _, own := got[0].(mem.SliceBuffer); len(got) != 1 || !own {
		t.Errorf("a large reply was marshalled into %d buffer(s) of type %T, want one of its own", len(got), got[0])
	}
	var back pb.LatestReport
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &back); err != nil || !proto.Equal(&back, msg) {
		t.Errorf("unmarshal: %v %v", &back, err)
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("a non-message marshalled")
	}
}

// sameBytes marshals msg with c and with gRPC's codec std, and fails
// unless the bytes are the same. It returns c's.
func sameBytes(t *testing.T, c codec, std encoding.CodecV2, msg proto.Message) mem.BufferSlice {
	t.Helper()
	want, err := std.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Marshal(msg)
	if err != nil || string(got.Materialize()) != string(want.Materialize()) {
		t.Fatalf("a %d-byte message: %v", proto.Size(msg), err)
	}
	return got
}
