package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vnodediag/vnodediag/diag"
)

// NewProvider returns the BGP source. For one-shot runs (`diagnose`) each
// Gather starts an observer, waits until every session is Established and
// has sent End-of-RIB (or establishTimeout passes), reads the table and
// stops. Under the daemon (env.Daemon) the observer starts now and keeps
// its sessions up until the provider is closed, and each Gather reads its
// latest table (uptime, flaps, last error). A nil cfg (no `bgp` section)
// leaves the source out; an invalid cfg is an error now.
func NewProvider(cfg *Config, env diag.Env) (diag.Provider, error) {
	if cfg == nil {
		return Source.Unconfigured("no bgp section in the configuration: add bgp.localASN, bgp.routerID and the peers to observe"), nil
	}
	if _, err := cfg.settings(); err != nil {
		return nil, err
	}
	if !env.Daemon {
		return &oneShot{cfg: cfg, log: env.Logger()}, nil
	}
	o, err := NewObserver(cfg, env.Logger())
	if err != nil {
		return nil, err
	}
	if err := o.Start(env.Context()); err != nil {
		o.Stop()
		return nil, fmt.Errorf("bgp observer: %w", err)
	}
	return observerProvider{o}, nil
}

type oneShot struct {
	cfg *Config
	log *slog.Logger
}

func (p *oneShot) Name() diag.SourceName { return Source.Name() }

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

// observerProvider is the daemon's BGP source: every Gather reads the
// latest table of the running observer; Close stops it.
type observerProvider struct{ o *Observer }

func (p observerProvider) Name() diag.SourceName { return Source.Name() }

func (p observerProvider) Gather(ctx context.Context) (any, error) { return p.o.Table(ctx) }

func (p observerProvider) Close() { p.o.Stop() }
