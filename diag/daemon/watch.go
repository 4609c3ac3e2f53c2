package daemon

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vnodediag/vnodediag/diag"
	pb "github.com/vnodediag/vnodediag/proto/vnodediag/v1"
)

// watcher is one WatchReports stream: a bounded buffer the periodic runs
// offer events to without ever waiting; what does not fit is dropped and
// counted, and the watcher is told before its next event.
type watcher struct {
	ids     map[string]bool // nil: every check
	ch      chan *pb.WatchEvent
	dropped atomic.Uint64
}

func (w *watcher) wants(checkID string) bool { return w.ids == nil || w.ids[checkID] }

func (w *watcher) offer(ev *pb.WatchEvent) {
	select {
	case w.ch <- ev:
	default:
		w.dropped.Add(1)
	}
}

// Watch sends the transitions of the periodic runs (and a RunDone after
// each run) of the checks only selects (IDs or prefixes; empty: all) to
// send until ctx ends (the error is ctx's as a status), send fails, or the
// daemon stops (UNAVAILABLE). With current, the states of the watched
// checks come first.
func (d *Daemon) Watch(ctx context.Context, only []string, current bool, send func(*pb.WatchEvent) error) error {
	w := &watcher{}
	if len(only) > 0 {
		sel, err := diag.Select(d.checks, only, nil)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		w.ids = map[string]bool{}
		for _, c := range sel {
			w.ids[c.ID] = true
		}
	}
	d.mu.Lock()
	select {
	case <-d.done:
		d.mu.Unlock()
		return status.Error(codes.Unavailable, "the daemon is shutting down")
	default:
	}
	cfg := d.gen.cfg
	if len(d.watchers) >= cfg.MaxWatchers {
		d.mu.Unlock()
		return busy(cfg.Interval.D(), "%d watch streams are open, the daemon's bound (daemon.maxWatchers)", cfg.MaxWatchers)
	}
	w.ch = make(chan *pb.WatchEvent, cfg.WatchBuffer)
	d.watchers[w] = struct{}{}
	var states []*pb.CheckState
	if current {
		states = d.statesLocked(w.wants)
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.watchers, w)
		d.mu.Unlock()
	}()

	for _, st := range states {
		if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Current{Current: st}}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-d.done:
			return status.Error(codes.Unavailable, "the daemon is shutting down")
		case ev := <-w.ch:
			if n := w.dropped.Swap(0); n > 0 {
				if err := send(&pb.WatchEvent{Event: &pb.WatchEvent_Dropped{Dropped: n}}); err != nil {
					return err
				}
			}
			if err := send(ev); err != nil {
				return err
			}
		}
	}
}

// Watchers is the number of open watch streams.
func (d *Daemon) Watchers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watchers)
}
