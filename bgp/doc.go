// Package bgp is the BGP observer and the bgp.* and route.* checks.
//
// The observer is an embedded gobgp v3 speaker that peers with the on-prem
// router(s) as a monitoring session: it advertises nothing (global export
// policy REJECT, set before any peer exists), caps what a peer may send
// (maximum prefixes per family) and records the session state, flaps, the
// last error or NOTIFICATION and the routes received. NewProvider runs it
// once per diagnosis (start, wait for Established and End-of-RIB or the
// deadline, read the table, stop); NewObserver keeps it running for the
// daemon, whose Provider serves the latest table to each run.
//
// The route source (NewRouteProvider) asks the kernel, through netlink,
// which route a probe address in 100.64.0.0/10 takes, and lists the host
// routes that overlap that range.
//
// Gathering (I/O) and evaluation (pure functions over Table, HostRoutes and
// the Kubernetes snapshot) are separate; see README.md for each check.
package bgp
