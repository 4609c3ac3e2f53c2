package server

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"github.com/vnodediag/vnodediag/test/callers"
)

// benchChecks are 10 checks of 20 objects each: a 200-result report.
func benchChecks() []diag.Check {
	var out []diag.Check
	for i := range 10 {
		out = append(out, diag.Check{ID: fmt.Sprintf("bench.c%d", i), Title: "bench", Run: func(context.Context, *diag.Inputs) []*pb.Result {
			var res []*pb.Result
			for j := range 20 {
				r := diag.Pass("node-%d fine", j)
				r.Objects = []*pb.Object{diag.Obj("Node", "", fmt.Sprintf("node-%d", j))}
				r.Evidence = []*pb.Evidence{diag.Ev("providerID", "alicloud://cn-shanghai.i-...", "alicloud://cn-shanghai.i-uf6abc")}
				res = append(res, r)
			}
			return res
		}})
	}
	return out
}

// BenchmarkLatestReport: GetLatestReport (a 200-result report) from 100
// concurrent clients over loopback, beside a bare gRPC echo (the health
// Check of a server with nothing else) on the same machine as the floor,
// and a bare server sending the same reply's bytes (echo-reply), decoded
// as GetLatestReport's are, and kept as bytes (echo-reply-undecoded: the
// least moving those bytes costs, nothing decoded on either side).
// GetLatestReport-undecoded is the same call with the client keeping the
// reply's bytes: what the daemon costs without the client's decoding (the
// clients share the benchmark's process and cores). GetLatestReport-polled
// is clients that poll naming the run they hold, as a support tool keeping
// the newest report does: one whole reply per client per run, then
// "unchanged". GetLatestReport-gzipped is clients that ask for the reply
// gzipped and decode it. Reports p50 and p99 per
// call, and GetLatestReport's ratios to the echo's
// (p50-x-echo, p99-x-echo); `make bench-daemon` prints them side by side.
// Each is measured four ways: closed loop (every client calls again at once:
// the machine saturated, latency mostly queueing) and paced: the same 100
// clients calling 10 times a second each (paced-*: 1,000 calls a second in
// all), 5 times (paced5-*) and once a second each (paced1s-*: 100 calls a
// second), latency from each call's scheduled time.
func BenchmarkLatestReport(b *testing.B) {
	d, _ := startDaemon(b)
	reply := latestReply(b, d)
	echo := func() *grpc.Server {
		gs := grpc.NewServer()
		healthpb.RegisterHealthServer(gs, health.NewServer())
		return gs
	}
	for _, c := range []struct {
		name string
		gs   func() *grpc.Server
		call func(context.Context, *grpc.ClientConn) error
	}{
		{"echo", echo, callers.HealthCheck},
		// The same reply's bytes from a bare echo server, decoded: the
		// least sending and decoding them costs.
		{"echo-reply", func() *grpc.Server { return callers.NewEchoServer(reply) }, callers.Echo},
		// The same, kept as bytes: the least moving them costs.
		{"echo-reply-undecoded", func() *grpc.Server { return callers.NewEchoServer(reply) }, callers.EchoBytes},
		{"GetLatestReport", func() *grpc.Server { return New(&Service{Checks: benchChecks(), Daemon: d}) }, callers.LatestReport},
		// The reply's bytes, not decoded: the daemon's share of a call.
		{"GetLatestReport-undecoded", func() *grpc.Server { return New(&Service{Checks: benchChecks(), Daemon: d}) }, callers.LatestReportBytes},
		// Clients that poll naming the run they hold: after each client's
		// first call, the reply is "unchanged" until the next run.
		{"GetLatestReport-polled", func() *grpc.Server { return New(&Service{Checks: benchChecks(), Daemon: d}) }, callers.Poller()},
		// Clients that ask for the reply gzipped (made once per run).
		{"GetLatestReport-gzipped", func() *grpc.Server { return New(&Service{Checks: benchChecks(), Daemon: d}) }, callers.LatestReportGzip},
	} {
		b.Run(c.name, func(b *testing.B) {
			addr, stop := serveLoopback(b, c.gs())
			defer stop()
			const clients = 100
			conns := make([]*grpc.ClientConn, clients)
			for i := range conns {
				var err error
				if conns[i], err = callers.Dial(addr); err != nil {
					b.Fatal(err)
				}
				defer conns[i].Close()
				if err := c.call(context.Background(), conns[i]); err != nil {
					b.Fatal(err)
				}
			}
			per := max(b.N/clients, 1)
			call := func(i int) error { return c.call(context.Background(), conns[i]) }
			// Closed loop: each client calls again as soon as it has its
			// answer, so the 100 of them saturate the machine and a call's
			// latency is mostly its wait behind the others'.
			b.ResetTimer()
			lat, err := callers.Drive(clients, per, call, nil)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			report(b, c.name, "", lat, floor50[""], floor99[""])
			// Paced: the same 100 clients, each calling at a steady rate,
			// staggered, each latency counted from the call's scheduled
			// time: 10 calls a second each (1,000 in all), 5, then one a
			// second each (100 in all: clients that poll).
			for _, m := range callers.Paces {
				b.StartTimer()
				lat, err = callers.Drive(clients, min(per, m.Calls), call, callers.Paced(time.Now().Add(10*time.Millisecond), m.Every, clients))
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				report(b, c.name, m.Metric, lat, floor50[m.Metric], floor99[m.Metric])
			}
		})
	}
}

// TestCallersTakeTheLargestReply: the benchmarks' callers accept every
// reply the daemon may send.
func TestCallersTakeTheLargestReply(t *testing.T) {
	if callers.MaxReply != MaxMessageSize {
		t.Errorf("callers.MaxReply %d, the daemon's MaxMessageSize %d", callers.MaxReply, MaxMessageSize)
	}
}

// serveLoopback serves gs on a loopback port until stop.
func serveLoopback(b *testing.B, gs *grpc.Server) (addr string, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	return lis.Addr().String(), func() { gs.Stop(); <-done }
}

// latestReply is GetLatestReport's reply from d, as the service sends it.
func latestReply(b *testing.B, d *daemon.Daemon) []byte {
	addr, stop := serveLoopback(b, New(&Service{Checks: benchChecks(), Daemon: d}))
	defer stop()
	cc, err := callers.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	reply, err := callers.LatestReportReply(context.Background(), cc)
	if err != nil {
		b.Fatal(err)
	}
	return reply
}

// floor50 and floor99 are the echo's percentiles, closed loop ("") and
// paced ("paced-"), for the ratios of the calls measured after it.
var floor50, floor99 = map[string]time.Duration{}, map[string]time.Duration{}

// report reports the p50 and p99 of lat, sorted (prefix names the mode),
// and, for a call other than the echo, their ratios to the echo's.
func report(b *testing.B, name, prefix string, lat []time.Duration, echo50, echo99 time.Duration) {
	if len(lat) == 0 {
		return
	}
	p50, p99 := callers.Percentile(lat, 50), callers.Percentile(lat, 99)
	b.ReportMetric(float64(p50.Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, prefix+"p99-ms")
	if name == "echo" {
		floor50[prefix], floor99[prefix] = p50, p99
	} else if echo50 > 0 && echo99 > 0 {
		b.ReportMetric(float64(p50)/float64(echo50), prefix+"p50-x-echo")
		b.ReportMetric(float64(p99)/float64(echo99), prefix+"p99-x-echo")
	}
}
