#!/usr/bin/env bash
# Stops the demo stack started by scripts/demo.sh (`make down`).
#
# Usage: scripts/down.sh [worker|wallet-rpc|monerod|temporal]...
#        (default: all four, in that order)
#
# Each component is stopped by the PID recorded in .escrowflow/<name>.pid,
# never by process name: SIGTERM, up to 15 s grace, then SIGKILL. A PID is
# only signalled when /proc/PID/cmdline shows the binary demo.sh started (from
# this repository's bin/, or monerod and monero-wallet-rpc from PATH);
# otherwise the pid file is stale and just removed.
# Exits 0 when nothing runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE="$REPO/.escrowflow"
# shellcheck source=scripts/lib.sh
. "$REPO/scripts/lib.sh"
STOP_GRACE_SECONDS=15

binary_for() {
	case "$1" in
	worker) printf '%s\n' "$REPO/bin/escrow-worker" ;;
	temporal) printf '%s\n' "$REPO/bin/temporal" ;;
	monerod) command -v monerod || printf '%s\n' monerod ;;
	wallet-rpc) command -v monero-wallet-rpc || printf '%s\n' monero-wallet-rpc ;;
	*)
		printf 'down: unknown component %q (want worker, wallet-rpc, monerod or temporal)\n' "$1" >&2
		return 2
		;;
	esac
}

# pid_pgrp PID: the process group of PID.
pid_pgrp() {
	sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f3
}

# wait_gone PID SECONDS: waits until PID is gone; fails on timeout.
wait_gone() {
	local pid="$1" deadline=$((SECONDS + $2))
	while pid_alive "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# stop_component NAME: stops it; returns 0 when a process was stopped.
stop_component() {
	local name="$1" bin pidfile pid
	bin="$(binary_for "$name")"
	pidfile="$STATE/$name.pid"
	[ -f "$pidfile" ] || return 1
	pid="$(tr -cd '0-9' <"$pidfile")"
	if [ -z "$pid" ] || ! pid_alive "$pid"; then
		rm -f "$pidfile"
		echo "down: $name not running (removed stale pid file)"
		return 1
	fi
	if ! pid_runs "$pid" "$bin"; then
		rm -f "$pidfile"
		echo "down: pid $pid is not our $name (removed stale pid file, left the process alone)"
		return 1
	fi
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" "$STOP_GRACE_SECONDS"; then
		echo "down: $name (pid $pid) still running after ${STOP_GRACE_SECONDS}s, sending SIGKILL"
		# demo.sh starts each component with setsid, so it leads its own
		# process group; kill the group so helper children go too.
		if [ "$(pid_pgrp "$pid")" = "$pid" ]; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		else
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait_gone "$pid" 5 || echo "down: $name (pid $pid) did not exit after SIGKILL" >&2
	fi
	rm -f "$pidfile" "$STATE/$name.port"
	echo "down: stopped $name (pid $pid)"
	return 0
}

components=("$@")
[ "${#components[@]}" -gt 0 ] || components=(worker wallet-rpc monerod temporal)

stopped=0
for c in "${components[@]}"; do
	binary_for "$c" >/dev/null
	if stop_component "$c"; then
		stopped=$((stopped + 1))
	fi
done
if [ "$stopped" -eq 0 ]; then
	echo "down: nothing running (${components[*]})"
fi
exit 0
