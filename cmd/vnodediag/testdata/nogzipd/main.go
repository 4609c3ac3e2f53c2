// Command nogzipd is a daemon built without gzip, as a vnodediag daemon
// older than its gzip support is: gRPC refuses a gzipped request to it as
// UNIMPLEMENTED. It serves one report through DiagnoseStream and one
// transition through WatchReports on a loopback port, prints that port's
// address, names on stderr each call it sees begin (refused ones too),
// and exits when its stdin closes.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

type daemon struct {
	pb.UnimplementedDiagnosticsServiceServer
}

func (daemon) DiagnoseStream(_ *pb.DiagnoseRequest, stream grpc.ServerStreamingServer[pb.DiagnoseEvent]) error {
	rep := &pb.Report{RunId: "old", Summary: &pb.Summary{Pass: 1},
		Results: []*pb.Result{{CheckId: "k8s.providerid-format", Status: pb.Status_PASS, Summary: "served by a daemon without gzip"}}}
	return stream.Send(&pb.DiagnoseEvent{Event: &pb.DiagnoseEvent_Report{Report: rep}})
}

func (daemon) WatchReports(_ *pb.WatchReportsRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	return stream.Send(&pb.WatchEvent{Event: &pb.WatchEvent_Transition{Transition: &pb.Transition{
		CheckId: "bgp.session", Object: &pb.Object{Kind: "BGPPeer", Name: "tor-1"},
		OldStatus: pb.Status_PASS, NewStatus: pb.Status_FAIL, Summary: "sent by a daemon without gzip"}}})
}

// begins names each call as it begins, before gRPC looks at its encoding.
type begins struct{}

func (begins) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	fmt.Fprintln(os.Stderr, "call", info.FullMethodName)
	return ctx
}
func (begins) HandleRPC(context.Context, stats.RPCStats)                         {}
func (begins) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (begins) HandleConn(context.Context, stats.ConnStats)                       {}

func main() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gs := grpc.NewServer(grpc.StatsHandler(begins{}))
	pb.RegisterDiagnosticsServiceServer(gs, daemon{})
	fmt.Println(lis.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		gs.Stop()
	}()
	_ = gs.Serve(lis)
}
