package daemon

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vnodediag/vnodediag/diag"
)

// Defaults of the daemon section.
const (
	DefaultInterval         = 60 * time.Second
	DefaultHistorySize      = 20
	DefaultHistoryWindow    = time.Hour
	DefaultFailureThreshold = 3
	DefaultMaxFreshRuns     = 2
	DefaultMaxRuns          = 8
	DefaultMaxCallTimeout   = 5 * time.Minute
	DefaultWatchBuffer      = 256
	DefaultMaxWatchers      = 64
)

// Config is the `daemon` section: what `serve` does between calls. Every
// field is optional; zero means the default.
type Config struct {
	// Interval is the period of the periodic runs (default 60s).
	Interval diag.Duration `json:"interval,omitempty"`
	// Only and Skip select the checks of the periodic runs, like the
	// flags (default: runner.only and runner.skip, else every check).
	Only []string `json:"only,omitempty"`
	Skip []string `json:"skip,omitempty"`
	// HistorySize is how many periodic runs the daemon keeps (default 20).
	HistorySize int `json:"historySize,omitempty"`
	// HistoryWindow drops kept runs older than this (default 1h).
	HistoryWindow diag.Duration `json:"historyWindow,omitempty"`
	// Refresh is the refresh interval of each source by name ("dns": 30s);
	// a source not named refreshes every Interval.
	Refresh map[string]diag.Duration `json:"refresh,omitempty"`
	// FailureThreshold is how many consecutive failed refreshes make a
	// source's health NOT_SERVING (default 3).
	FailureThreshold int `json:"failureThreshold,omitempty"`
	// MaxFreshRuns bounds the fresh Diagnose calls of different selections
	// regathering at once (default 2); past it a call is refused with
	// RESOURCE_EXHAUSTED and a retry hint.
	MaxFreshRuns int `json:"maxFreshRuns,omitempty"`
	// MaxRuns bounds the Diagnose and DiagnoseStream calls running checks
	// at once (default 8).
	MaxRuns int `json:"maxRuns,omitempty"`
	// MaxCallTimeout caps a Diagnose call's deadline, whatever the caller
	// asks (default 5m).
	MaxCallTimeout diag.Duration `json:"maxCallTimeout,omitempty"`
	// WatchBuffer is the events a WatchReports stream may fall behind by
	// before events are dropped (and the watcher told) (default 256).
	WatchBuffer int `json:"watchBuffer,omitempty"`
	// MaxWatchers bounds the WatchReports streams open at once (default 64).
	MaxWatchers int `json:"maxWatchers,omitempty"`
}

// Validate checks the section without touching anything; source names in
// Refresh are checked against the providers when the daemon is built.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval != 0 && c.Interval.D() < time.Second {
		errs = append(errs, fmt.Errorf("interval: want at least 1s, got %s", c.Interval.D()))
	}
	if c.HistoryWindow < 0 {
		errs = append(errs, fmt.Errorf("historyWindow: want a positive duration, got %s", c.HistoryWindow.D()))
	}
	if c.MaxCallTimeout < 0 || (c.MaxCallTimeout > 0 && c.MaxCallTimeout.D() < time.Second) {
		errs = append(errs, fmt.Errorf("maxCallTimeout: want at least 1s, got %s", c.MaxCallTimeout.D()))
	}
	for _, n := range []struct {
		name string
		v    int
		max  int
	}{{"historySize", c.HistorySize, 10000}, {"failureThreshold", c.FailureThreshold, 1000}, {"maxFreshRuns", c.MaxFreshRuns, 64},
		{"maxRuns", c.MaxRuns, 256}, {"watchBuffer", c.WatchBuffer, 1 << 20}, {"maxWatchers", c.MaxWatchers, 10000}} {
		if n.v < 0 || n.v > n.max {
			errs = append(errs, fmt.Errorf("%s: want 1-%d, got %d", n.name, n.max, n.v))
		}
	}
	keys := make([]string, 0, len(c.Refresh))
	for k := range c.Refresh {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := c.Refresh[k]; d.D() < time.Second {
			errs = append(errs, fmt.Errorf("refresh.%s: want at least 1s, got %s", k, d.D()))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = diag.Duration(DefaultInterval)
	}
	if c.HistorySize == 0 {
		c.HistorySize = DefaultHistorySize
	}
	if c.HistoryWindow == 0 {
		c.HistoryWindow = diag.Duration(DefaultHistoryWindow)
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.MaxFreshRuns == 0 {
		c.MaxFreshRuns = DefaultMaxFreshRuns
	}
	if c.MaxRuns == 0 {
		c.MaxRuns = DefaultMaxRuns
	}
	if c.MaxCallTimeout == 0 {
		c.MaxCallTimeout = diag.Duration(DefaultMaxCallTimeout)
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = DefaultWatchBuffer
	}
	if c.MaxWatchers == 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	return c
}

// refreshOf is the refresh interval of source name.
func (c Config) refreshOf(name diag.SourceName) time.Duration {
	if d, ok := c.Refresh[string(name)]; ok {
		return d.D()
	}
	return c.Interval.D()
}

// SectionKey is the key of the daemon's section in the configuration file.
const SectionKey = "daemon"

// Family registers the daemon section. It has no checks and no source:
// its provider is never configured, and `serve` reads the section itself.
func Family() diag.Family {
	return diag.Family{
		Name: SectionKey,
		Section: diag.SectionOf(SectionKey, func(*Config, diag.Env) (diag.Provider, error) {
			return diag.Unconfigured(SectionKey, "the daemon section tunes `serve` and is no source"), nil
		}).WithExample(Example),
	}
}

// Example is the `daemon` section of `vnodediag config example`: every
// field, commented, at its default.
const Example = `daemon:                             # vnodediag serve only
  interval: 60s                     # the periodic runs
  # only: [k8s, bgp]                # their selection (default: runner.only / runner.skip, else every check)
  # skip: [dns.onprem-from-cloud]
  historySize: 20                   # periodic runs kept ...
  historyWindow: 1h                 # ... and for at most this long
  refresh:                          # a source's own refresh interval (default: interval)
    dns: 30s
  failureThreshold: 3               # consecutive failed refreshes before a source's health is NOT_SERVING
  maxFreshRuns: 2                   # selections regathering at once (fresh: true); past it RESOURCE_EXHAUSTED
  maxRuns: 8                        # Diagnose calls running checks at once
  maxCallTimeout: 5m                # caps a caller's deadline
  watchBuffer: 256                  # events a WatchReports stream may fall behind before it loses some
  maxWatchers: 64                   # WatchReports streams open at once
`
