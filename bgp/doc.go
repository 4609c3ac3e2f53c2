// Package bgp is the BGP observer, its source and the bgp.* checks.
//
// The observer is an embedded gobgp v3 speaker that peers with the on-prem
// router(s) as a monitoring session: it advertises nothing (global export
// policy REJECT, set before any peer exists), caps what a peer may send
// (maximum prefixes per family) and records the session state, flaps, the
// last error or NOTIFICATION and the routes received. NewProvider runs it
// once per diagnosis (start, wait for Established and End-of-RIB or the
// deadline, read the table, stop), or, under the daemon, keeps it running
// and serves its latest table to each run.
//
// Gathering (I/O) and evaluation (pure functions over Table and the
// Kubernetes snapshot) are separate; see README.md for each check.
package bgp
