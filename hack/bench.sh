#!/usr/bin/env bash
# hack/bench.sh: the performance harness behind `make bench`.
#
# 1. Go benchmarks of the hot paths (go test -bench, short -benchtime; built
#    without the controlplane tag, as `make unit` is, so no control plane
#    starts).
# 2. The HTTPS load benchmark (hack/loadbench, a module of its own): a
#    local control plane loaded with synthetic state, the production server
#    as child processes (one replica deciding alone, and a decision leader
#    with a follower), every scenario next to the floor server and, for the
#    reference's ratings Sidecar, Istio's own validation webhook and the
#    relay (the cheapest possible follower: a floor forwarding to a floor).
# 3. Rewrites the results block (docs/performance.md) and the summary
#    block (README.md's performance table) between their marker comments,
#    in whichever of README.md and docs/*.md holds them.
#
# Environment (defaults in brackets):
#   BENCH_STATE        small, large or both [both]
#   BENCH_DURATION     length of each load measurement [10s]
#   BENCH_CONCURRENCY  comma-separated concurrencies [1,8,64]
#   BENCH_BENCHTIME    go test -benchtime [300ms]
#   BENCH_GO           run the Go benchmarks: 1 or 0 [1]
#   BENCH_LOAD         run the load benchmark: 1 or 0 [1]
#   BENCH_STATE_DIR    keep control plane data here and reuse a loaded state
#                      (the state load time is then not measured) [unset]
#   BENCH_WAIT_IDLE    wait up to this many seconds for the 1-minute load
#                      average to drop below 1.5 before measuring [600]
#   BENCH_SERVER_ENV   space-separated KEY=VALUE for the server process, e.g.
#                      GOMEMLIMIT=170MiB [unset]
#   BENCH_OUT          the page that gets the results block when no page
#                      (README.md, docs/*.md) holds its markers yet
#                      [docs/performance.md]
# GOFLAGS applies to every build (for example an -overlay to measure a
# change without committing it) and is recorded with the command.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-go}
STATE=${BENCH_STATE:-both}
DURATION=${BENCH_DURATION:-10s}
CONCURRENCY=${BENCH_CONCURRENCY:-1,8,64}
BENCHTIME=${BENCH_BENCHTIME:-300ms}
RUN_GO=${BENCH_GO:-1}
RUN_LOAD=${BENCH_LOAD:-1}
WAIT_IDLE=${BENCH_WAIT_IDLE:-600}
OUT=${BENCH_OUT:-docs/performance.md}
COMMAND="${BENCH_COMMAND:-hack/bench.sh} (BENCH_STATE=$STATE BENCH_DURATION=$DURATION BENCH_CONCURRENCY=$CONCURRENCY BENCH_BENCHTIME=$BENCHTIME BENCH_WAIT_IDLE=$WAIT_IDLE${BENCH_STATE_DIR:+ BENCH_STATE_DIR=$BENCH_STATE_DIR}${GOFLAGS:+ GOFLAGS=$GOFLAGS}${BENCH_SERVER_ENV:+ BENCH_SERVER_ENV=$BENCH_SERVER_ENV})"

