package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vnodediag/vnodediag/diag"
)

// NewProvider returns the one-shot BGP source for `diagnose`: each Gather
// starts an observer, waits until every session is Established and has
// sent End-of-RIB (or establishTimeout passes), reads the table and stops.
// A nil cfg gives a provider whose checks SKIP; an invalid cfg is an error
// now, before anything runs.
func NewProvider(cfg *Config, logger *slog.Logger) (diag.Provider, error) {
	if cfg == nil {
		return notConfigured{diag.SourceBGP, "no bgp section"}, nil
	}
	if _, err := NewObserver(cfg, logger); err != nil {
		return nil, err
	}
	return &oneShot{cfg: cfg, log: logger}, nil
}

type oneShot struct {
	cfg *Config
	log *slog.Logger
}

func (p *oneShot) Name() diag.SourceName { return diag.SourceBGP }

// Gather returns within ctx: when ctx ends first it returns ctx's error at
// once and the speaker stops in the background (bounded by stopTimeout).
// A run cancelled before the source starts opens nothing.
func (p *oneShot) Gather(ctx context.Context) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bgp: not started: %w", err)
	}
	o, err := NewObserver(p.cfg, p.log)
	if err != nil {
		return nil, err
	}
	type result struct {
		t   *Table
		err error
	}
	res := make(chan result, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t, err := o.collect(ctx)
		res <- result{t, err}
		o.Stop()
	}()
	select {
	case r := <-res:
		// The table is read; stopping the speaker may use what is left.
		select {
		case <-stopped:
		case <-ctx.Done():
		}
		return r.t, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("bgp: %w", ctx.Err())
	}
}

// collect starts the observer, waits until it is ready (or the establish
// timeout, shortened to leave time for the read) and reads the table.
func (o *Observer) collect(ctx context.Context) (*Table, error) {
	if err := o.Start(ctx); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, waitBudget(ctx, o.s.establishTimeout))
	defer cancel()
	// Not being ready by the deadline is a finding (bgp.session says which
	// peer and why), not a source failure.
	_ = o.WaitReady(wctx)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bgp: %w", err)
	}
	return o.Table(ctx)
}

// waitBudget is the establish timeout, shortened so that reading the table
// still fits in the caller's deadline.
func waitBudget(ctx context.Context, want time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return want
	}
	left := time.Until(dl)
	if reserve := left / 5; left-reserve < want {
		return max(left-reserve, 0)
	}
	return want
}

// Provider returns the daemon's BGP source: every Gather reads the latest
// table of this running observer.
func (o *Observer) Provider() diag.Provider { return observerProvider{o} }

type observerProvider struct{ o *Observer }

func (p observerProvider) Name() diag.SourceName { return diag.SourceBGP }

func (p observerProvider) Gather(ctx context.Context) (any, error) { return p.o.Table(ctx) }

// notConfigured is a source the configuration leaves out.
type notConfigured struct {
	name   diag.SourceName
	reason string
}

func (n notConfigured) Name() diag.SourceName { return n.name }

func (n notConfigured) Gather(context.Context) (any, error) {
	return nil, diag.NotConfigured("%s", n.reason)
}
