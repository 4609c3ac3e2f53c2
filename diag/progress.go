package diag

import (
	"context"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
	"google.golang.org/protobuf/proto"
)

// ProgressKind says what a Progress event reports.
type ProgressKind int

// The kinds of progress a run reports, in the order a source or check
// reports them.
const (
	// SourceStarted: the runner started gathering Source.
	SourceStarted ProgressKind = iota + 1
	// SourceUpdate: the source says how far it got (pages listed, a BGP
	// peer's state while the observer waits, DNS queries answered).
	SourceUpdate
	// SourceDone: the source was gathered, or failed; Status says which.
	SourceDone
	// CheckDone: a check finished; Results are its results, redacted.
	CheckDone
)

// Progress is one event of a run in progress. Consumers (the terminal's
// progress line, the daemon's DiagnoseStream) must not keep or modify what
// it points to beyond the call: Results and Status are copies.
type Progress struct {
	Kind   ProgressKind
	Source SourceName
	// Message is the source's own words for an update: "Active 4s/30s",
	// "42/86 queries". Empty for the runner's own events.
	Message string
	// Done and Total count the source's work when it knows them (pods
	// listed of the server's estimate); Total 0 means unknown.
	Done, Total int64
	// Status is the source's status on SourceDone.
	Status *pb.SourceStatus
	// Check and Results are set on CheckDone.
	Check   string
	Results []*pb.Result
}

type progressKey struct{}

// WithProgress returns a context whose runs, sources and checks report
// their progress to fn. fn is called from many goroutines at once and must
// be quick; it must not block the run.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ReportProgress reports ev to the function WithProgress put in ctx, if any.
// Sources call it for SourceUpdate events, with their own Source name.
func ReportProgress(ctx context.Context, ev Progress) {
	if fn, ok := ctx.Value(progressKey{}).(func(Progress)); ok && fn != nil {
		fn(ev)
	}
}

// Reporting reports whether anyone listens to ctx's progress, so a source
// can skip formatting updates nobody reads.
func Reporting(ctx context.Context) bool {
	fn, ok := ctx.Value(progressKey{}).(func(Progress))
	return ok && fn != nil
}

func reportCheckDone(ctx context.Context, c Check, out []*pb.Result) {
	if !Reporting(ctx) {
		return
	}
	cp := make([]*pb.Result, len(out))
	for i, res := range out {
		cp[i] = proto.Clone(res).(*pb.Result)
	}
	ReportProgress(ctx, Progress{Kind: CheckDone, Check: c.ID, Results: cp})
}
