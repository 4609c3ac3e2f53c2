# vnodediag — see README.md.
GO            ?= go
BIN           := bin/vnodediag
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
TOOLS         := $(CURDIR)/bin/tools
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS       := -X github.com/vnodediag/vnodediag/diag.Version=$(VERSION)
export GONOSUMDB := k8s.io/*,sigs.k8s.io/*,go.etcd.io/*

.PHONY: all build test lint fuzz demo bench bench-large bench-bgp bench-dns bench-overlap bench-agent bench-cloud bench-daemon bench-cache soak proto tools envtest clean
.PHONY: image image-test helm goreleaser manifests release-check release-snapshot

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/vnodediag

# envtest: builds (once, cached) kube-apiserver and etcd for the tests, and the
# legacy kube-apiserver v1.15.12 of the lab's second cluster.
envtest:
	@hack/envtest-assets.sh >/dev/null
	@hack/legacy-apiserver.sh >/dev/null

ASSETS := KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh) VNODEDIAG_LEGACY_ASSETS=$$(hack/legacy-apiserver.sh)

# test: lint first, then every test against the real components. The fuzz
# targets run here on their committed corpus (testdata/fuzz) and seeds.
# The daemon's packages, concurrent by design, are tested under the race
# detector (cgo: gcc); the others without it: gobgp v3.37.0, which the BGP
# packages drive, races inside itself under -race.
RACE_PKGS := ./diag ./diag/daemon ./diag/server ./diag/kube ./diag/metrics
test: lint envtest helm
	$(ASSETS) HELM=$(HELM) $(GO) test -count=1 -timeout 20m $$({ $(GO) list ./...; $(GO) list $(RACE_PKGS); } | sort | uniq -u)
	$(ASSETS) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(RACE_PKGS)

# lint: go vet, staticcheck (pinned) and a tidy go.mod.
STATICCHECK_VERSION := v0.8.2
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) mod tidy -diff

# fuzz: every fuzz target of the repository, FUZZTIME each (default 30s).
# Targets are found with `go test -list`, so new ones are picked up; new
# interesting inputs stay in the Go build cache, and a failing input is
# written to the package's testdata/fuzz (commit it with the fix).
FUZZTIME ?= 30s
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for target in $$(cd $$dir && $(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
	    echo "fuzz: $$dir $$target for $(FUZZTIME)"; \
	    (cd $$dir && $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) .); \
	  done; \
	done

demo: build envtest
	$(ASSETS) $(GO) run ./test/lab -- $(BIN)

# bench, bench-large: one table of the bare paged protobuf lister (the baseline), `diagnose`,
# kubectl, and `serve` (RSS with the watch cache warm, Diagnose p50/p99 from the cache, and
# GetLatestReport from 100 paced clients beside two floors, the daemon's health Check and a bare
# gRPC echo server in its own process sending the same reply; -latest=false skips it).
# BENCH_FLAGS=-hold keeps the loaded server up; -reuse-kubeconfig measures a held one again.
bench: build envtest
	KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh) $(GO) run ./test/bench -bin $(BIN) -nodes 1000 -pods 30000 $(BENCH_FLAGS)

bench-large: build envtest
	KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh) $(GO) run ./test/bench -bin $(BIN) -nodes 5000 -pods 150000 -daemonsets 300 -runs 1 $(BENCH_FLAGS)

# bench-bgp: 100,000 prefixes from BIRD, the observer beside Debian's gobgpd (root), and the
# coverage benchmark (5,000 podCIDRs against the table).
bench-bgp:
	$(GO) run ./test/bench/bgp -prefixes 100000 -runs 5
	cd bgp && $(GO) test -run '^$$' -bench Coverage -benchtime 20x .

# bench-dns: the DNS section with a silent forwarder beside the slowest single query (root).
bench-dns:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkDNSSection -benchtime 5x ./dnsprobe/

# bench-overlap: k8s.podcidr-overlap with 1,000 nodes sharing one podCIDR, beside the old pairwise evaluation.
bench-overlap:
	$(GO) test -count=1 -run '^$$' -bench PodCIDROverlapShared -benchtime 1x -v ./diag/k8s/

# bench-agent: one agent round of 200 names and 50 targets (one black-holed) against its slowest
# deadline, and the newest round of a 10 MiB agent log through pods/log beside reading it whole
# (root: the lab VNode's namespaces, unbound, dnsmasq; envtest).
bench-agent: envtest
	KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh) $(GO) test -count=1 -run '^$$' -bench BenchmarkAgent -benchtime 5x ./diag/agent/

# bench-cloud: the cloud source against the local OpenAPI endpoint (5 route tables x 500 entries, a VBR, 300 zones, 1,500 group rules,
# 1,000 instances, 2,000 nodes, 50 ms a call) at two QPS limits, beside its physical limit.
bench-cloud:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkCloudGather -benchtime 10x ./diag/cloud/

# bench-daemon: GetLatestReport from 100 concurrent clients beside a bare gRPC echo and a bare server
# sending the same reply's bytes (echo-reply), p50 and p99.
bench-daemon:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkLatestReport -benchtime 20000x ./diag/server/

# bench-cache: Diagnose's checks from the watch cache of a held bench server (`make bench
# BENCH_FLAGS=-hold` prints its kubeconfig; BENCH_KUBECONFIG=that path): the snapshot, a run without
# the daemon's memo of check results, with it while nothing changes, and with one pod changed per run;
# what a forced garbage collection takes with the warm cache and without; then a one-shot gather of the same server (GOGC=25, as `diagnose` runs): the live heap it holds;
# then what each part of the warm cache (Deployments, DaemonSets, nodes, pods, the rest) costs a forced collection;
# then what 150,000 compact pods alone cost one, beside none (no server needed).
bench-cache:
	VNODEDIAG_BENCH_KUBECONFIG=$(BENCH_KUBECONFIG) $(GO) test -count=1 -run '^$$' -bench BenchmarkCachedDiagnose -benchtime 20x ./diag/kube/
	GOGC=25 VNODEDIAG_BENCH_KUBECONFIG=$(BENCH_KUBECONFIG) $(GO) test -count=1 -run '^$$' -bench BenchmarkOneShotGather -benchtime 1x ./diag/kube/
	VNODEDIAG_BENCH_KUBECONFIG=$(BENCH_KUBECONFIG) $(GO) test -count=1 -run '^$$' -bench BenchmarkCacheParts -benchtime 1x ./diag/kube/
	$(GO) test -count=1 -run '^$$' -bench BenchmarkCollection -benchtime 50x ./diag/kube/

# soak: `serve` for SOAKTIME (default 3m) against the envtest API server while pods churn and
# clients call without pause; prints the daemon's RSS and goroutines over time (not in make test).
# SOAKFLAGS passes more flags (-clients N, -daemon-log FILE).
SOAKTIME ?= 3m
SOAKFLAGS ?=
soak: build envtest
	KUBEBUILDER_ASSETS=$$(hack/envtest-assets.sh) $(GO) run ./test/soak -bin $(BIN) -duration $(SOAKTIME) $(SOAKFLAGS)

tools:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# proto: regenerates the committed Go code from proto/ (needs Debian's protobuf-compiler).
PROTO_OUT ?= proto
proto: tools
	PATH=$(TOOLS):$$PATH protoc -I proto -I /usr/include \
	  --go_out=$(PROTO_OUT) --go_opt=paths=source_relative \
	  --go-grpc_out=$(PROTO_OUT) --go-grpc_opt=paths=source_relative \
	  proto/vnodediag/v1/vnodediag.proto proto/vnodediag/v1/probe.proto

clean:
	rm -rf bin dist

# --- packaging: image, Helm chart, kustomize bases, releases ---------------

HELM_VERSION       := v4.3.2
GORELEASER_VERSION := v2.17.0
HELM               := $(TOOLS)/helm
GORELEASER         := $(TOOLS)/goreleaser
IMAGE              ?= localhost/vnodediag

# helm, goreleaser: the pinned CLIs, built once into bin/tools.
helm: $(HELM)
$(HELM):
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
goreleaser: $(GORELEASER)
$(GORELEASER):
	GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/goreleaser/v2@$(GORELEASER_VERSION)

# image: one static image (daemon, CLI, agent) FROM scratch, assembled by
# buildah from Containerfile without a registry; tagged $(IMAGE):$(VERSION)
# and $(IMAGE):latest in the local container storage (podman sees it).
image:
	rm -rf bin/image && mkdir -p bin/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/image/vnodediag ./cmd/vnodediag
	cp /etc/ssl/certs/ca-certificates.crt bin/image/
	buildah build --quiet --build-arg VERSION=$(VERSION) -f Containerfile -t $(IMAGE):$(VERSION) -t $(IMAGE):latest bin/image

# image-test: builds the image and runs it with podman (test/image).
image-test: image
	VNODEDIAG_IMAGE=$(IMAGE):$(VERSION) $(GO) test -count=1 -v -run . ./test/image/

# manifests: renders deploy/kubernetes and deploy/agent from the chart, and
# copies the alert rules (deploy/prometheus/rules.yaml) into the chart.
manifests: helm
	if [ -f deploy/prometheus/rules.yaml ]; then cp deploy/prometheus/rules.yaml deploy/helm/vnodediag/files/rules.yaml; fi
	hack/render-manifests.sh $(HELM)

# release-check: goreleaser's own check of .goreleaser.yaml.
release-check: goreleaser
	$(GORELEASER) check

# release-snapshot: every archive of a release (linux/darwin, amd64/arm64),
# checksums, into dist/, without publishing anything.
release-snapshot: goreleaser
	$(GORELEASER) release --snapshot --clean --skip=publish,sign
