// Package callers drives many concurrent gRPC callers of the daemon, closed
// loop or paced, gives their latency percentiles, and makes the calls
// measured (the floors — a health Check, and a bare echo server sending
// the daemon's reply, decoded or kept as bytes — and GetLatestReport
// decoded, undecoded, and polled
// naming the run the caller holds). The
// daemon's GetLatestReport benchmark (`make bench-daemon`, a 200-result report in
// the benchmark's own process) and the large benchmark (`make bench-large`,
// the real `vnodediag serve` at 5,000 nodes) measure with it alike.
package callers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Drive makes calls calls from each of clients concurrently and returns
// all their latencies, sorted, or the first error. With due, call k of
// client i starts at due(i, k) and its latency counts from then, so a late
// start is not hidden (no coordinated omission); without, each call starts
// when the client's previous one ends (closed loop). A client stops at its
// first error.
func Drive(clients, calls int, call func(client int) error, due func(i, k int) time.Time) ([]time.Duration, error) {
	lat := make([][]time.Duration, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range calls {
				start := time.Now()
				if due != nil {
					start = due(i, k)
					time.Sleep(time.Until(start))
				}
				if err := call(i); err != nil {
					errs[i] = err
					return
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	return all, nil
}

// Paced is Drive's due for clients that each call every every, staggered
// evenly over the period, the first at start.
func Paced(start time.Time, every time.Duration, clients int) func(i, k int) time.Time {
	return func(i, k int) time.Time {
		return start.Add(time.Duration(k)*every + time.Duration(i)*every/time.Duration(clients))
	}
}

// Pace is a paced measurement: each client calls every Every, Calls
// times. Name is how a table prints it, Metric the prefix of its
// benchmark metrics.
type Pace struct {
	Name, Metric string
	Every        time.Duration
	Calls        int
}

// Paces are the paced measurements, in the order both benchmarks make
// them: 10 calls a second per client (1,000 a second from 100), 5 (half
// that load), then one a second (clients that poll). Each lasts 20 or 30 seconds: the p99 of
// a shorter window hung on whether one garbage collection or one burst of
// another process on the machine happened to fall inside it.
var Paces = []Pace{
	{"10 calls/s each", "paced-", 100 * time.Millisecond, 200},
	{"5 calls/s each", "paced5-", 200 * time.Millisecond, 100},
	{"1 call/s each", "paced1s-", time.Second, 30},
}

// Percentile is the q-th percentile (0 < q <= 100) of sorted latencies:
// the smallest that at least q % of them do not exceed. Zero for none.
func Percentile(sorted []time.Duration, q int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(0, (len(sorted)*q+99)/100-1)]
}

// MaxReply is the largest reply a caller accepts: the daemon's
// server.MaxMessageSize, which a test there holds it to (not imported:
// that package's benchmark imports this one).
const MaxReply = 64 << 20

// Dial is a caller's plaintext connection to addr, a loopback daemon or
// echo server, accepting replies as large as the daemon sends.
func Dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxReply)))
}

// The calls both benchmarks make, each on a client's own connection.

// HealthCheck is the floor: grpc.health.v1 Check of the server as a whole,
// the least a gRPC call costs.
func HealthCheck(ctx context.Context, cc *grpc.ClientConn) error {
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// LatestReport calls GetLatestReport and decodes the reply, as a client does.
func LatestReport(ctx context.Context, cc *grpc.ClientConn) error {
	_, err := pb.NewDiagnosticsServiceClient(cc).GetLatestReport(ctx, &pb.GetLatestReportRequest{})
	return err
}

// LatestReportGzip is LatestReport asking for the reply gzipped (the
// request is sent gzipped, so gRPC gzips the reply).
func LatestReportGzip(ctx context.Context, cc *grpc.ClientConn) error {
	_, err := pb.NewDiagnosticsServiceClient(cc).GetLatestReport(ctx, &pb.GetLatestReportRequest{}, grpc.UseCompressor(grpcgzip.Name))
	return err
}

// Poller returns a call that polls GetLatestReport as a client keeping
// the newest report does: each connection names the run it holds, and
// decodes the whole report only when a newer run has finished (the first
// call, then once per periodic run).
func Poller() func(ctx context.Context, cc *grpc.ClientConn) error {
	var known sync.Map // *grpc.ClientConn -> run ID
	return func(ctx context.Context, cc *grpc.ClientConn) error {
		id, _ := known.Load(cc)
		runID, _ := id.(string)
		r, err := pb.NewDiagnosticsServiceClient(cc).GetLatestReport(ctx, &pb.GetLatestReportRequest{KnownRunId: runID})
		switch {
		case err != nil:
			return err
		case r.GetUnchanged() && runID == "":
			return errors.New("GetLatestReport: unchanged, but no run was named")
		case !r.GetUnchanged():
			known.Store(cc, r.GetReport().GetRunId())
		}
		return nil
	}
}

// LatestReportBytes calls GetLatestReport and keeps the reply's bytes
// undecoded: what the server costs a caller without the caller's decoding.
func LatestReportBytes(ctx context.Context, cc *grpc.ClientConn) error {
	_, err := LatestReportReply(ctx, cc)
	return err
}

// LatestReportReply returns GetLatestReport's reply as its bytes, as the
// daemon sent them: what NewEchoServer serves.
func LatestReportReply(ctx context.Context, cc *grpc.ClientConn) ([]byte, error) {
	var r raw
	err := cc.Invoke(ctx, pb.DiagnosticsService_GetLatestReport_FullMethodName, &pb.GetLatestReportRequest{}, &r,
		grpc.ForceCodecV2(rawCodec{}))
	return r.b, err
}

// The bare echo service and its one method.
const (
	echoService = "vnodediag.bench.v1.Echo"
	echoMethod  = "/" + echoService + "/Get"
)

// NewEchoServer is a bare gRPC server, nothing of vnodediag in it, whose
// one method answers every call with reply: the least any gRPC server
// pays to send those bytes. With the daemon's GetLatestReport reply, it is
// the floor of that call for the same bytes.
func NewEchoServer(reply []byte) *grpc.Server {
	s := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}))
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: echoService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Get", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(&raw{}); err != nil {
				return nil, err
			}
			return &raw{b: reply}, nil
		}}},
	}, struct{}{})
	return s
}

// Echo calls NewEchoServer's method and decodes its reply as a
// GetLatestReport reply, as LatestReport does.
func Echo(ctx context.Context, cc *grpc.ClientConn) error {
	return cc.Invoke(ctx, echoMethod, &pb.GetLatestReportRequest{}, &pb.LatestReport{})
}

// EchoBytes calls NewEchoServer's method and keeps the reply's bytes
// undecoded, as LatestReportBytes does: the least any server and client
// pay to move those bytes, with no decoding on either side.
func EchoBytes(ctx context.Context, cc *grpc.ClientConn) error {
	var r raw
	return cc.Invoke(ctx, echoMethod, &pb.GetLatestReportRequest{}, &r, grpc.ForceCodecV2(rawCodec{}))
}

// raw is a message kept as its bytes.
type raw struct{ b []byte }

// rawCodec marshals requests as gRPC's proto codec does and keeps a *raw
// message's bytes, both ways.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*raw); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*raw); ok {
		r.b = data.Materialize()
		return nil
	}
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// Name is the proto codec's name, so the server decodes the request.
func (rawCodec) Name() string { return "proto" }

var _ encoding.CodecV2 = rawCodec{}
