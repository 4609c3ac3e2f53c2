package callers

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 200; i++ {
		lat = append(lat, time.Duration(i))
	}
	for _, c := range []struct {
		q    int
		want time.Duration
	}{{50, 100}, {99, 198}, {100, 200}, {1, 2}} {
		if got := Percentile(lat, c.q); got != c.want {
			t.Errorf("p%d of 1..200 = %d, want %d", c.q, got, c.want)
		}
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %d", got)
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("p99 of none = %d", got)
	}
}

func TestDrive(t *testing.T) {
	var n atomic.Int64
	lat, err := Drive(4, 3, func(int) error { n.Add(1); return nil }, Paced(time.Now(), time.Millisecond, 4))
	if err != nil || len(lat) != 12 || n.Load() != 12 {
		t.Fatalf("Drive: %d latencies, %d calls, %v", len(lat), n.Load(), err)
	}
	for i := 1; i < len(lat); i++ {
		if lat[i] < lat[i-1] {
			t.Fatalf("latencies not sorted: %v", lat)
		}
	}
	boom := errors.New("boom")
	if _, err := Drive(3, 5, func(i int) error {
		if i == 2 {
			return boom
		}
		return nil
	}, nil); !errors.Is(err, boom) {
		t.Fatalf("Drive with a failing client: %v", err)
	}
}

func TestPaced(t *testing.T) {
	start := time.Unix(100, 0)
	due := Paced(start, time.Second, 4)
	if got := due(0, 0); !got.Equal(start) {
		t.Errorf("first call at %v", got)
	}
	if got := due(2, 3); !got.Equal(start.Add(3*time.Second + 500*time.Millisecond)) {
		t.Errorf("client 2's fourth call at %v", got)
	}
}

func TestEcho(t *testing.T) {
	reply, err := proto.Marshal(&pb.LatestReport{Report: &pb.Report{RunId: "run-1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		reply []byte
		ok    bool
	}{{"a GetLatestReport reply", reply, true}, {"bytes that are not one", []byte{0xff, 0xff, 0xff}, false}} {
		t.Run(c.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewEchoServer(c.reply)
			go func() { _ = s.Serve(l) }()
			defer s.Stop()
			cc, err := Dial(l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Echo decodes what it is sent: a reply that is not a
			// GetLatestReport reply fails it.
			err = Echo(ctx, cc)
			t.Logf("Echo: %v", err)
			if (err == nil) != c.ok {
				t.Fatalf("Echo: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// latestServer answers GetLatestReport as the daemon does, for run, and
// keeps the run IDs its callers named.
type latestServer struct {
	pb.UnimplementedDiagnosticsServiceServer
	run   atomic.Value // string
	named chan string
}

func (s *latestServer) GetLatestReport(_ context.Context, req *pb.GetLatestReportRequest) (*pb.LatestReport, error) {
	s.named <- req.GetKnownRunId()
	run := s.run.Load().(string)
	if req.GetKnownRunId() == run {
		return &pb.LatestReport{Unchanged: true}, nil
	}
	return &pb.LatestReport{Report: &pb.Report{RunId: run}}, nil
}

// A Poller names the run its connection last received, on each
// connection apart, and takes a new run's report when there is one.
func TestPoller(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &latestServer{named: make(chan string, 16)}
	srv.run.Store("run-1")
	gs := grpc.NewServer()
	pb.RegisterDiagnosticsServiceServer(gs, srv)
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	var conns [2]*grpc.ClientConn
	for i := range conns {
		if conns[i], err = Dial(l.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	poll := Poller()
	for _, step := range []struct {
		conn  int
		run   string
		named string
	}{
		{0, "run-1", ""}, {0, "run-1", "run-1"}, {1, "run-1", ""},
		{0, "run-2", "run-1"}, {0, "run-2", "run-2"}, {1, "run-2", "run-1"}, {1, "run-2", "run-2"},
	} {
		srv.run.Store(step.run)
		if err := poll(ctx, conns[step.conn]); err != nil {
			t.Fatal(err)
		}
		if got := <-srv.named; got != step.named {
			t.Errorf("connection %d, server at %s: named %q, want %q", step.conn, step.run, got, step.named)
		}
	}
}
