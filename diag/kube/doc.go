// Package kube is the Kubernetes source: it loads a kubeconfig by the
// standard rules, reads one snapshot of the cluster per run (paged lists,
// protobuf, read-only verbs only) and classifies nodes as ECS, on-prem or
// VNode. Checks read the snapshot through From.
package kube
