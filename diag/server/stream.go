package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Limits of every connection, besides MaxMessageSize for replies.
const (
	// MaxRequestSize is the largest request the daemon reads: requests
	// are a selection of check IDs.
	MaxRequestSize = 1 << 20
	// MaxStreamsPerConn bounds the concurrent calls of one connection.
	MaxStreamsPerConn = 128
	// KeepaliveMinTime is the shortest keepalive ping interval a client
	// may use; one pinging faster is sent GOAWAY.
	KeepaliveMinTime = 10 * time.Second
)

// limitOptions are the transport limits New puts on every server.
func limitOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRequestSize),
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(connectionKeepalive),
	}
}

// connectionKeepalive closes a connection without a call for 30 minutes
// (GOAWAY), and one whose peer is gone: after 2 minutes without a frame
// the server pings, and closes the connection if the ping is not answered
// within 20 s. A variable for the tests, which shorten it.
var connectionKeepalive = keepalive.ServerParameters{
	MaxConnectionIdle: 30 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second,
}

// capDeadline bounds ctx by the daemon's longest call, then keeps the
// reply margin of the (capped) deadline.
func (s *Service) capDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	cancels := []context.CancelFunc{}
	if s.Daemon != nil {
		if limit := s.Daemon.CallTimeout(); limit > 0 {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > limit {
				var c context.CancelFunc
				ctx, c = context.WithTimeout(ctx, limit)
				cancels = append(cancels, c)
			}
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		margin := min(replyMargin, time.Until(dl)/10)
		var c context.CancelFunc
		ctx, c = context.WithDeadline(ctx, dl.Add(-margin))
		cancels = append(cancels, c)
	}
	return ctx, func() {
		for _, c := range cancels {
			c()
		}
	}
}

// run runs sel: on the daemon's warm state when there is a daemon, else a
// full gather.
func (s *Service) run(ctx context.Context, sel []diag.Check, fresh bool) (*pb.Report, error) {
	if s.Daemon != nil {
		return s.Daemon.Diagnose(ctx, sel, fresh)
	}
	return s.Runner.Run(ctx, sel), nil
}

// GetLatestReport returns the newest periodic report, or only that it is
// still the run the caller knows.
func (s *Service) GetLatestReport(_ context.Context, req *pb.GetLatestReportRequest) (*pb.LatestReport, error) {
	if s.Daemon == nil {
		return nil, status.Error(codes.Unimplemented, "this server runs no periodic runs")
	}
	latest, err := s.Daemon.Latest()
	if err != nil {
		return nil, err
	}
	if id := req.GetKnownRunId(); id != "" && id == latest.GetReport().GetRunId() {
		return &pb.LatestReport{Unchanged: true}, nil
	}
	return latest, nil
}

// ListHistory returns the kept periodic runs, newest first.
func (s *Service) ListHistory(_ context.Context, req *pb.ListHistoryRequest) (*pb.ListHistoryResponse, error) {
	if s.Daemon == nil {
		return nil, status.Error(codes.Unimplemented, "this server runs no periodic runs")
	}
	if req.GetLimit() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: want 0 (all) or more", req.GetLimit())
	}
	return &pb.ListHistoryResponse{Reports: s.Daemon.History(int(req.GetLimit()), req.GetResults())}, nil
}

// WatchReports streams the transitions of the periodic runs.
func (s *Service) WatchReports(req *pb.WatchReportsRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	if s.Daemon == nil {
		return status.Error(codes.Unimplemented, "this server runs no periodic runs")
	}
	return s.Daemon.Watch(stream.Context(), req.GetOnly(), req.GetCurrent(), stream.Send)
}

// maxQueuedUpdates bounds the source updates a slow DiagnoseStream caller
// may fall behind by; past it updates are dropped (results never are:
// there is one event per check).
const maxQueuedUpdates = 1024

