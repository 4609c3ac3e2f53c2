#!/usr/bin/env bash
# Renders the kustomize bases deploy/kubernetes and deploy/agent from the
# Helm chart deploy/helm/vnodediag with deploy/kubernetes/values.yaml, so
# that the chart is the one source of the manifests and of the RBAC.
#   hack/render-manifests.sh HELM [OUT]   (OUT defaults to the repository)
set -euo pipefail
helm=${1:?usage: render-manifests.sh HELM [OUT]}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root}
chart=$root/deploy/helm/vnodediag
values=$root/deploy/kubernetes/values.yaml
mkdir -p "$out/deploy/kubernetes" "$out/deploy/agent"

render() { # file, templates...
  local file=$1; shift
  local args=()
  for t in "$@"; do args+=(--show-only "templates/$t"); done
  {
    echo "# Rendered from the Helm chart deploy/helm/vnodediag with deploy/kubernetes/values.yaml"
    echo "# by \`make manifests\`: edit the chart or the values, not this file (a test fails when it is stale)."
    "$helm" template vnodediag "$chart" --namespace vnodediag --values "$values" "${args[@]}"
  } >"$file.tmp"
  mv "$file.tmp" "$file"
}

render "$out/deploy/kubernetes/deployment.yaml" namespace.yaml configmap.yaml deployment.yaml service.yaml networkpolicy.yaml pdb.yaml
render "$out/deploy/kubernetes/rbac.yaml" rbac.yaml
render "$out/deploy/agent/agent.yaml" agent.yaml
