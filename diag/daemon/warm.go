package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vnodediag/vnodediag/diag"
)

// Refresher is a provider that keeps its own warm state (the Kubernetes
// watch cache): its Gather reads that state, cheaply, and Refresh
// regathers it, for a fresh Diagnose. The daemon calls Gather of such a
// provider on every run and Refresh only when asked to.
type Refresher interface {
	diag.Provider
	Refresh(ctx context.Context) error
}

// HealthReporter is a provider that knows whether its warm state is
// current (a watch that lost its API server says so long before a read of
// its cache fails). The daemon asks it every refresh interval; an error
// counts as a failed refresh.
type HealthReporter interface {
	Health() error
}

// warm keeps one source's last gathered value for the runs. A plain
// provider is regathered every interval in the background (a Dependent one
// at most every interval, during a run, since it needs the run's inputs);
// a Refresher keeps its own state and is only read.
type warm struct {
	p        diag.Provider
	interval time.Duration
	timeout  time.Duration
	onDone   func(name diag.SourceName, err error, d time.Duration)

	mu       sync.Mutex
	have     bool
	value    any
	err      error
	at       time.Time
	stale    bool          // a fresh run asked for a regather
	inflight chan struct{} // closed when the running gather ends
}

func (w *warm) Name() diag.SourceName { return w.p.Name() }

// self reports whether the provider keeps its own state.
func (w *warm) self() (Refresher, bool) {
	r, ok := w.p.(Refresher)
	return r, ok
}

// Gather returns the warm value; the first call (nothing gathered yet)
// waits for a gather.
func (w *warm) Gather(ctx context.Context) (any, error) {
	if r, ok := w.self(); ok {
		return r.Gather(ctx)
	}
	return w.gather(ctx, func() bool { return w.have && !w.stale }, w.p.Gather)
}

// gather returns the value held if current (nil: never) says it will do;
// else it runs fn, unless a gather is already running, in which case it
// waits for that one; either way it returns what the source holds then.
// current is asked under the same lock that starts the gather, so callers
// that meet (a run and the refresh loop at start) gather once.
func (w *warm) gather(ctx context.Context, current func() bool, fn func(context.Context) (any, error)) (any, error) {
	w.mu.Lock()
	if current != nil && current() {
		defer w.mu.Unlock()
		return w.value, w.err
	}
	if ch := w.inflight; ch != nil {
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.value, w.err
	}
	ch := make(chan struct{})
	w.inflight = ch
	w.mu.Unlock()

	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, w.timeout)
	v, err := fn(gctx)
	cancel()
	d := time.Since(start)

	w.mu.Lock()
	w.have, w.value, w.err, w.at, w.stale = true, v, err, time.Now(), false
	w.inflight = nil
	close(ch)
	w.mu.Unlock()
	if w.onDone != nil {
		w.onDone(w.Name(), err, d)
	}
	return v, err
}

// refresh regathers now (the background loop and a fresh run).
func (w *warm) refresh(ctx context.Context) error {
	if r, ok := w.self(); ok {
		start := time.Now()
		err := r.Refresh(ctx)
		if w.onDone != nil {
			w.onDone(w.Name(), err, time.Since(start))
		}
		return err
	}
	if _, ok := w.p.(diag.Dependent); ok {
		// Regathered by the next run, with that run's inputs.
		w.mu.Lock()
		w.stale = true
		w.mu.Unlock()
		return nil
	}
	_, err := w.gather(ctx, nil, w.p.Gather)
	return err
}

// check is the background loop's tick for a provider that keeps its own
// state: its health, else a read of its state.
func (w *warm) check(ctx context.Context) {
	start := time.Now()
	var err error
	if h, ok := w.p.(HealthReporter); ok {
		err = h.Health()
	} else {
		gctx, cancel := context.WithTimeout(ctx, w.timeout)
		_, err = w.p.Gather(gctx)
		cancel()
	}
	if w.onDone != nil {
		w.onDone(w.Name(), err, time.Since(start))
	}
}

// loop keeps the source warm until ctx ends: a gather at once (unless a
// run, starting at the same moment, has gathered it already), then one
// every interval. Dependent sources are refreshed by the runs instead.
func (w *warm) loop(ctx context.Context) {
	if _, ok := w.p.(diag.Dependent); ok {
		return
	}
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for first := true; ; first = false {
		switch _, self := w.self(); {
		case self:
			w.check(ctx)
		case first:
			_, _ = w.Gather(ctx)
		default:
			_ = w.refresh(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warmDependent is warm for a diag.Dependent provider: it regathers with
// the run's inputs when its value is older than its interval or stale.
type warmDependent struct {
	*warm
	d diag.Dependent
}

func (w warmDependent) Uses() []diag.SourceName { return w.d.Uses() }

func (w warmDependent) GatherFrom(ctx context.Context, in *diag.Inputs) (any, error) {
	return w.gather(ctx, func() bool { return w.have && !w.stale && time.Since(w.at) < w.interval },
		func(ctx context.Context) (any, error) { return w.d.GatherFrom(ctx, in) })
}

// notConfigured reports whether err says the source is not configured
// (which is no failure of its health).
func notConfigured(err error) bool { return errors.Is(err, diag.ErrNotConfigured) }

func wrap(p diag.Provider, interval, timeout time.Duration, onDone func(diag.SourceName, error, time.Duration)) diag.Provider {
	w := &warm{p: p, interval: interval, timeout: timeout, onDone: onDone}
	if d, ok := p.(diag.Dependent); ok {
		return warmDependent{warm: w, d: d}
	}
	return w
}

func warmOf(p diag.Provider) *warm {
	switch w := p.(type) {
	case *warm:
		return w
	case warmDependent:
		return w.warm
	}
	panic(fmt.Sprintf("daemon: %T is not a warm source", p))
}
