// Package chart tests the Helm chart deploy/helm/vnodediag with the pinned
// helm CLI (`make helm`): helm lint, helm template with the defaults and
// with every option on, a server-side dry-run apply of every rendered
// object to a real API server (envtest), the rendered config loaded by
// vnodediag itself, and the kustomize bases deploy/kubernetes and
// deploy/agent kept equal to the chart's render (`make manifests`).
package chart
