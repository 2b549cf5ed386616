#!/usr/bin/env bash
# Runs the escrowflow demo (`make demo`, which installs prerequisites and
# builds bin/ first):
#   1. a Temporal dev server on 127.0.0.1:7233 (Web UI 127.0.0.1:8233) with
#      its SQLite db in .escrowflow/ — reused when already running;
#   2. a freshly started bin/escrow-worker (a running one is stopped first);
#   3. `bin/escrowctl demo --count 3`, whose exit code is the script's.
#      With DEMO_RUN=0 the script stops after step 2: Temporal and the worker
#      run, nothing else (scripts/seed-check.sh uses this).
# The stack keeps running afterwards; `make down` (scripts/down.sh) stops it.
#
# State lives in .escrowflow/ at the repository root (git-ignored): pid files,
# logs, temporal.db and master.key (the worker's master secret, created once).
set -euo pipefail
set +m # no job control: a background job is then never a process group leader,
# so `setsid` below runs in-process and $! is the PID of the started binary.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"
STATE="$REPO/.escrowflow"
TEMPORAL_BIN="$REPO/bin/temporal"
WORKER_BIN="$REPO/bin/escrow-worker"
CTL_BIN="$REPO/bin/escrowctl"
DEVSERVER_BIN="$REPO/bin/escrow-devserver"
TEMPORAL_IP=127.0.0.1
TEMPORAL_PORT=7233
TEMPORAL_UI_PORT=8233
TEMPORAL_ADDR="$TEMPORAL_IP:$TEMPORAL_PORT"
UI_URL="http://$TEMPORAL_IP:$TEMPORAL_UI_PORT"
TEMPORAL_START_TIMEOUT=60
WORKER_START_TIMEOUT=90
# The worker's metrics listener (its default), which answers /readyz.
METRICS_PORT=9464

log() { printf 'demo: %s\n' "$*"; }
die() {
	printf 'demo: ERROR: %s\n' "$*" >&2
	exit 1
}

on_exit() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		printf 'demo: failed (exit %s); logs are in .escrowflow/, `make down` stops whatever is still running\n' "$rc" >&2
	fi
}
trap on_exit EXIT

# --- process helpers ----------------------------------------------------------
# shellcheck source=scripts/lib.sh
. "$REPO/scripts/lib.sh"

# start_bg NAME BINARY ARGS...: starts BINARY detached (own session, immune
# to the terminal's SIGINT/SIGHUP) with output to .escrowflow/NAME.log and
# records its PID in .escrowflow/NAME.pid.
start_bg() {
	local name="$1"
	shift
	[ ! -f "$STATE/$name.log" ] || mv -f "$STATE/$name.log" "$STATE/$name.log.prev"
	if command -v setsid >/dev/null 2>&1; then
		setsid nohup "$@" >"$STATE/$name.log" 2>&1 </dev/null &
	else
		nohup "$@" >"$STATE/$name.log" 2>&1 </dev/null &
	fi
	echo "$!" >"$STATE/$name.pid"
}

# fail_with_log NAME MESSAGE: prints the tail of NAME's log and exits.
fail_with_log() {
	printf 'demo: ---- last 40 lines of .escrowflow/%s.log ----\n' "$1" >&2
	tail -n 40 "$STATE/$1.log" >&2 || true
	printf 'demo: ----\n' >&2
	die "$2"
}

# --- preparation ------------------------------------------------------------
for b in "$TEMPORAL_BIN" "$WORKER_BIN" "$CTL_BIN" "$DEVSERVER_BIN"; do
	[ -x "$b" ] || die "${b#"$REPO"/} is missing; run \`make demo\` (it installs prerequisites and builds)"
done
mkdir -p "$STATE"
chmod 700 "$STATE"

if [ ! -s "$STATE/master.key" ]; then
	(
		umask 077
		head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$STATE/master.key.tmp"
	)
	[ "$(wc -c <"$STATE/master.key.tmp")" -eq 64 ] || die "could not generate .escrowflow/master.key"
	mv -f "$STATE/master.key.tmp" "$STATE/master.key"
	log "created master secret .escrowflow/master.key (keep it: the demo wallets' passwords derive from it)"
fi
chmod 600 "$STATE/master.key"

# The payload codec's key ring: workflow history holds multisig messages
# encrypted with it. escrowctl finds it there too (.escrowflow/codec.keys).
if [ ! -s "$STATE/codec.keys" ]; then
	(
		umask 077
		printf 'demo-%s:%s\n' "$(date -u +%Y%m%d)" "$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" >"$STATE/codec.keys.tmp"
	)
	mv -f "$STATE/codec.keys.tmp" "$STATE/codec.keys"
	log "created payload codec key ring .escrowflow/codec.keys"
fi
chmod 600 "$STATE/codec.keys"
CODEC_ADDR="$TEMPORAL_IP:8234"

