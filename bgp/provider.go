package bgp

import (
	"context"
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

func (p *oneShot) Gather(ctx context.Context) (any, error) {
	o, err := NewObserver(p.cfg, p.log)
	if err != nil {
		return nil, err
	}
	if err := o.Start(ctx); err != nil {
		return nil, err
	}
	defer o.Stop()
	wctx, cancel := context.WithTimeout(ctx, waitBudget(ctx, o.s.establishTimeout))
	defer cancel()
	// Not being ready by the deadline is a finding (bgp.session says which
	// peer and why), not a source failure.
	_ = o.WaitReady(wctx)
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
