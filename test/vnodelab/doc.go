// Package vnodelab is a lab VNode for tests, benchmarks and `make demo`: a
// real virtual-kubelet node (github.com/virtual-kubelet/virtual-kubelet,
// node/nodeutil) registered on the lab's real kube-apiserver (test/kubelab),
// whose provider runs each pod's container as a real process inside a
// network namespace (test/netlab) — `vnodediag agent` beside the DNS lab's
// dnsmasq — and serves its logs through the kubelet API, so that pods/log
// through the API server works end to end. See README.md.
package vnodelab
