#!/usr/bin/env bash
# Runs the escrowflow demo (`make demo`, which installs prerequisites and
# builds bin/ first):
#   1. a Temporal dev server on 127.0.0.1:7233 (Web UI 127.0.0.1:8233) with
#      its SQLite db in .escrowflow/ — reused when already running;
#   2. a regtest monerod (fixed difficulty 1, offline, on free 127.0.0.1
#      ports, its chain in .escrowflow/regtest/) — reused when already
#      running — and a freshly started monero-wallet-rpc on it that holds the
#      demo's faucet and the parties' own wallets;
#   3. a freshly started bin/escrow-worker on that daemon (--network regtest;
#      a running one is stopped first);
#   4. `bin/escrowctl demo --count 3` (three escrow setups at once), then
#      `bin/escrowctl demo-trades` (three trades: release, refund, dispute
#      resolved), then `bin/escrowctl demo-trades --external` (one trade
#      whose buyer and vendor keep their own wallets, released); the script
#      fails when any of them does.
#      With DEMO_RUN=0 the script stops after step 3: Temporal, the chain and
#      the worker run, nothing else (scripts/seed-check.sh uses this).
# The stack keeps running afterwards; `make down` (scripts/down.sh) stops it.
#
# State lives in .escrowflow/ at the repository root (git-ignored): pid files,
# logs, temporal.db, master.key (the worker's master secret, created once),
# codec.keys, the worker's wallets (wallets/) and the chain (regtest/).
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
MONEROD_BIN="$(command -v monerod || true)"
WALLET_RPC_BIN="$(command -v monero-wallet-rpc || true)"
TEMPORAL_IP=127.0.0.1
# The documented ports; DEMO_TEMPORAL_PORT, DEMO_UI_PORT, DEMO_CODEC_PORT and
# DEMO_METRICS_PORT move them, to run a second stack beside one on these.
TEMPORAL_PORT="${DEMO_TEMPORAL_PORT:-7233}"
TEMPORAL_UI_PORT="${DEMO_UI_PORT:-8233}"
TEMPORAL_ADDR="$TEMPORAL_IP:$TEMPORAL_PORT"
UI_URL="http://$TEMPORAL_IP:$TEMPORAL_UI_PORT"
TEMPORAL_START_TIMEOUT=60
WORKER_START_TIMEOUT=90
CHAIN_START_TIMEOUT=60
# The worker's metrics listener (its default), which answers /readyz.
METRICS_PORT="${DEMO_METRICS_PORT:-9464}"

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
[ -n "$MONEROD_BIN" ] && [ -n "$WALLET_RPC_BIN" ] ||
	die "monerod or monero-wallet-rpc is not on PATH; run \`make demo\` (it installs Debian's monero package)"
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
CODEC_ADDR="$TEMPORAL_IP:${DEMO_CODEC_PORT:-8234}"

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

# --- regtest chain: monerod and the demo's wallet-rpc ---------------------------
# A private chain (mainnet-format addresses): fixed difficulty 1, blocks mined
# on demand by `generateblocks`, no peers. Both listen on 127.0.0.1 only, on
# free ports recorded in .escrowflow/monerod.port and wallet-rpc.port.
CHAIN="$STATE/regtest"
mkdir -p "$CHAIN/wallets"
if mpid="$(running_pid monerod "$MONEROD_BIN")" && [ -s "$STATE/monerod.port" ]; then
	MONEROD_PORT="$(tr -cd '0-9' <"$STATE/monerod.port")"
	log "monerod: reusing running regtest daemon (pid $mpid)"
else
	"$REPO/scripts/down.sh" monerod >/dev/null
	MONEROD_PORT="$(free_port)" && P2P_PORT="$(free_port)" || die "no free port on 127.0.0.1 for monerod"
	# --keep-fakechain: a restarted daemon keeps the chain that the faucet's
	# and the escrows' wallets have seen (regtest starts afresh without it).
	start_bg monerod "$MONEROD_BIN" --regtest --keep-fakechain --offline --fixed-difficulty 1 \
		--data-dir "$CHAIN/monerod" --non-interactive --no-igd --no-zmq \
		--rpc-bind-ip "$TEMPORAL_IP" --rpc-bind-port "$MONEROD_PORT" \
		--p2p-bind-ip "$TEMPORAL_IP" --p2p-bind-port "$P2P_PORT" \
		--log-file "$CHAIN/monerod.log"
	echo "$MONEROD_PORT" >"$STATE/monerod.port"
	mpid="$(cat "$STATE/monerod.pid")"
	log "monerod: started regtest daemon (pid $mpid), log .escrowflow/monerod.log"
fi
DAEMON_ADDR="$TEMPORAL_IP:$MONEROD_PORT"
deadline=$((SECONDS + CHAIN_START_TIMEOUT))
until http_ok "$TEMPORAL_IP" "$MONEROD_PORT" /get_height; do
	pid_alive "$mpid" || fail_with_log monerod "monerod (pid $mpid) exited during start-up"
	[ "$SECONDS" -lt "$deadline" ] ||
		fail_with_log monerod "monerod not ready on $DAEMON_ADDR within ${CHAIN_START_TIMEOUT}s"
	sleep 0.5