// DiagnoseStream is Diagnose with progress: the sources' events, each
// check's results as it finishes, then the report.
func (s *Service) DiagnoseStream(req *pb.DiagnoseRequest, stream grpc.ServerStreamingServer[pb.DiagnoseEvent]) error {
	sel, err := diag.Select(s.Checks, req.GetOnly(), req.GetSkip())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := s.capDeadline(stream.Context())
	defer cancel()

	var mu sync.Mutex
	var queue []*pb.DiagnoseEvent
	updates := 0
	wake := make(chan struct{}, 1)
	ctx = diag.WithProgress(ctx, func(p diag.Progress) {
		ev := ProgressEvent(p)
		if ev == nil {
			return
		}
		mu.Lock()
		if p.Kind == diag.SourceUpdate {
			if updates >= maxQueuedUpdates {
				mu.Unlock()
				return
			}
			updates++
		}
		queue = append(queue, ev)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	type outcome struct {
		rep *pb.Report
		err error
	}
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		var o outcome
		defer func() {
			// The run's own goroutine: RecoverStream cannot see its panic.
			if v := recover(); v != nil {
				o = outcome{nil, recovered(s.log(), "/"+pb.DiagnosticsService_ServiceDesc.ServiceName+"/DiagnoseStream", v)}
			}
			done <- o
		}()
		o.rep, o.err = s.run(ctx, sel, req.GetFresh())
	}()
	flush := func() error {
		mu.Lock()
		q := queue
		queue, updates = nil, 0
		mu.Unlock()
		for _, ev := range q {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case <-wake:
			if err := flush(); err != nil {
				cancel()
				<-done
				return err
			}
		case o := <-done:
			if o.err != nil {
				return o.err
			}
			if err := flush(); err != nil {
				return err
			}
			diag.ValidReport(o.rep)
			sm := o.rep.GetSummary()
			s.log().Info("diagnose stream", "run", o.rep.GetRunId(), "checks", len(sel), "fresh", req.GetFresh(), "pass", sm.GetPass(),
				"warn", sm.GetWarn(), "fail", sm.GetFail(), "error", sm.GetError(), "skip", sm.GetSkip(), "duration", time.Since(start))
			return stream.Send(&pb.DiagnoseEvent{Event: &pb.DiagnoseEvent_Report{Report: o.rep}})
		}
	}
}

// ProgressEvent is a progress event as the stream carries it; nil for a
// kind the stream does not carry.
func ProgressEvent(p diag.Progress) *pb.DiagnoseEvent {
	switch p.Kind {
	case diag.SourceStarted, diag.SourceUpdate, diag.SourceDone:
		kind := map[diag.ProgressKind]pb.SourceProgress_Kind{
			diag.SourceStarted: pb.SourceProgress_STARTED, diag.SourceUpdate: pb.SourceProgress_UPDATE, diag.SourceDone: pb.SourceProgress_DONE,
		}[p.Kind]
		return &pb.DiagnoseEvent{Event: &pb.DiagnoseEvent_Source{Source: &pb.SourceProgress{
			Kind: kind, Source: string(p.Source), Message: diag.RedactURLs(p.Message), Done: p.Done, Total: p.Total, Status: p.Status,
		}}}
	case diag.CheckDone:
		return &pb.DiagnoseEvent{Event: &pb.DiagnoseEvent_Check{Check: &pb.CheckResults{CheckId: p.Check, Results: p.Results}}}
	}
	return nil
}

// ProgressOf is the diag.Progress a stream event stands for, for a client
// that renders progress; ok is false for the report.
func ProgressOf(ev *pb.DiagnoseEvent) (p diag.Progress, ok bool) {
	switch e := ev.GetEvent().(type) {
	case *pb.DiagnoseEvent_Source:
		sp := e.Source
		kind := map[pb.SourceProgress_Kind]diag.ProgressKind{
			pb.SourceProgress_STARTED: diag.SourceStarted, pb.SourceProgress_UPDATE: diag.SourceUpdate, pb.SourceProgress_DONE: diag.SourceDone,
		}[sp.GetKind()]
		if kind == 0 {
			return p, false
		}
		return diag.Progress{Kind: kind, Source: diag.SourceName(sp.GetSource()), Message: sp.GetMessage(), Done: sp.GetDone(),
			Total: sp.GetTotal(), Status: sp.GetStatus()}, true
	case *pb.DiagnoseEvent_Check:
		return diag.Progress{Kind: diag.CheckDone, Check: e.Check.GetCheckId(), Results: e.Check.GetResults()}, true
	}
	return p, false
}
