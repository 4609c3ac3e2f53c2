// Package vnode holds the vnode.* checks: VNodes present and Ready, DaemonSets
// kept off VNodes, pending pods meant for VNodes that can get there (both
// decided by the same scheduler helpers, placement.go), the eci-profile,
// NAS volumes of VNode pods, metrics-server compatible with VNodes, an API
// server new enough for label-based VNode scheduling, and the
// insecure-registry advice for VNode pods that fail image pulls on
// certificate errors.
//
// Like every check package, it gathers nothing: each check evaluates the
// run's Kubernetes snapshot. The evaluation functions are pure and take only
// what they read, so they are table-tested; the snapshot path is tested
// against a real API server.
package vnode
