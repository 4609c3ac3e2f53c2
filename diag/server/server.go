// Package server is the gRPC face of the daemon: DiagnosticsService
// (Diagnose, ListChecks) over the engine, plus the standard health service
// and server reflection so that grpcurl and load balancers work.
package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// Service implements pb.DiagnosticsServiceServer.
type Service struct {
	pb.UnimplementedDiagnosticsServiceServer
	Checks []diag.Check
	Runner *diag.Runner
	Log    *slog.Logger
}

// Diagnose runs the selected checks once. Unknown IDs are InvalidArgument
// with the list of valid ones.
func (s *Service) Diagnose(ctx context.Context, req *pb.DiagnoseRequest) (*pb.Report, error) {
	sel, err := diag.Select(s.Checks, req.GetOnly(), req.GetSkip())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	start := time.Now()
	rep := s.Runner.Run(ctx, sel)
	if s.Log != nil {
		sm := rep.GetSummary()
		s.Log.Info("diagnose", "run", rep.RunId, "checks", len(sel), "pass", sm.Pass, "warn", sm.Warn,
			"fail", sm.Fail, "error", sm.Error, "skip", sm.Skip, "duration", time.Since(start))
	}
	return rep, nil
}

// ListChecks returns the catalog.
func (s *Service) ListChecks(context.Context, *pb.ListChecksRequest) (*pb.ListChecksResponse, error) {
	resp := &pb.ListChecksResponse{}
	for _, c := range s.Checks {
		resp.Checks = append(resp.Checks, c.Info())
	}
	return resp, nil
}

// New returns a gRPC server with the service, health (SERVING) and reflection.
func New(svc *Service, opts ...grpc.ServerOption) *grpc.Server {
	gs := grpc.NewServer(opts...)
	pb.RegisterDiagnosticsServiceServer(gs, svc)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(pb.DiagnosticsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}
