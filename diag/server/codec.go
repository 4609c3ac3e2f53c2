package server

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protov2 "google.golang.org/protobuf/proto"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// PreEncoded is a reply already in its wire form: the server's codec
// sends its bytes as they are. The bytes are shared by every call and
// never written.
type PreEncoded interface {
	PreEncoded() []byte
}

// codec is the server's "proto" codec: gRPC's own, except that a
// PreEncoded reply is sent without marshalling it again, a reply larger
// than pooledLimit is marshalled into bytes of its own, and a message is
// sized once, not twice. Clients see
// an ordinary message; nothing else changes (requests, health, reflection).
type codec struct{ std encoding.CodecV2 }

// pooledLimit is the largest reply marshalled into a buffer of gRPC's
// pool. A pool keeps what it is given until two garbage collections pass
// without a use: a daemon answering Diagnose every few seconds would keep
// a few multi-megabyte buffers (a report at 150,000 pods) alive for good,
// and the garbage collector lets the heap grow in proportion to what is
// live. gRPC's own tiers end at 1 MiB.
const pooledLimit = 1 << 20

func newCodec() codec {
	std := encoding.GetCodecV2(proto.Name)
	if std == nil {
		panic("server: gRPC's proto codec is not registered")
	}
	return codec{std: std}
}

func (c codec) Name() string { return proto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(PreEncoded); ok {
		// A SliceBuffer is never returned to a pool: the bytes stay ours.
		return mem.BufferSlice{mem.SliceBuffer(p.PreEncoded())}, nil
	}
	m, ok := v.(protov2.Message)
	if !ok {
		return c.std.Marshal(v)
	}
	// gRPC's codec, sized once: it would call Size again. UseCachedSize
	// reuses the sizes Size just stored in m.
	n := protov2.Size(m)
	opts := protov2.MarshalOptions{UseCachedSize: true}
	if n > pooledLimit || mem.IsBelowBufferPoolingThreshold(n) {
		b, err := opts.MarshalAppend(make([]byte, 0, n), m)
		if err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	if _, err := opts.MarshalAppend((*buf)[:0], m); err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error { return c.std.Unmarshal(data, v) }

// encodedLatest is a LatestReport with its wire form (and the gzip form
// of that, made once for the callers that ask for gzip: see gzip.go).
type encodedLatest struct {
	msg *pb.LatestReport
	gzipOnce
}

func (e *encodedLatest) PreEncoded() []byte { return e.b }

// latestCache keeps the wire form of the daemon's newest LatestReport:
// the daemon builds that message once per run and never writes it again,
// so it is marshalled once per run, by the first call that sees it.
type latestCache struct {
	mu  sync.Mutex
	enc *encodedLatest
}

// encoded returns msg's wire form, marshalling it unless it is the one
// already cached.
func (c *latestCache) encoded(msg *pb.LatestReport) (*encodedLatest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.enc != nil && c.enc.msg == msg {
		return c.enc, nil
	}
	b, err := protov2.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshal the latest report: %w", err)
	}
	next := &encodedLatest{msg: msg, gzipOnce: gzipOnce{b: b}}
	var prev *gzipOnce
	if c.enc != nil {
		prev = &c.enc.gzipOnce
	}
	replaceGzipReply(prev, &next.gzipOnce)
	c.enc = next
	return c.enc, nil
}

// preEncodeLatest replaces GetLatestReport's reply by its cached wire
// form; every other method passes through.
func (s *Service) preEncodeLatest() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil || info.FullMethod != pb.DiagnosticsService_GetLatestReport_FullMethodName {
			return resp, err
		}
		msg, ok := resp.(*pb.LatestReport)
		if !ok || msg == nil || msg.GetUnchanged() {
			// An unchanged reply is a few bytes, and not the report to
			// keep the wire form of.
			return resp, err
		}
		enc, eerr := s.latest.encoded(msg)
		if eerr != nil {
			// The ordinary path then reports what is wrong with it.
			return resp, nil
		}
		return enc, nil
	}
}
