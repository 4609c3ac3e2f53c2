package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// payloads records the sizes of the replies a client received.
type payloads struct {
	mu   sync.Mutex
	last stats.InPayload
}

func (p *payloads) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (p *payloads) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (p *payloads) HandleConn(context.Context, stats.ConnStats)                       {}
func (p *payloads) HandleRPC(_ context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		p.mu.Lock()
		p.last = *in
		p.mu.Unlock()
	}
}

// sizes returns the last reply's length and its length on the wire.
func (p *payloads) sizes() (length, compressed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.Length, p.last.CompressedLength
}

// A caller that asks for gzip gets GetLatestReport's reply gzipped, the
// gzip form made once per run and sent as it is to every such caller; it
// decodes to the daemon's message. Its other replies are gzipped as gRPC
// does; a caller that does not ask gets the reply plain.
func TestLatestReportGzipOnce(t *testing.T) {
	d, want := startDaemon(t)
	svc := &Service{Checks: benchChecks(), Daemon: d}
	conn, _ := serve(t, svc)
	dial := func(p *payloads, opts ...grpc.CallOption) pb.DiagnosticsServiceClient {
		t.Helper()
		cc, err := grpc.NewClient(conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStatsHandler(p),
			grpc.WithDefaultCallOptions(append(opts, grpc.MaxCallRecvMsgSize(MaxMessageSize))...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return pb.NewDiagnosticsServiceClient(cc)
	}
	var gzp, plainp payloads
	gz, plain := dial(&gzp, grpc.UseCompressor(grpcgzip.Name)), dial(&plainp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	latest := func(c pb.DiagnosticsServiceClient, p *payloads, want *pb.LatestReport) (length, compressed int) {
		t.Helper()
		got, err := c.GetLatestReport(ctx, &pb.GetLatestReportRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("GetLatestReport decoded to another message:\n%v\nwant\n%v", got, want)
		}
		return p.sizes()
	}
	n, wire := latest(gz, &gzp, want)
	first := svc.latest.enc
	if first == nil || first.msg != want || first.gz == nil {
		t.Fatal("the reply's gzip form was not made")
	}
	if n != len(first.b) || wire != len(first.gz) || wire >= n/4 {
		t.Fatalf("reply of %d bytes, %d on the wire; want the gzip form of the %d-byte wire form, %d bytes", n, wire, len(first.b), len(first.gz))
	}
	gzForm := &first.gz[0]
	if n, wire := latest(gz, &gzp, want); wire != len(first.gz) || &first.gz[0] != gzForm || n != len(first.b) {
		t.Errorf("second call: %d bytes on the wire, gzip form remade: %v", wire, &first.gz[0] != gzForm)
	}
	if n, wire := latest(plain, &plainp, want); wire != n || n != len(first.b) {
		t.Errorf("a caller not asking for gzip: %d bytes, %d on the wire; want the plain %d", n, wire, len(first.b))
	}
	// gRPC's own gzip for any other reply.
	if cat, err := gz.ListChecks(ctx, &pb.ListChecksRequest{}); err != nil || len(cat.GetChecks()) != len(benchChecks()) {
		t.Errorf("ListChecks gzipped: %v, %v", cat, err)
	} else if n, wire := gzp.sizes(); wire == n || wire == 0 {
		t.Errorf("ListChecks: %d bytes, %d on the wire; want it gzipped", n, wire)
	}

	// A new run: a new gzip form, and the old one no longer held.
	d.RunNow()
	next := waitLatest(t, d, want)
	if _, wire := latest(gz, &gzp, next); svc.latest.enc == first || wire != len(svc.latest.enc.gz) {
		t.Errorf("after a new run: %d bytes on the wire; want the new run's gzip form", wire)
	}
	gzipReplies.mu.Lock()
	defer gzipReplies.mu.Unlock()
	for _, o := range gzipReplies.list {
		if o == &first.gzipOnce {
			t.Error("the previous run's reply is still held for gzip")
		}
	}
}
