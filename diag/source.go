package diag

import (
	"context"
	"errors"
	"fmt"
)

// SourceName names a source of facts a check reads ("kube", "bgp").
type SourceName string

// Provider gathers one source once per run. Gather does the I/O and returns
// the source's value, which checks read through the source's Key. A source
// left out of the configuration is an Unconfigured provider: the checks
// that need it SKIP with its reason instead of failing.
type Provider interface {
	Name() SourceName
	Gather(ctx context.Context) (any, error)
}

// Key names a source and the Go type of the value its provider gathers.
// Each source package defines its key once, beside the type:
//
//	var Source = diag.NewKey[*Table]("bgp")
//
// and its checks read the value with Source.Get(in).
type Key[T any] struct{ name SourceName }

// NewKey returns the key of the source called name.
func NewKey[T any](name SourceName) Key[T] { return Key[T]{name: name} }

// Name is the source's name, as checks list it in Needs and the report shows it.
func (k Key[T]) Name() SourceName { return k.name }

// Get returns the value the source gathered in this run. The runner calls a
// check's Run only when every source in its Needs was gathered without
// error, so inside Run, Get of a needed source always has a value and checks
// carry no nil guards. For an Optional source, Get returns the zero T when
// the source was not gathered; Gathered tells.
func (k Key[T]) Get(in *Inputs) T {
	v, _ := in.value(k.name).(T)
	return v
}

// Gathered reports whether the source was gathered in this run.
func (k Key[T]) Gathered(in *Inputs) bool {
	_, ok := in.value(k.name).(T)
	return ok
}

// With binds a value to the key, to build Inputs without a run (tests, a
// cache that already holds the value).
func (k Key[T]) With(v T) Binding { return Binding{name: k.name, value: v} }

// Provide returns the Provider of this key's source whose Gather is gather.
func (k Key[T]) Provide(gather func(context.Context) (T, error)) Provider {
	return funcProvider[T]{name: k.name, gather: gather}
}

// Unconfigured is Unconfigured(k.Name(), reason).
func (k Key[T]) Unconfigured(reason string) Provider { return Unconfigured(k.name, reason) }

// Named is anything with a source name: a Key of any type.
type Named interface{ Name() SourceName }

// Needs lists the names of the sources a check reads, for Check.Needs.
func Needs(keys ...Named) []SourceName {
	out := make([]SourceName, len(keys))
	for i, k := range keys {
		out[i] = k.Name()
	}
	return out
}

type funcProvider[T any] struct {
	name   SourceName
	gather func(context.Context) (T, error)
}

func (p funcProvider[T]) Name() SourceName { return p.name }

func (p funcProvider[T]) Gather(ctx context.Context) (any, error) { return p.gather(ctx) }

// ErrNotConfigured marks a source the user has not configured.
var ErrNotConfigured = errors.New("not configured")

// Unconfigured returns the Provider of a source left out of the
// configuration: its checks SKIP with reason, which says which section or
// flag turns the source on. It is the one way to say "not configured".
func Unconfigured(name SourceName, reason string) Provider {
	return unconfigured{name: name, reason: reason}
}

type unconfigured struct {
	name   SourceName
	reason string
}

func (u unconfigured) Name() SourceName { return u.name }

func (u unconfigured) Gather(context.Context) (any, error) {
	return nil, fmt.Errorf("%s: %w", u.reason, ErrNotConfigured)
}

// Inputs holds the gathered sources of one run. Checks read it through the
// sources' keys, only after the runner has made sure every source they need
// was gathered without error.
type Inputs struct {
	values map[SourceName]any
}

// Binding is one source's value in Inputs.
type Binding struct {
	name  SourceName
	value any
}

// NewInputs returns the Inputs holding the given values, as a run would
// after gathering them.
func NewInputs(bindings ...Binding) *Inputs {
	in := &Inputs{values: map[SourceName]any{}}
	for _, b := range bindings {
		in.values[b.name] = b.value
	}
	return in
}

// ReadBy is in as check c sees it in a run: each Parted value with only
// the parts c reads (Check.Reads); in itself when c names none. Tests that
// call a check's Run directly hand it this, as the runner does.
func (in *Inputs) ReadBy(c Check) *Inputs {
	if in == nil || len(c.Reads) == 0 {
		return in
	}
	out := &Inputs{values: make(map[SourceName]any, len(in.values))}
	for name, v := range in.values {
		if pv, ok := v.(Parted); ok {
			v = pv.Only(c.Reads)
		}
		out.values[name] = v
	}
	return out
}

func (in *Inputs) value(name SourceName) any {
	if in == nil {
		return nil
	}
	return in.values[name]
}
