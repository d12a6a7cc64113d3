# sidecar-webhook: the two commands a new user needs are `make run` and
# `make test`; everything else here is what they are built from.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
CONTROLPLANE := $(CURDIR)/test/controlplane
STATICCHECK_VERSION := v0.8.2
# Go test flags; CI and `make test` run the whole suite under the race detector.
TEST_FLAGS ?= -race -count=1
FUZZ_TIME ?= 2m

.PHONY: all build run test unit e2e lint bench fuzz controlplane image clean istiodiff

all: build

## build: the sidecar-webhook binary in bin/
build:
	$(GO) build -o $(BIN)/sidecar-webhook ./cmd/sidecar-webhook

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

## run: a local control plane (etcd + kube-apiserver) with the webhook
## registered; prints `ready: export KUBECONFIG=...`; Ctrl-C stops it all.
run: build controlplane
	$(GO) mod download istio.io/api
	$(BIN)/sidecar-webhook dev --state-dir $(CURDIR)/.local --log-development $(RUN_FLAGS)

## test: lint, unit tests, end-to-end tests against the real control plane,
## and the comparison with Istio's own code (test/istiodiff).
test: lint build controlplane
	$(GO) mod download istio.io/api
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test $(TEST_FLAGS) ./...
	$(MAKE) istiodiff

## istiodiff: the project's answers against Istio's own code (a module of its
## own that imports istio.io/istio). Without -race: Istio is large, and the
## race detector would triple its build.
istiodiff:
	cd test/istiodiff && $(GO) vet ./... && $(GO) test -count=1 ./...

## unit: the tests that need no control plane.
unit:
	$(GO) test -short $(TEST_FLAGS) $$($(GO) list ./... | grep -v -e /test/ -e /internal/localcluster -e /clusterview/informer)

## e2e: only the end-to-end tests.
e2e: build controlplane
	KUBEBUILDER_ASSETS=$(BIN) $(GO) test $(TEST_FLAGS) -v ./test/e2e/...

## lint: go vet, gofmt and staticcheck.
lint:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'))"; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## bench: Go benchmarks and the HTTPS load benchmark against a local control
## plane with synthetic state; rewrites docs/performance.md (hack/bench.sh).
bench: build controlplane
	$(GO) mod download istio.io/api
	hack/bench.sh

## fuzz: run each fuzz target for FUZZ_TIME (make test only replays the corpus).
fuzz:
	@for target in $$(grep -rhoE '^func (Fuzz[A-Za-z0-9_]+)' --include='*_test.go' . | sed 's/func //'); do \
	  pkg=$$(dirname $$(grep -rlE "^func $$target\(" --include='*_test.go' .)); \
	  echo "fuzzing $$target in $$pkg for $(FUZZ_TIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) $$pkg; \
	done

## image: the container image (needs a container engine; not run in CI here).
image:
	docker build -t sidecar-webhook:latest .

clean:
	rm -rf $(BIN)/sidecar-webhook .local