# --- Temporal dev server ------------------------------------------------------
if tpid="$(running_pid temporal "$TEMPORAL_BIN")"; then
	log "temporal: reusing running dev server (pid $tpid)"
else
	rm -f "$STATE/temporal.pid"
	for p in "$TEMPORAL_PORT" "$TEMPORAL_UI_PORT"; do
		if port_open "$TEMPORAL_IP" "$p"; then
			die "port $TEMPORAL_IP:$p is in use by a process this script did not start; stop it first"
		fi
	done
	# bin/escrow-devserver holds the project's start-dev flags (package
	# internal/devserver) and replaces itself with bin/temporal.
	start_bg temporal "$DEVSERVER_BIN" --cli "$TEMPORAL_BIN" \
		--port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
		--db-filename "$STATE/temporal.db" --ui-codec-endpoint "http://$CODEC_ADDR"
	tpid="$(cat "$STATE/temporal.pid")"
	log "temporal: started dev server (pid $tpid), log .escrowflow/temporal.log"
fi

# Ready = the frontend accepts connections and EscrowState is a Keyword search
# attribute. start-dev registers it on every start (also on an existing db);
# should it still be missing (e.g. a db from an older run), create it.
deadline=$((SECONDS + TEMPORAL_START_TIMEOUT))
created=0
while :; do
	pid_alive "$tpid" || fail_with_log temporal "temporal dev server (pid $tpid) exited"
	if port_open "$TEMPORAL_IP" "$TEMPORAL_PORT"; then
		if attrs="$("$TEMPORAL_BIN" operator search-attribute list --address "$TEMPORAL_ADDR" --command-timeout 5s 2>/dev/null)"; then
			if printf '%s\n' "$attrs" | grep -Eq '^[[:space:]]*EscrowState[[:space:]]+Keyword[[:space:]]*$'; then
				break
			elif printf '%s\n' "$attrs" | grep -Eq '^[[:space:]]*EscrowState[[:space:]]'; then
				die "search attribute EscrowState exists with a type other than Keyword"
			elif [ "$created" -eq 0 ]; then
				log "temporal: search attribute EscrowState missing, creating it"
				"$TEMPORAL_BIN" operator search-attribute create --name EscrowState --type Keyword \
					--address "$TEMPORAL_ADDR" --command-timeout 10s || true
				created=1
			fi
		fi
	fi
	[ "$SECONDS" -lt "$deadline" ] ||
		fail_with_log temporal "temporal dev server not ready on $TEMPORAL_ADDR within ${TEMPORAL_START_TIMEOUT}s"
	sleep 0.5
done
log "temporal: ready on $TEMPORAL_ADDR (search attribute EscrowState)"

# --- worker -----------------------------------------------------------------
# Stop a running worker (by its recorded PID) so the freshly built one runs.
"$REPO/scripts/down.sh" worker
if port_open "$TEMPORAL_IP" "$METRICS_PORT"; then
	die "port $TEMPORAL_IP:$METRICS_PORT (the worker's /metrics and /readyz) is in use by a process this script did not start; stop it first"
fi
ESCROWFLOW_MASTER_SECRET_FILE="$STATE/master.key" \
	ESCROWFLOW_CODEC_KEYS_FILE="$STATE/codec.keys" \
	ESCROWFLOW_CODEC_ADDRESS="$CODEC_ADDR" \
	ESCROWFLOW_CODEC_ORIGIN="$UI_URL" \
	start_bg worker "$WORKER_BIN"
wpid="$(cat "$STATE/worker.pid")"
log "worker: started (pid $wpid), log .escrowflow/worker.log"
deadline=$((SECONDS + WORKER_START_TIMEOUT))
until http_ok "$TEMPORAL_IP" "$METRICS_PORT" /readyz; do
	pid_alive "$wpid" || fail_with_log worker "escrow-worker (pid $wpid) exited during start-up"
	[ "$SECONDS" -lt "$deadline" ] ||
		fail_with_log worker "escrow-worker not ready (GET http://$TEMPORAL_IP:$METRICS_PORT/readyz) within ${WORKER_START_TIMEOUT}s"
	sleep 0.5
done
log "worker: ready"

# --- demo -------------------------------------------------------------------
if [ "${DEMO_RUN:-1}" = 0 ]; then
	log "DEMO_RUN=0: stack is up (Temporal $TEMPORAL_ADDR, Web UI $UI_URL), no demo run"
	exit 0
fi
rc=0
ESCROWFLOW_CODEC_KEYS_FILE="$STATE/codec.keys" "$CTL_BIN" demo --count 3 || rc=$?

echo
echo "Temporal Web UI: $UI_URL"
echo "The stack (Temporal dev server, escrow worker) keeps running; logs are in .escrowflow/."
echo "Stop it with: make down"
if [ "$rc" -ne 0 ]; then
	log "escrowctl demo failed with exit code $rc"
fi
exit "$rc"
