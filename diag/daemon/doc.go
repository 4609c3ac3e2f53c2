// Package daemon is the state `vnodediag serve` keeps between calls: every
// source warm (a plain source regathered in the background on its own
// interval, a source that keeps its own state such as the Kubernetes watch
// cache read as it is), the periodic run of the configured selection, the
// latest report and a bounded history, the status of every (check, object)
// and when it last changed, the transitions fanned out to watchers with
// bounded buffers, health per source, and the limits of the expensive
// calls (a fresh Diagnose of one selection is single-flighted; past the
// bound a call is refused with RESOURCE_EXHAUSTED and a retry hint).
//
// The gRPC face is diag/server; the daemon knows gRPC only for the health
// service it feeds and the status codes of its refusals. Metrics and other
// observers hook in through Observer.
package daemon
