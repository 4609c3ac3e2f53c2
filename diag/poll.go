package diag

import (
	"context"
	"errors"

	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// PollEvery is how many iterations of a heavy loop pass between two looks at
// its context. Go cannot stop a goroutine from outside: a check past its
// deadline is abandoned by the runner but runs on until its own code looks at
// ctx. Loops over pods and nodes therefore poll, not on every iteration
// (ctx.Err takes a lock), but often enough that a check stops within
// PollEvery iterations of its deadline.
const PollEvery = 1024

// Poll tells a heavy loop when to stop. Call Stop once per iteration; it
// looks at the context on the first call and every PollEvery calls after,
// and stays true once the context has ended. A Poll belongs to one
// goroutine.
type Poll struct {
	ctx     context.Context
	n       int
	stopped bool
}

// NewPoll returns a Poll of ctx.
func NewPoll(ctx context.Context) *Poll { return &Poll{ctx: ctx} }

// Stop reports whether the loop must stop because the context has ended.
func (p *Poll) Stop() bool {
	if p.stopped {
		return true
	}
	p.n++
	if p.n%PollEvery == 1 && p.ctx.Err() != nil {
		p.stopped = true
	}
	return p.stopped
}

// Stopped is the one result of a check whose context ended before it had
// judged everything: ERROR, never a partial PASS or FAIL.
func Stopped(ctx context.Context) []*pb.Result {
	reason := "canceled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = "deadline exceeded"
	}
	return []*pb.Result{Errorf("stopped: %s before the check had judged everything", reason)}
}
