#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl from the Go module proxy and caches them, so
# tests can start a real API server through controller-runtime envtest.
# Prebuilt envtest binaries cannot be downloaded everywhere, and Debian ships no
# kube-apiserver; both build from their Go modules in a few minutes.
#
# usage: hack/envtest-assets.sh        prints the asset directory (builds if missing)
# env:   VNODEDIAG_ASSETS_DIR          override the cache directory
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.6.5}
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/vnodediag/envtest
dir=${VNODEDIAG_ASSETS_DIR:-$cache_root/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION}

# FORCE=1 rebuilds even when the cache is filled.
if [[ -z ${FORCE:-} && -x $dir/kube-apiserver && -x $dir/etcd && -x $dir/kubectl ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export GONOSUMDB='k8s.io/*,sigs.k8s.io/*,go.etcd.io/*' GOFLAGS=-mod=mod GOWORK=off

build_etcd() {
  local d=$work/etcd
  mkdir -p "$d" && cd "$d"
  go mod init etcdbuild >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1
  go build -trimpath -ldflags=-s -o "$dir/etcd.tmp.$$" . && mv "$dir/etcd.tmp.$$" "$dir/etcd"
}

build_apiserver() {
  local d=$work/apiserver v=0.${KUBE_VERSION#1.}
  mkdir -p "$d" && cd "$d"
  go mod init apiserverbuild >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null
  local modfile
  modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod"
  # kubernetes' go.mod points its staging modules at ./staging; pin each to the release.
  for m in $(grep -oE 'k8s.io/[a-z0-9-]+ => ./staging' "$modfile" | awk '{print $1}'); do
    echo "replace $m => $m v$v" >> go.mod
  done
  echo "require k8s.io/kubernetes v$KUBE_VERSION" >> go.mod
  go mod tidy >/dev/null 2>&1
  # Without these the server reports v0.0.0-master, and version checks misjudge it.
  local minor=${KUBE_VERSION#1.}; minor=${minor%%.*}
  go build -trimpath -ldflags "-s \
      -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" \
    -o "$dir/kube-apiserver.tmp.$$" . && mv "$dir/kube-apiserver.tmp.$$" "$dir/kube-apiserver"
}

# kubectl of the same release, for the benchmarks' baseline (the machine's
# kubectl, if any, may be another version or a wrapper).
build_kubectl() {
  local d=$work/kubectl v=0.${KUBE_VERSION#1.}
  mkdir -p "$d" && cd "$d"
  go mod init kubectlbuild >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
GO
  go get "k8s.io/kubectl@v$v" >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1
  go build -trimpath -ldflags "-s \
      -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION \
      -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION" \
    -o "$dir/kubectl.tmp.$$" . && mv "$dir/kubectl.tmp.$$" "$dir/kubectl"
}

[[ -x $dir/etcd ]] || (build_etcd) >&2
[[ -x $dir/kubectl ]] || (build_kubectl) >&2
[[ -z ${FORCE:-} && -x $dir/kube-apiserver ]] || (build_apiserver) >&2
echo "$dir"
