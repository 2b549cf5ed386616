#!/usr/bin/env bash
# Runs the two sweeps behind the plots of docs/BENCHMARKS.md, one
# `escrowctl bench --json` report per point, then draws the plots with
# `escrowctl bench-plot --out-dir docs/bench`:
#   1. pool size: `bench --modes escrowflow -n N -c N --pool-size P` for
#      P in $SWEEP_POOLS (default "3 6 9 12"), N = $SWEEP_N (default 12);
#   2. concurrency: `bench --modes escrowflow,direct -n max(C, min(N, 4))
#      -c C --pool-size min(3C, 12)` for C in $SWEEP_CONCURRENCY (default
#      "1 2 4 8 12"). The pool follows direct's 3 wallet-rpc processes per
#      escrow in flight, capped at the pool sweep's largest default (12); at
#      least 4 escrows per run (fewer when SWEEP_N is smaller) keep the
#      percentiles from resting on one or two escrows without making the
#      low-concurrency runs long.
# Reports go to $1 (default docs/bench/runs) as pool-P.json and
# concurrency-C.json. A bench run with failures still writes its report:
# bench-plot leaves out a mode that did not run to the end or completed no
# escrow, and plots the completed escrows' figures of the others. The
# script then goes on, draws the plots and exits 1 at the end. TEMPORAL_ADDRESS is unset:
# every escrowflow run needs its own dev server and worker with the pool
# size under test. With the defaults that is 9 bench runs, each starting its
# own processes: expect tens of minutes. Progress goes to stderr.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
out=${1:-docs/bench/runs}
if [[ $out != /* ]]; then
  out="$PWD/$out" # relative to the caller's directory, before the cd
fi
cd "$REPO"

SWEEP_POOLS=${SWEEP_POOLS:-3 6 9 12}
SWEEP_CONCURRENCY=${SWEEP_CONCURRENCY:-1 2 4 8 12}
SWEEP_N=${SWEEP_N:-12}
readonly POOL_CAP=12 MIN_N=4

log() { echo "bench-sweep: $*" >&2; }

# positive_ints NAME VALUE...: every VALUE is a positive integer.
positive_ints() {
  local name=$1 v
  shift
  if [[ $# -eq 0 ]]; then
    log "$name is empty"
    exit 2
  fi
  for v in "$@"; do
    if ! [[ $v =~ ^[1-9][0-9]*$ ]]; then
      log "$name: $v is not a positive integer"
      exit 2
    fi
  done
}
read -r -a pools <<<"$SWEEP_POOLS"
read -r -a concurrency <<<"$SWEEP_CONCURRENCY"
positive_ints SWEEP_POOLS "${pools[@]}"
positive_ints SWEEP_CONCURRENCY "${concurrency[@]}"
positive_ints SWEEP_N "$SWEEP_N"

unset TEMPORAL_ADDRESS

log "building bin/escrowctl"
go build -o bin/escrowctl ./cmd/escrowctl
mkdir -p "$out"

reports=()
failed=0

# bench FILE ARGS...: runs bin/escrowctl bench --json ARGS into FILE.
bench() {
  local file=$1 rc=0 kept=0
  shift
  log "$(date +%H:%M:%S) escrowctl bench $* > $file"
  bin/escrowctl bench --json "$@" >"$file.tmp" || rc=$?
  if [[ -s $file.tmp ]]; then
    mv "$file.tmp" "$file"
    reports+=("$file")
    kept=1
  else
    rm -f "$file.tmp"
  fi
  if [[ $rc -ne 0 ]]; then
    failed=1
    if [[ $kept -eq 1 ]]; then
      log "exit status $rc: kept the report (only completed escrows count in its figures)"
    else
      log "exit status $rc: no report"
    fi
  fi
}

for p in "${pools[@]}"; do
  bench "$out/pool-$p.json" --modes escrowflow -n "$SWEEP_N" -c "$SWEEP_N" --pool-size "$p"
done
for c in "${concurrency[@]}"; do
  n=$((SWEEP_N < MIN_N ? SWEEP_N : MIN_N))
  n=$((c > n ? c : n))
  pool=$((3 * c < POOL_CAP ? 3 * c : POOL_CAP))
  bench "$out/concurrency-$c.json" --modes escrowflow,direct -n "$n" -c "$c" --pool-size "$pool"
done

if [[ ${#reports[@]} -eq 0 ]]; then
  log "no report to plot"
  exit 1
fi
log "plotting ${#reports[@]} reports"
bin/escrowctl bench-plot --out-dir docs/bench "${reports[@]}"
if [[ $failed -ne 0 ]]; then
  log "some bench runs failed; see above"
  exit 1
fi