work=$(mktemp -d "${TMPDIR:-/tmp}/sidecar-webhook-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

log "building"
$GO build -o "$work/sidecar-webhook" ./cmd/sidecar-webhook
(cd hack/loadbench && for cmd in loadbench floor istio-validation relay; do $GO build -o "$work/$cmd" ./cmd/$cmd; done)

if [[ $RUN_LOAD == 1 ]]; then
  for tool in kube-apiserver etcd; do
    if [[ ! -x ${KUBEBUILDER_ASSETS:-$ROOT/bin}/$tool ]]; then
      echo "hack/bench.sh: ${KUBEBUILDER_ASSETS:-$ROOT/bin}/$tool is missing; run make controlplane" >&2
      exit 1
    fi
  done
  # The Istio CRDs come from the istio.io/api module.
  $GO mod download istio.io/api
fi

# Measurements on a busy machine measure the other work: wait for quiet.
waited=0
while awk -v max=1.5 '{ exit !($1 > max) }' /proc/loadavg && (( waited < WAIT_IDLE )); do
  log "load average $(loadavg) is above 1.5; waiting (${waited}s of ${WAIT_IDLE}s)"
  sleep 30
  waited=$((waited + 30))
done
LOAD_BEFORE=$(loadavg)
log "load average at start: $LOAD_BEFORE"

if [[ $RUN_GO == 1 ]]; then
  log "Go benchmarks (-benchtime $BENCHTIME)"
  $GO test -run '^$' -bench . -benchmem -benchtime "$BENCHTIME" ./... | tee "$work/gobench.txt" >&2
fi

if [[ $RUN_LOAD == 1 ]]; then
  log "load benchmark (state $STATE, $DURATION per measurement, concurrency $CONCURRENCY)"
  extra=()
  [[ -n ${BENCH_STATE_DIR:-} ]] && extra+=(--state-dir "$BENCH_STATE_DIR")
  for kv in ${BENCH_SERVER_ENV:-}; do extra+=(--server-env "$kv"); done
  "$work/loadbench" --state "$STATE" --duration "$DURATION" --concurrency "$CONCURRENCY" \
    --server-bin "$work/sidecar-webhook" --floor-bin "$work/floor" --istio-bin "$work/istio-validation" --relay-bin "$work/relay" \
    --ratings validation/testdata/reference/ratings.yaml "${extra[@]}" \
    --out "$work/results.json" --markdown "$work/load.md" --summary "$work/summary.md" | tee "$work/load.txt"
fi
LOAD_AFTER=$(loadavg)

cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
machine="$(nproc) CPUs ($cpu), $mem RAM, $(uname -sr), $($GO env GOVERSION)"
date=$(date -u +'%Y-%m-%d %H:%M UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain 2>/dev/null | grep -v '^??' || true) ]]; then commit="$commit (with local changes)"; fi

# The Go benchmark table: name, ns/op, B/op, allocs/op.
gobench_table() {
  echo "| benchmark | ns/op | B/op | allocs/op |"
  echo "|---|--:|--:|--:|"
  awk '/^pkg: / { pkg = $2; sub(".*/sidecar-webhook/", "", pkg) }
       /^Benchmark/ {
         name = $1; sub(/-[0-9]+$/, "", name)
         ns = ""; b = ""; a = ""
         for (i = 3; i < NF; i++) {
           if ($(i+1) == "ns/op") ns = $i
           if ($(i+1) == "B/op") b = $i
           if ($(i+1) == "allocs/op") a = $i
         }
         printf "| %s %s | %s | %s | %s |\n", pkg, name, ns, b, a
       }' "$work/gobench.txt"
}

{
  echo "<!-- bench:begin (generated by hack/bench.sh; do not edit by hand) -->"
  echo
  echo "- Command: \`$COMMAND\`"
  echo "- Machine: $machine"
  echo "- Date: $date; commit $commit"
  echo "- Load average (1, 5, 15 min): $LOAD_BEFORE at start, $LOAD_AFTER at end"
  if [[ $RUN_LOAD == 1 ]]; then
    echo
    echo "### Load benchmark"
    echo
    echo "Each row: one server answering a scenario's reviews, next to the floor (\`hack/loadbench/cmd/floor\`: the review decoded by the same HTTPS server and admission path, \"allowed\" answered) with the same request bodies; a scenario's servers are measured in alternation (five turns each, so that background load weighs on all alike). Servers: \`alone\`, one replica with leader election off (an admitted Sidecar is confirmed by a direct read); \`leader\` and \`follower\`, two replicas with leader election on (the follower forwards Sidecar decisions to the leader); \`istio\`, Istio's validation webhook (\`pkg/webhooks/validation/server\`, served as istiod serves it); \`relay\`, the cheapest possible follower (\`hack/loadbench/cmd/relay\`: the floor's admission path forwarding each review, as the follower forwards, to a second floor; ratings scenario only). HTTP/2 over one kept-alive TLS connection per server; latency is per request, percentiles are exact."
    echo
    cat "$work/load.md"
  fi
  if [[ $RUN_GO == 1 ]]; then
    echo
    echo "### Go benchmarks"
    echo
    gobench_table
  fi
  echo
  echo "<!-- bench:end -->"
} > "$work/block.md"

{
  echo "<!-- bench:summary:begin (generated by hack/bench.sh; do not edit by hand) -->"
  echo
  echo "Command \`$COMMAND\`; $machine; $date; commit $commit; load average $LOAD_BEFORE at start, $LOAD_AFTER at end. Concurrency 8; floor figures in brackets."
  echo
  [[ -f $work/summary.md ]] && cat "$work/summary.md"
  echo
  echo "<!-- bench:summary:end -->"
} > "$work/summary-block.md"

# replace_block FILE BEGIN END BLOCKFILE: swaps the lines from BEGIN to END
# (inclusive) for BLOCKFILE. The markers may sit anywhere in the page (a
# section can move); a begin marker without its end marker is an error, so
# that the rest of the page is never cut away.
replace_block() {
  local file=$1 begin=$2 end=$3 block=$4
  if ! grep -q "^$end" "$file"; then
    echo "hack/bench.sh: $file has $begin but no $end; not rewritten" >&2
    return 1
  fi
  awk -v begin="$begin" -v end="$end" -v block="$block" '
    index($0, begin) == 1 { while ((getline line < block) > 0) print line; close(block); skip = 1; next }
    skip && index($0, end) == 1 { skip = 0; next }
    !skip { print }' "$file" > "$file.tmp"
  mv "$file.tmp" "$file"
}

# rewrite BEGIN END BLOCKFILE: rewrites the block in every page that holds
# its begin marker (README.md and docs/*.md, wherever a section has moved);
# sets REWRITTEN to how many pages held it.
rewrite() {
  local begin=$1 end=$2 block=$3 file
  REWRITTEN=0
  for file in README.md docs/*.md; do
    [[ -f $file ]] && grep -q "^$begin" "$file" || continue
    replace_block "$file" "$begin" "$end" "$block"
    log "rewrote the ${begin#<!-- } block in $file"
    REWRITTEN=$((REWRITTEN + 1))
  done
}

mkdir -p "$(dirname "$OUT")"
if [[ ! -f $OUT ]]; then
  cat > "$OUT" <<'HEADER'
# Performance

Regenerate with `make bench` (runs `hack/bench.sh`; see the script for its
settings).

HEADER
fi
rewrite "<!-- bench:begin" "<!-- bench:end" "$work/block.md"
if (( REWRITTEN == 0 )); then
  # No page holds the results block yet: it goes at the end of $OUT.
  cat "$work/block.md" >> "$OUT"
  log "appended the results block to $OUT"
fi
rewrite "<!-- bench:summary:begin" "<!-- bench:summary:end" "$work/summary-block.md"
if (( REWRITTEN == 0 )); then
  echo "hack/bench.sh: no page holds <!-- bench:summary:begin -->; the summary is in $work/summary-block.md (kept)" >&2
  trap - EXIT
fi
