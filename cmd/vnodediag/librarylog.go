package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/klog/v2"

	"github.com/vnodediag/vnodediag/diag"
)

// libraryLogs sends the Kubernetes client library's log (klog: a watch
// that fails, client-side throttling) through h, the handler of
// vnodediag's own log, so that it follows --log-level and --log-format
// instead of writing its own text lines to stderr, with the userinfo of
// every URL taken out of its message and values: the library logs the
// errors of its requests as they come.
//
// klog's logger is a global its goroutines read without a lock, so it is
// set once per process, to a forwarder; a later call only swaps the
// handler the forwarder sends to.
func libraryLogs(h slog.Handler) {
	h = redacting{h}.WithAttrs([]slog.Attr{slog.String("logger", "client-go")})
	libraryTarget.Store(&h)
	libraryOnce.Do(func() { klog.SetSlogLogger(slog.New(forward{})) })
}

var (
	libraryTarget atomic.Pointer[slog.Handler]
	libraryOnce   sync.Once
)

// forward is the handler klog holds: it sends each record to the current
// libraryTarget, with the attributes and groups the library added on the
// way (ops, in order).
type forward struct {
	ops []func(slog.Handler) slog.Handler
}

func (f forward) target() slog.Handler {
	h := slog.DiscardHandler
	if p := libraryTarget.Load(); p != nil {
		h = *p
	}
	for _, op := range f.ops {
		h = op(h)
	}
	return h
}

// Enabled asks the target itself: attributes and groups do not change
// which levels a handler takes.
func (f forward) Enabled(ctx context.Context, l slog.Level) bool {
	if p := libraryTarget.Load(); p != nil {
		return (*p).Enabled(ctx, l)
	}
	return false
}

func (f forward) Handle(ctx context.Context, r slog.Record) error { return f.target().Handle(ctx, r) }

func (f forward) WithAttrs(as []slog.Attr) slog.Handler {
	return forward{ops: append(slices.Clip(f.ops), func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}

func (f forward) WithGroup(name string) slog.Handler {
	return forward{ops: append(slices.Clip(f.ops), func(h slog.Handler) slog.Handler { return h.WithGroup(name) })}
}

// redacting is a handler that takes URL userinfo out of every message
// and value before h sees them.
type redacting struct{ h slog.Handler }

func (r redacting) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redacting) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, diag.RedactURLs(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redacting) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = redactAttr(a)
	}
	return redacting{r.h.WithAttrs(out)}
}

func (r redacting) WithGroup(name string) slog.Handler { return redacting{r.h.WithGroup(name)} }

// redactAttr is a with its text redacted: strings, errors and other
// values as the text they print, groups member by member.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, diag.RedactURLs(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, m := range g {
			out[i] = redactAttr(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, diag.RedactURLs(err.Error()))
		}
		return slog.String(a.Key, diag.RedactURLs(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
