package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag/server"
)

// dialDaemon connects to the daemon at addr (--server) as sec says, for
// replies up to the largest the daemon sends, asked gzipped (gzipCalls).
func dialDaemon(addr string, sec *server.ClientSecurity) (*grpc.ClientConn, error) {
	opts, err := sec.DialOptions()
	if err != nil {
		return nil, usageErr("--server %s: %v", addr, err)
	}
	gz := &gzipCalls{}
	conn, err := grpc.NewClient(addr, append(opts,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(server.MaxMessageSize)),
		grpc.WithChainStreamInterceptor(gz.stream))...)
	if err != nil {
		return nil, usageErr("--server %q: %v", addr, err)
	}
	return conn, nil
}

// gzipCalls asks the daemon for gzipped replies on its streams
// (DiagnoseStream, WatchReports): the report of a large cluster is some
// hundred kilobytes and a few percent of that gzipped, and --server is
// often reached over a VPN or the leased line itself. In gRPC a caller
// asks by sending its request gzipped. A daemon built without gzip refuses
// such a call as UNIMPLEMENTED before its handler runs; the call is then
// made again without, and so are the connection's later calls. Unary
// calls go plain: the CLI makes one (Diagnose) only to a daemon older than
// DiagnoseStream, which is older than its gzip too.
type gzipCalls struct{ off atomic.Bool }

// refusedGzip says whether err is a server's refusal of the request's
// encoding.
func refusedGzip(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unimplemented && strings.Contains(st.Message(), "grpc-encoding")
}

func (g *gzipCalls) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if g.off.Load() || desc.ClientStreams {
		return streamer(ctx, desc, cc, method, opts...)
	}
	s, err := streamer(ctx, desc, cc, method, append(opts, grpc.UseCompressor(gzip.Name))...)
	if err != nil {
		return nil, err
	}
	return &gzipStream{ClientStream: s, g: g, method: method, plain: func() (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, opts...)
	}}, nil
}

// gzipStream is a server-streaming call asked gzipped. Its one request is
// kept until the first reply: if that is the daemon's refusal of gzip,
// the call is made again without (plain) and goes on as that one.
type gzipStream struct {
	grpc.ClientStream
	g        *gzipCalls
	method   string
	plain    func() (grpc.ClientStream, error)
	req      any
	received bool
}

func (s *gzipStream) SendMsg(m any) error {
	s.req = m
	err := s.ClientStream.SendMsg(m)
	if err == io.EOF {
		// The daemon ended the call already (a refusal, say): RecvMsg
		// has its status.
		return nil
	}
	return err
}

func (s *gzipStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	first := !s.received
	s.received = true
	if !first || s.req == nil || !refusedGzip(err) {
		return err
	}
	if s.g.off.CompareAndSwap(false, true) {
		slog.Debug("the daemon refused a gzipped call (it predates gzip); its calls go uncompressed", "method", s.method)
	}
	plain, err := s.plain()
	if err != nil {
		return err
	}
	s.ClientStream = plain
	if err := plain.SendMsg(s.req); err != nil && err != io.EOF {
		return err
	}
	if err := plain.CloseSend(); err != nil {
		return err
	}
	return plain.RecvMsg(m)
}
