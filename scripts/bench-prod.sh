#!/usr/bin/env bash
# Measures escrowflow on two workers against the PostgreSQL-backed Temporal
# server of `make prod-up` and against the dev server of `make demo`, in one
# run: `escrowctl bench --modes escrowflow` with N escrows, C in flight, each
# time on a fresh stack in a temporary folder (docs/BENCHMARKS.md).
#
# Usage: scripts/bench-prod.sh            (BENCH_N=24 BENCH_C=6 by default)
#
# Needs what make prod-up needs (make prereqs-prod build). Ports 2xxxx on
# 127.0.0.1 (BENCH_PORT_BASE, default 27000). Prints both reports and writes
# the JSON reports to BENCH_OUT (default: the temporary folder, kept).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
N="${BENCH_N:-24}"
C="${BENCH_C:-6}"
BASE="${BENCH_PORT_BASE:-27000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/escrowflow-bench-prod.XXXXXX")"
chmod 755 "$WORK" # the postgres user runs the database out of it
OUT="${BENCH_OUT:-$WORK}"
CLI="$REPO/bin/temporal"

log() { printf 'bench-prod: %s\n' "$*"; }

# cpu PID...: CPU seconds the processes used so far (utime + stime).
cpu() {
	local total=0 t
	for pid in "$@"; do
		t="$(ps -o times= -p "$pid" 2>/dev/null | tr -d ' ')" || continue
		total=$((total + ${t:-0}))
	done
	echo "$total"
}
# pg_pids: the postmaster of the prod stack and its children.
pg_pids() {
	local pm
	pm="$(head -n1 "$WORK/prod/postgres/data/postmaster.pid")"
	echo "$pm" $(ps -o pid= --ppid "$pm")
}

export FRONTEND_GRPC_PORT=$((BASE + 233)) FRONTEND_HTTP_PORT=$((BASE + 243)) FRONTEND_MEMBERSHIP_PORT=$((BASE + 933))
export HISTORY_GRPC_PORT=$((BASE + 234)) HISTORY_MEMBERSHIP_PORT=$((BASE + 934))
export MATCHING_GRPC_PORT=$((BASE + 235)) MATCHING_MEMBERSHIP_PORT=$((BASE + 935))
export WORKER_GRPC_PORT=$((BASE + 239)) WORKER_MEMBERSHIP_PORT=$((BASE + 939))
export PROD_PG_PORT=$((BASE + 432)) PROD_UI_PORT=$((BASE + 833)) PROD_CODEC_PORT=$((BASE + 834))
export PROD_METRICS_PORT=$((BASE + 464)) PROD_METRICS_PORT_2=$((BASE + 465))
DEV_PORT=$((BASE + 333))

# export_all NAME PREFIX ESCROWCTL_ARGS...: writes the instrumentation
# export of every escrow whose id starts with PREFIX into $OUT/NAME-exports
# and escrowctl analyze's report of them into $OUT/NAME-analyze.txt.
export_all() {
	local name="$1" prefix="$2" dir="$OUT/$1-exports"
	shift 2
	mkdir -p "$dir"
	for id in $("$REPO/bin/escrowctl" "$@" list --json | grep -o "\"escrowId\": *\"$prefix[^\"]*\"" | cut -d'"' -f4); do
		"$REPO/bin/escrowctl" "$@" export -o "$dir/escrow_$id.json" "$id" >/dev/null
	done
	"$REPO/bin/escrowctl" analyze "$dir"/escrow_*.json >"$OUT/$name-analyze.txt" 2>&1 || true
}

dev_pid=""
cleanup() {
	ESCROWFLOW_PROD_DIR="$WORK/prod" "$REPO/scripts/prod-down.sh" >/dev/null 2>&1 || true
	ESCROWFLOW_PROD_DIR="$WORK/dev" "$REPO/scripts/prod-down.sh" worker-1 worker-2 >/dev/null 2>&1 || true
	if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
		kill -TERM "$dev_pid" 2>/dev/null || true
		wait "$dev_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# --- 1. the PostgreSQL-backed server, mutual TLS --------------------------------
log "PostgreSQL-backed server: starting the stack in $WORK/prod"
ESCROWFLOW_PROD_DIR="$WORK/prod" "$REPO/scripts/prod-up.sh" >"$WORK/prod-up.log"
T="$WORK/prod/tls"
log "PostgreSQL-backed server: $N escrows, $C in flight"
server_pid="$(cat "$WORK/prod/run/temporal-server.pid")"
s0="$(cpu "$server_pid")" p0="$(cpu $(pg_pids))"
"$REPO/bin/escrowctl" --address "127.0.0.1:$FRONTEND_GRPC_PORT" --temporal-tls-cert "$T/client.pem" \
	--temporal-tls-key "$T/client.key" --temporal-tls-ca "$T/ca.pem" --codec-keys-file "$WORK/prod/secrets/codec.keys" \
	bench -n "$N" -c "$C" --modes escrowflow --prefix pg | tee "$OUT/postgres.txt"
log "PostgreSQL-backed server: CPU during the run: temporal-server $(($(cpu "$server_pid") - s0)) s, PostgreSQL $(($(cpu $(pg_pids)) - p0)) s (for $N escrows)"
export_all postgres pg- --address "127.0.0.1:$FRONTEND_GRPC_PORT" --temporal-tls-cert "$T/client.pem" \
	--temporal-tls-key "$T/client.key" --temporal-tls-ca "$T/ca.pem" --codec-keys-file "$WORK/prod/secrets/codec.keys"
ESCROWFLOW_PROD_DIR="$WORK/prod" "$REPO/scripts/prod-down.sh" >/dev/null

# --- 2. the dev server (with make demo's flags, internal/devserver), plaintext ----------------------
log "dev server: starting on 127.0.0.1:$DEV_PORT"
mkdir -p "$WORK/dev"
# escrow-devserver replaces itself with the CLI: $! is the server's pid.
setsid "$REPO/bin/escrow-devserver" --cli "$CLI" --port "$DEV_PORT" --ui-port -1 \
	--db-filename "$WORK/dev/temporal.db" >"$WORK/dev/temporal.log" 2>&1 &
dev_pid=$!
deadline=$((SECONDS + 120))
until "$CLI" operator search-attribute list --address "127.0.0.1:$DEV_PORT" 2>/dev/null | grep -qw EscrowState; do
	kill -0 "$dev_pid" 2>/dev/null || {
		log "dev server exited ($WORK/dev/temporal.log)" >&2
		exit 1
	}
	[ "$SECONDS" -lt "$deadline" ] || {
		log "dev server not ready after 120 s" >&2
		exit 1
	}
	sleep 0.5
done
ESCROWFLOW_PROD_DIR="$WORK/dev" PROD_WORKERS_ONLY="127.0.0.1:$DEV_PORT" "$REPO/scripts/prod-up.sh" >"$WORK/dev-up.log"
log "dev server: $N escrows, $C in flight"
d0="$(cpu "$dev_pid")"
"$REPO/bin/escrowctl" --address "127.0.0.1:$DEV_PORT" --codec-keys-file "$WORK/dev/secrets/codec.keys" \
	bench -n "$N" -c "$C" --modes escrowflow --prefix dev | tee "$OUT/dev.txt"
log "dev server: CPU during the run: temporal server start-dev $(($(cpu "$dev_pid") - d0)) s (for $N escrows)"
export_all dev dev- --address "127.0.0.1:$DEV_PORT" --codec-keys-file "$WORK/dev/secrets/codec.keys"
log "reports and logs in $WORK"
