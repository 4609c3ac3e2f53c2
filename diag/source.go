package diag

import (
	"context"
	"errors"
	"fmt"
)

// Provider gathers one source once per run. Gather does the I/O and returns
// the source's data, which checks read through Inputs. A provider whose
// source is not configured returns an error wrapping ErrNotConfigured; the
// checks that need it then SKIP with that reason instead of failing.
type Provider interface {
	Name() SourceName
	Gather(ctx context.Context) (any, error)
}

// ErrNotConfigured marks a source the user has not configured.
var ErrNotConfigured = errors.New("not configured")

// NotConfigured returns an ErrNotConfigured error with the reason.
func NotConfigured(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotConfigured)
}

// Inputs holds the gathered sources of one run. Checks read it only after the
// runner has made sure every source they need was gathered without error.
type Inputs struct {
	values map[SourceName]any
}

// NewInputs wraps already gathered values; for tests of a check's Run.
func NewInputs(values map[SourceName]any) *Inputs {
	return &Inputs{values: values}
}

// Value returns the data of a source, nil when it was not gathered.
func (in *Inputs) Value(name SourceName) any {
	if in == nil {
		return nil
	}
	return in.values[name]
}
