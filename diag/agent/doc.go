// Package agent is the `agent` source of vnodediag: it reads the cloud-side
// agents (`vnodediag agent`, package probe, deployed by the operator on the
// VNodes) two ways, because the path between them may itself be broken:
//
//   - directly: a TCP connect to the agent's pod IP on the probe port, then
//     ProbeService.Info and Run over it — whether that works is the on-prem
//     to ECI data path;
//   - through the Kubernetes API: the newest line of the agent's log (get
//     pods/log with tailLines and limitBytes, never the whole log), which the
//     virtual kubelet serves through the cloud API even when the leased line
//     is down.
//
// Agents are found by label in their namespace, or dialled at configured
// addresses. The source only lists pods, reads logs and calls the agents'
// read-only ProbeService; checks judge the gathered Snapshot (vnode.agent in
// diag/vnode, path.* in diag/path, dns.onprem-from-cloud and the cloud side
// of dns.resolver-reachable in dnsprobe).
package agent
