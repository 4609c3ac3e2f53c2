package diag

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
)

// Family is what one package brings to vnodediag: its checks, and the
// configuration section and source it owns, if any. The composition root
// lists every family once; the engine and the other families never name it.
type Family struct {
	// Name is the family's check-ID prefix ("bgp"), or its source's name
	// for a family without checks.
	Name string
	// Checks returns the family's checks; nil for a source-only family.
	Checks func() []Check
	// Section is the configuration section the family reads, nil if none.
	Section *Section
}

// SectionConfig is a configuration section's decoded value: a pointer to
// the family's Config struct. Validate checks it without touching the
// network, names the field that is wrong, and keeps the normalised settings
// its provider uses, so that a section is validated exactly once.
type SectionConfig interface {
	Validate() error
}

// Section is one top-level key of the configuration file and the source
// built from its value.
type Section struct {
	// Key is the section's name in the file ("bgp").
	Key string
	// New returns an empty value to decode the section into.
	New func() SectionConfig
	// Provider builds the source from the decoded, validated section; nil
	// means the section was left out.
	Provider func(SectionConfig, Env) (Provider, error)
	// Example is the section as `vnodediag config example` prints it: the
	// key line and every field, with comments; it must load as it is.
	Example string
}

// WithExample sets the section's Example and returns the section.
func (s *Section) WithExample(example string) *Section {
	s.Example = example
	return s
}

// SectionOf describes the section key whose value is a *C and whose source
// newProvider builds: the family's one constructor, which gets nil when the
// section is left out and then returns an Unconfigured provider.
func SectionOf[C any, PC interface {
	*C
	SectionConfig
}](key string, newProvider func(*C, Env) (Provider, error)) *Section {
	return &Section{
		Key: key,
		New: func() SectionConfig { return PC(new(C)) },
		Provider: func(c SectionConfig, env Env) (Provider, error) {
			if c == nil || reflect.ValueOf(c).IsNil() {
				return newProvider(nil, env)
			}
			cfg, ok := c.(PC)
			if !ok {
				return nil, fmt.Errorf("section %s: got %T, want %T", key, c, PC(nil))
			}
			return newProvider((*C)(cfg), env)
		},
	}
}

// Env is what every provider constructor gets besides its section.
type Env struct {
	// Log is the run's logger; nil discards.
	Log *slog.Logger
	// Daemon is set under `serve`: a provider may keep its source warm
	// between runs (BGP sessions, a watch cache) until Ctx ends.
	Daemon bool
	// Ctx bounds a daemon's long-lived sources; nil is Background.
	Ctx context.Context
	// Sources gives a provider the other providers of the same run, for a
	// source that needs another one's client (the cloud source lists the
	// nodes through the Kubernetes source's client). Nil outside a run.
	Sources func(SourceName) Provider
}

// Logger is Env.Log, never nil.
func (e Env) Logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Context is Env.Ctx, never nil.
func (e Env) Context() context.Context {
	if e.Ctx == nil {
		return context.Background()
	}
	return e.Ctx
}

// Families returns the checks of all families.
func ChecksOf(families []Family) []Check {
	var all []Check
	for _, f := range families {
		if f.Checks != nil {
			all = append(all, f.Checks()...)
		}
	}
	return all
}
