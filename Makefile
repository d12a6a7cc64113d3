# sidecar-webhook: the two commands a new user needs are `make run` and
# `make test`; everything else here is what they are built from.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
CONTROLPLANE := $(CURDIR)/test/controlplane
# Build tooling (image builder, Helm CLI): a module of its own, so the
# webhook's module never depends on go-containerregistry or Helm.
TOOLS := $(CURDIR)/tools
# The load benchmark: a module of its own, so the webhook's module never
# depends on istio.io/istio (the benchmark runs Istio's validation webhook
# as a reference).
LOADBENCH := $(CURDIR)/hack/loadbench
STATICCHECK_VERSION := v0.8.2
# Go test flags; CI and `make test` run the whole suite under the race detector.
TEST_FLAGS ?= -race -count=1
FUZZ_TIME ?= 2m

# Which tests run where, one rule: a test file that needs the control plane
# (etcd, kube-apiserver, kubectl from bin/) starts with
# `//go:build controlplane`; every other test needs Go alone. Targets pick
# packages by that tag, never by a list of paths:
#   unit   ./... without the tag (the control-plane files are not compiled)
#   e2e    with the tag, the packages that have such files (CONTROLPLANE_PKGS)
#   test   ./... with the tag: all of them, then the tools and istiodiff modules
#   lint   vet and staticcheck ./... both without and with the tag
#   bench  hack/bench.sh benchmarks ./... without the tag
CONTROLPLANE_TAG := controlplane
# The packages whose test files grow with the tag (listed when a target uses them).
PKG_FILES := {{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}
CONTROLPLANE_PKGS = $(shell comm -13 \
	<($(GO) list -f '$(PKG_FILES)' ./... | sort) \
	<($(GO) list -tags $(CONTROLPLANE_TAG) -f '$(PKG_FILES)' ./... | sort) | cut -d' ' -f1)

.PHONY: all help build run test unit e2e lint bench fuzz controlplane helm chart-test image image-push tools-test loadbench-test clean istiodiff

all: build

## help: these targets, from their `## target: ...` comments (a comment's
## first line names the target; the lines after it are indented).
help:
	@awk '/^## / { print (block ? "    " : "") substr($$0, 4); block = 1; next } \
	  { block = 0 }' $(MAKEFILE_LIST)

## build: bin/sidecar-webhook (the shipped binary: serve, check, resolve) and
## bin/sidecar-webhook-dev (the local control plane behind `make run`)
build:
	$(GO) build -o $(BIN)/sidecar-webhook ./cmd/sidecar-webhook
	$(GO) build -o $(BIN)/sidecar-webhook-dev ./cmd/sidecar-webhook-dev

## controlplane: real kube-apiserver, etcd and kubectl built from the Go module
## proxy (test/controlplane pins the versions). Rebuilt only when that module
## changes: a second `make` does not rebuild.
controlplane: $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/kubectl $(BIN)/kube-controller-manager

$(BIN)/kube-apiserver: $(CONTROLPLANE)/go.mod $(CONTROLPLANE)/go.sum
	cd $(CONTROLPLANE) && $(GO) build -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/etcd: $(CONTROLPLANE)/go.mod $(CONTROLPLANE)/go.sum
	cd $(CONTROLPLANE) && $(GO) build -o $@ go.etcd.io/etcd/server/v3

$(BIN)/kubectl: $(CONTROLPLANE)/go.mod $(CONTROLPLANE)/go.sum
	cd $(CONTROLPLANE) && $(GO) build -o $@ k8s.io/kubernetes/cmd/kubectl

# The controller manager turns Deployments into ReplicaSets and pods, so the
# pod annotation is exercised the way it is in a cluster.
$(BIN)/kube-controller-manager: $(CONTROLPLANE)/go.mod $(CONTROLPLANE)/go.sum
	cd $(CONTROLPLANE) && $(GO) build -o $@ k8s.io/kubernetes/cmd/kube-controller-manager

## helm: the Helm CLI the chart tests run, built from the tools module (which
## pins its version); rebuilt only when that module's requirements change.
helm: $(BIN)/helm

$(BIN)/helm: $(TOOLS)/go.mod $(TOOLS)/go.sum
	cd $(TOOLS) && $(GO) build -o $@ helm.sh/helm/v4/cmd/helm

## run: a local control plane (etcd + kube-apiserver) with the webhook
## registered; prints `ready: export KUBECONFIG=...`; Ctrl-C stops it all.
run: build controlplane
	$(GO) mod download istio.io/api
	$(BIN)/sidecar-webhook-dev --state-dir $(CURDIR)/.local --log-development $(RUN_FLAGS)

## test: lint, unit tests, end-to-end tests against the real control plane
## (the kustomize manifests and the Helm chart among them), the tools
## module's tests (image), the load benchmark's tests (hack/loadbench) and
## the comparison with Istio's own code (test/istiodiff).
test: lint build controlplane $(BIN)/helm
	$(GO) mod download istio.io/api
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test -tags $(CONTROLPLANE_TAG) $(TEST_FLAGS) ./...
	$(MAKE) tools-test
	$(MAKE) loadbench-test
	$(MAKE) istiodiff

## istiodiff: the project's answers against Istio's own code (a module of its
## own that imports istio.io/istio). Without -race: Istio is large, and the
## race detector would triple its build.
istiodiff:
	cd test/istiodiff && $(GO) vet ./... && $(GO) test -count=1 ./...

## chart-test: the Helm chart alone: lint, its defaults against deploy/,
## its values (test/chart), and both installations applied to the real API
## server with their RBAC checked by impersonation (test/deploy).
chart-test: controlplane $(BIN)/helm
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test -tags $(CONTROLPLANE_TAG) $(TEST_FLAGS) ./test/chart/ ./test/deploy/

## unit: the tests that need no control plane (built without the
## controlplane tag).
unit:
	$(GO) test -short $(TEST_FLAGS) ./...

## e2e: only the tests that need the control plane (the packages with
## files under the controlplane tag: end-to-end, manifests and chart,
## faults, the server's TLS, the informer view, the local cluster).
e2e: build controlplane $(BIN)/helm
	$(GO) mod download istio.io/api
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test -tags $(CONTROLPLANE_TAG) $(TEST_FLAGS) -v $(CONTROLPLANE_PKGS)

## lint: go vet, gofmt and staticcheck (the webhook's module both without
## and with the controlplane tag, so that each build compiles on its own;
## the tools' and the load benchmark's modules).
lint:
	$(GO) vet ./...
	$(GO) vet -tags $(CONTROLPLANE_TAG) ./...
	cd $(TOOLS) && $(GO) vet ./...
	cd $(LOADBENCH) && $(GO) vet ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags $(CONTROLPLANE_TAG) ./...
	cd $(TOOLS) && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd $(LOADBENCH) && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## bench: Go benchmarks and the HTTPS load benchmark (hack/loadbench) against
## a local control plane with synthetic state; rewrites docs/performance.md
## and the README's performance table (hack/bench.sh).
bench: build controlplane
	$(GO) mod download istio.io/api
	BENCH_COMMAND="make bench" hack/bench.sh

## fuzz: run each fuzz target for FUZZ_TIME (make test only replays the corpus).
fuzz:
	@for target in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //'); do \
	  pkg=$$(dirname $$(grep -rlE "^func $$target\(" --include='*_test.go' .)); \
	  echo "fuzzing $$target in $$pkg for $(FUZZ_TIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) $$pkg; \
	done

## image: the container image, built with Go tooling alone (no container
## engine; tools/cmd/image): a static binary on an empty base, as an OCI
## layout in bin/image and a `docker load` tarball bin/image.tar. Labels
## and creation time come from git, so a commit always gives one digest.
image:
	cd $(TOOLS) && $(GO) run ./cmd/image --src $(CURDIR) --out $(BIN)/image --tar $(BIN)/image.tar

## image-push: build and push the image to IMAGE=registry/name:tag with the
## usual credentials (docker/podman config and credential helpers).
image-push:
	@if [ -z "$(IMAGE)" ]; then echo "usage: make image-push IMAGE=registry/name:tag" >&2; exit 2; fi
	cd $(TOOLS) && $(GO) run ./cmd/image --src $(CURDIR) --out $(BIN)/image --tag $(IMAGE) --push $(IMAGE)

## tools-test: the tools module's tests (the image builder: config, layer,
## the binary run from it, OCI layout, push and pull, the Dockerfile).
tools-test:
	cd $(TOOLS) && $(GO) vet ./... && $(GO) test -count=1 ./...

## loadbench-test: the load benchmark module's tests (the load generator).
## Without -race, like istiodiff: the module links Istio.
loadbench-test:
	cd $(LOADBENCH) && $(GO) vet ./... && $(GO) test -count=1 ./...

## clean: remove the built webhook binaries and make run's state (.local);
## the control plane and Helm in bin/ stay.
clean:
	rm -rf $(BIN)/sidecar-webhook $(BIN)/sidecar-webhook-dev .local
