// Package kube is the Kubernetes source: it loads a kubeconfig by the
// standard rules, reads one snapshot of the cluster per run (paged lists,
// protobuf, read-only verbs only; pods decoded field by field, only what
// the compact pod keeps, see podwire.go) and classifies nodes as ECS,
// on-prem or VNode. Checks read the snapshot through Source.Get; a check
// that names the parts it reads (diag.Check.Reads, the Part* names) is
// given a copy holding those parts alone (Snapshot.Only), and what several
// checks would each find by a pass over every pod is found once per
// snapshot (PodsWithDetail, PodNodes).
//
// Every request obeys the context of the gather, so a server that never
// answers costs the source deadline, and the userinfo of the server URL is
// taken out before any request, so no error, log line or report carries it.
//
// Under `serve` the source is a CachedProvider instead: a watch cache of
// the same lists, compacted on arrival, from which each run's Snapshot is
// built in memory (see cache.go). Snapshots are read-only: in the daemon
// their slices are shared with the cache.
package kube
