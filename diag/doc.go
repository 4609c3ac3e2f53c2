// Package diag is the vnodediag engine: the Check value, the source
// providers a run reads once and shares, and the Runner that owns deadlines,
// concurrency, panic recovery, timing, ordering and selection policy.
//
// Checks live beside the data they need: k8s.* in diag/k8s, vnode.* in
// diag/vnode, bgp.* and route.* in bgp, dns.* in dnsprobe. The one list of
// all checks is diag/catalog.
package diag
