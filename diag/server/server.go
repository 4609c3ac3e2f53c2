// Package server is the gRPC face of the daemon: DiagnosticsService
// (Diagnose, ListChecks; with a daemon.Daemon also DiagnoseStream,
// GetLatestReport, WatchReports, ListHistory) over the engine, plus the
// standard health service and server reflection so that grpcurl and load
// balancers work. Every server has the transport limits of limitOptions:
// request size, streams per connection, keepalive enforcement.
//
// A panic in a handler is recovered into codes.Internal and logged; it
// never takes the daemon down. Replies may be up to MaxMessageSize, which
// is also what the CLI accepts. A caller that sends gzip gets gzip back;
// GetLatestReport's reply is marshalled, and gzipped, once per run (codec.go,
// gzip.go).
package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	"github.com/vnodediag/vnodediag/diag/daemon"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// MaxMessageSize is the largest message the daemon sends and the CLI
// receives (gRPC's default, 4 MiB, is less than the report of a large
// cluster). One constant for both sides: a report the daemon can send is
// one the CLI can read.
const MaxMessageSize = 64 << 20

// Runner runs the selected checks once; *diag.Runner is one.
type Runner interface {
	Run(ctx context.Context, checks []diag.Check) *pb.Report
}

// Service implements pb.DiagnosticsServiceServer.
type Service struct {
	pb.UnimplementedDiagnosticsServiceServer
	Checks []diag.Check
	Runner Runner
	Log    *slog.Logger
	// Daemon, when set, keeps the sources warm and runs the periodic
	// runs: Diagnose reads its warm state (fresh: regathers, shared per
	// selection, bounded), GetLatestReport, WatchReports and ListHistory
	// answer from it, its health server is the one served, and its
	// MaxCallTimeout caps every call's deadline. Without it Diagnose
	// gathers every time and the periodic methods are UNIMPLEMENTED.
	Daemon *daemon.Daemon

	latest latestCache // GetLatestReport's reply in wire form
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// replyMargin is the part of the caller's deadline kept for sending the
// report back, at most: a run that hits the caller's deadline still
// returns its partial report before the caller gives up.
const replyMargin = 500 * time.Millisecond

// Diagnose runs the selected checks once. What diag.Select refuses
// (unknown IDs, a selection that leaves no check) is InvalidArgument. The run ends a little before
// the caller's deadline, so that the partial report reaches the caller.
func (s *Service) Diagnose(ctx context.Context, req *pb.DiagnoseRequest) (*pb.Report, error) {
	sel, err := diag.Select(s.Checks, req.GetOnly(), req.GetSkip())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := s.capDeadline(ctx)
	defer cancel()
	start := time.Now()
	done := false
	defer func() {
		// Logged even when the run panics (the interceptor then logs the
		// panic itself and answers INTERNAL).
		if !done {
			s.log().Error("diagnose did not complete", "checks", len(sel), "only", req.GetOnly(), "skip", req.GetSkip(),
				"duration", time.Since(start))
		}
	}()
	rep, err := s.run(ctx, sel, req.GetFresh())
	if err != nil {
		done = true
		s.log().Warn("diagnose refused", "checks", len(sel), "fresh", req.GetFresh(), "error", err)
		return nil, err
	}
	// Protobuf strings must be UTF-8, or the reply cannot be marshalled.
	diag.ValidReport(rep)
	sm := rep.GetSummary()
	s.log().Info("diagnose", "run", rep.GetRunId(), "checks", len(sel), "pass", sm.GetPass(), "warn", sm.GetWarn(),
		"fail", sm.GetFail(), "error", sm.GetError(), "skip", sm.GetSkip(), "duration", time.Since(start))
	done = true
	return rep, nil
}

// ListChecks returns the catalog.
func (s *Service) ListChecks(context.Context, *pb.ListChecksRequest) (*pb.ListChecksResponse, error) {
	return diag.Catalog(s.Checks), nil
}

// New returns a gRPC server with the service, health (SERVING) and
// reflection, panic recovery on every method and MaxMessageSize as its send
// limit; opts come after these and may override them. GetLatestReport's
// reply is marshalled once per periodic run and its bytes sent as they
// are to every caller (see PreEncoded).
func New(svc *Service, opts ...grpc.ServerOption) *grpc.Server {
	log := svc.log()
	base := append(limitOptions(),
		grpc.MaxSendMsgSize(MaxMessageSize),
		grpc.ChainUnaryInterceptor(RecoverUnary(log), svc.preEncodeLatest()),
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ChainStreamInterceptor(RecoverStream(log)),
	)
	gs := grpc.NewServer(append(base, opts...)...)
	pb.RegisterDiagnosticsServiceServer(gs, svc)
	if svc.Daemon != nil {
		healthpb.RegisterHealthServer(gs, svc.Daemon.Health())
	} else {
		hs := health.NewServer()
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus(pb.DiagnosticsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
	}
	reflection.Register(gs)
	return gs
}

// RecoverUnary turns a panic in a unary handler into codes.Internal and
// logs it with its stack. The caller learns that the daemon failed, not
// the panic's text, which may quote data.
func RecoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				resp, err = nil, recovered(log, info.FullMethod, v)
			}
		}()
		return handler(ctx, req)
	}
}

// RecoverStream is RecoverUnary for streaming methods (reflection today).
func RecoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = recovered(log, info.FullMethod, v)
			}
		}()
		return handler(srv, ss)
	}
}

func recovered(log *slog.Logger, method string, v any) error {
	log.Error("grpc handler panicked", "method", method, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s; the daemon logged it", method)
}
