// Package probe is `vnodediag agent`, the cloud-side agent: run by the
// operator as a small Deployment pinned to the VNodes, it probes from inside
// the VPC what no on-prem tool can see. Each round resolves the configured
// on-prem and PrivateZone names through the pod's own resolv.conf, through the
// VPC DNS directly and through the on-prem DNS servers directly; opens a TCP
// connection to each configured on-prem target and closes it at once; reads
// the pod's interfaces, routes and MTU; and reads the ECI instance metadata.
//
// Every probe has its own deadline and the probes of a round run
// concurrently (bounded), so a round costs about its slowest deadline. The
// agent only sends DNS queries, opens TCP connections and reads: it needs no
// capability, no raw socket and no writable filesystem.
//
// A round leaves the agent two ways, because the path itself may be broken:
// one protojson line on stdout, which vnodediag reads through the Kubernetes
// API (pods/log, served by the virtual kubelet even when the leased line is
// down), and ProbeService on the pod IP, which vnodediag dials over the
// leased line.
package probe
