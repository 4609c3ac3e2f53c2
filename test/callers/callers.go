// Package callers drives many concurrent gRPC callers of the daemon, closed
// loop or paced, and gives their latency percentiles. The daemon's
// GetLatestReport benchmark (`make bench-daemon`, a 200-result report in
// the benchmark's own process) and the large benchmark (`make bench-large`,
// the real `vnodediag serve` at 5,000 nodes) measure with it alike.
package callers

import (
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
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

// Percentile is the q-th percentile (0 < q <= 100) of sorted latencies:
// the smallest that at least q % of them do not exceed. Zero for none.
func Percentile(sorted []time.Duration, q int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[max(0, (len(sorted)*q+99)/100-1)]
}

// Raw is a reply kept as its bytes, undecoded: what the server costs a
// caller without the caller's decoding.
type Raw struct{ Bytes []byte }

// RawCodec marshals requests as gRPC's proto codec does and keeps a *Raw
// reply's bytes; use it with grpc.ForceCodecV2.
type RawCodec struct{}

// Marshal encodes a request.
func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal keeps a *Raw's bytes, or decodes a message.
func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*Raw); ok {
		r.Bytes = data.Materialize()
		return nil
	}
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// Name is the proto codec's name, so the server decodes the request.
func (RawCodec) Name() string { return "proto" }

var _ encoding.CodecV2 = RawCodec{}