done
log "monerod: ready on $DAEMON_ADDR"

# The demo's own wallet-rpc (no login: loopback only, regtest coins), always
# restarted so that it follows the daemon it was started for.
"$REPO/scripts/down.sh" wallet-rpc >/dev/null
WALLET_RPC_PORT="$(free_port)" || die "no free port on 127.0.0.1 for monero-wallet-rpc"
start_bg wallet-rpc "$WALLET_RPC_BIN" --daemon-address "$DAEMON_ADDR" --trusted-daemon \
	--disable-rpc-login --rpc-ssl disabled --daemon-ssl disabled --non-interactive \
	--rpc-bind-ip "$TEMPORAL_IP" --rpc-bind-port "$WALLET_RPC_PORT" \
	--wallet-dir "$CHAIN/wallets" --log-file "$CHAIN/wallet-rpc.log"
echo "$WALLET_RPC_PORT" >"$STATE/wallet-rpc.port"
rpid="$(cat "$STATE/wallet-rpc.pid")"
deadline=$((SECONDS + CHAIN_START_TIMEOUT))
until port_open "$TEMPORAL_IP" "$WALLET_RPC_PORT"; do
	pid_alive "$rpid" || fail_with_log wallet-rpc "monero-wallet-rpc (pid $rpid) exited during start-up"
	[ "$SECONDS" -lt "$deadline" ] ||
		fail_with_log wallet-rpc "monero-wallet-rpc not listening on $TEMPORAL_IP:$WALLET_RPC_PORT within ${CHAIN_START_TIMEOUT}s"
	sleep 0.5
done
log "wallet-rpc: started (pid $rpid) on $TEMPORAL_IP:$WALLET_RPC_PORT for the faucet and the parties' wallets"

# --- worker -----------------------------------------------------------------
# Stop a running worker (by its recorded PID) so the freshly built one runs.
"$REPO/scripts/down.sh" worker
if port_open "$TEMPORAL_IP" "$METRICS_PORT"; then
	die "port $TEMPORAL_IP:$METRICS_PORT (the worker's /metrics and /readyz) is in use by a process this script did not start; stop it first"
fi
# Its wallets live in .escrowflow/wallets: regtest wallets use mainnet's
# address format, so they never mix with wallets of another network.
ESCROWFLOW_MASTER_SECRET_FILE="$STATE/master.key" \
	ESCROWFLOW_CODEC_KEYS_FILE="$STATE/codec.keys" \
	ESCROWFLOW_WALLET_DIR="$STATE/wallets" \
	ESCROWFLOW_NETWORK=regtest \
	ESCROWFLOW_DAEMON_ADDRESS="$DAEMON_ADDR" \
	ESCROWFLOW_TRUSTED_DAEMON=true \
	ESCROWFLOW_CODEC_ADDRESS="$CODEC_ADDR" \
	ESCROWFLOW_METRICS_ADDRESS="$TEMPORAL_IP:$METRICS_PORT" \
	TEMPORAL_ADDRESS="$TEMPORAL_ADDR" \
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
	log "DEMO_RUN=0: stack is up (Temporal $TEMPORAL_ADDR, Web UI $UI_URL, monerod $DAEMON_ADDR), no demo run"
	exit 0
fi
export ESCROWFLOW_CODEC_KEYS_FILE="$STATE/codec.keys" TEMPORAL_ADDRESS="$TEMPORAL_ADDR"
rc=0

# 1. Hosted setup: three EscrowSetups at once and the timeline of their rounds.
echo
echo "== 1. Three escrow setups at once (EscrowSetup) =="
"$CTL_BIN" demo --count 3 || { rc=$?; log "escrowctl demo failed with exit code $rc"; }

# 2. The money flow: three EscrowTrades at once on the regtest chain, funded
#    from the faucet; one released, one refunded, one disputed and resolved.
echo
echo "== 2. Three trades on a regtest chain (EscrowTrade): release, refund, dispute resolved 70/30 =="
"$CTL_BIN" demo-trades --daemon-address "$DAEMON_ADDR" --wallet-rpc "http://$TEMPORAL_IP:$WALLET_RPC_PORT" ||
	{ rc=$?; log "escrowctl demo-trades failed with exit code $rc"; }

# 3. External custody: one trade whose buyer and vendor keep their own keys
#    (reference participants, each with its own dir, key and wallet-rpc under
#    .escrowflow/participants/); the worker holds only the arbiter's wallet.
echo
echo "== 3. One trade with external buyer and vendor (own keys and wallets): set up and released =="
"$CTL_BIN" demo-trades --external --participants-dir "$STATE/participants" --participant-wallet-rpc "$WALLET_RPC_BIN" \
	--daemon-address "$DAEMON_ADDR" --wallet-rpc "http://$TEMPORAL_IP:$WALLET_RPC_PORT" ||
	{ rc=$?; log "escrowctl demo-trades --external failed with exit code $rc"; }

echo
echo "Temporal Web UI: $UI_URL"
echo "The stack (Temporal dev server, regtest monerod and wallet-rpc, escrow worker) keeps running; logs are in .escrowflow/."
echo "Stop it with: make down"
exit "$rc"
