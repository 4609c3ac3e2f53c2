#!/usr/bin/env bash
# Builds and caches a real kube-apiserver v1.15.12: the last release before
# label-based VNode scheduling (1.16), for the lab cluster on which
# vnode.k8s-version must FAIL. It builds from the Go module proxy with
# today's Go; etcd and kubectl come from hack/envtest-assets.sh.
#
# usage: hack/legacy-apiserver.sh     prints the asset directory (builds if missing)
# env:   VNODEDIAG_LEGACY_ASSETS_DIR  override the cache directory; FORCE=1 rebuilds
set -euo pipefail

KUBE_VERSION=1.15.12
STAGING_VERSION=v0.15.12 # k8s.io/api, apimachinery, ... of that release
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/vnodediag/envtest
dir=${VNODEDIAG_LEGACY_ASSETS_DIR:-$cache_root/legacy-k8s-$KUBE_VERSION}
modern=$("$here/envtest-assets.sh")

mkdir -p "$dir"
ln -sf "$modern/etcd" "$dir/etcd"
ln -sf "$modern/kubectl" "$dir/kubectl"
if [[ -z ${FORCE:-} && -x $dir/kube-apiserver ]]; then
  echo "$dir"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {
  cd "$work"
  export GONOSUMDB='k8s.io/*,sigs.k8s.io/*,go.etcd.io/*' GOFLAGS=-mod=mod GOWORK=off GO111MODULE=on
  # cmd/kube-apiserver/apiserver.go of that release.
  cat > main.go <<'GO'
package main

import (
	"fmt"
	"math/rand"
	"os"
	"time"

	"k8s.io/component-base/logs"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/pkg/util/prometheusclientgo"
	_ "k8s.io/kubernetes/pkg/version/prometheus"
)

func main() {
	rand.Seed(time.Now().UnixNano())
	command := app.NewAPIServerCommand()
	logs.InitLogs()
	defer logs.FlushLogs()
	if err := command.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
GO
  # A writable copy of k8s.io/kubernetes: its module zip lacks
  # pkg/generated/openapi/zz_generated.openapi.go, generated at build time.
  local kdir kmod
  kdir=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  kmod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod
  cp -r "$kdir" kubernetes && chmod -R u+w kubernetes
  # go.mod takes all of kubernetes' replace pins (a dependency's replaces are
  # ignored, and without them newer, incompatible modules are chosen), with
  # ./staging/... pointed at the release, reflect2 1.0.1 -> 1.0.2 (1.0.1
  # panics on Go >= 1.18), and vbom.ml/util (a dead host, used only by
  # kubectl) replaced by an empty module.
  mkdir -p stubs/vbom-util && printf 'module vbom.ml/util\n' > stubs/vbom-util/go.mod
  {
    printf 'module apiserverbuild\n\ngo 1.12\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$KUBE_VERSION"
    sed -n '/^replace (/,/^)/p' "$kmod" | grep '=>' \
      | sed -E "s#^\s*(k8s.io/[a-z0-9-]+) => \./staging/.*#\t\1 => \1 $STAGING_VERSION#" \
      | sed -E 's#^(\s*github.com/modern-go/reflect2 => github.com/modern-go/reflect2) v1.0.1#\1 v1.0.2#' \
      | sed -E 's#^(\s*vbom.ml/util) => .*#\1 => ./stubs/vbom-util#'
    printf '\tk8s.io/kubernetes => ./kubernetes\n)\n'
  } > go.mod
  go mod tidy >/dev/null 2>&1
  # The OpenAPI definitions, as the release's `make gen_openapi` made them,
  # with the kube-openapi it pins.
  go build -o openapi-gen k8s.io/kube-openapi/cmd/openapi-gen
  {
    grep -rl --include=*.go '+k8s:openapi-gen=' kubernetes | grep -v _test.go | xargs -n1 dirname \
      | sed 's#^kubernetes#k8s.io/kubernetes#'
    for m in api apimachinery apiserver apiextensions-apiserver kube-aggregator client-go; do
      local d
      d=$(go list -m -f '{{.Dir}}' "k8s.io/$m")
      (cd "$d" && grep -rl --include=*.go '+k8s:openapi-gen=' . | grep -v _test.go | xargs -r -n1 dirname \
        | sed "s#^\.#k8s.io/$m#")
    done
  } | sort -u > openapi-dirs.txt
  printf '/*\nCopyright The Kubernetes Authors.\n\nLicensed under the Apache License, Version 2.0.\n*/\n\n' > boilerplate.go.txt
  ./openapi-gen --logtostderr=false -i "$(paste -sd, openapi-dirs.txt)" \
    -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h boilerplate.go.txt -o gen -r gen/violations.report
  cp gen/k8s.io/kubernetes/pkg/generated/openapi/zz_generated.openapi.go kubernetes/pkg/generated/openapi/
  # /version comes from k8s.io/client-go/pkg/version in 1.15, the startup
  # log from k8s.io/kubernetes/pkg/version: set both, or it reports v0.0.0.
  local minor=${KUBE_VERSION#1.} ld="-s"
  minor=${minor%%.*}
  for p in k8s.io/kubernetes/pkg/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$dir/kube-apiserver.tmp.$$" . && mv "$dir/kube-apiserver.tmp.$$" "$dir/kube-apiserver"
}

(build) >&2
echo "$dir"
