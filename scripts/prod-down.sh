#!/usr/bin/env bash
# Stops the production stack started by scripts/prod-up.sh (`make prod-down`).
#
# Usage: scripts/prod-down.sh [worker-1|worker-2|temporal-ui|temporal-server|postgres]...
#        (default: all of them, in that order)
#
# Each process is stopped by the pid recorded in $ESCROWFLOW_PROD_DIR/run
# (default .escrowflow-prod/run), never by name: SIGTERM to its session's
# process group, up to 60 s grace for workers (their shutdown waits for
# running activities) and 20 s for the rest, then SIGKILL. PostgreSQL is
# stopped with pg_ctl (fast mode). State (databases, wallets, certificates,
# secrets) is kept: prod-up.sh starts again where it stopped; remove the
# folder to start from scratch.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE="${ESCROWFLOW_PROD_DIR:-$REPO/.escrowflow-prod}"

log() { printf 'prod-down: %s\n' "$*"; }

# pid_alive
# shellcheck source=lib.sh
. "$REPO/scripts/lib.sh"

# stop_pid NAME GRACE: stops the process group recorded in run/NAME.pid.
stop_pid() {
	local name="$1" grace="$2" f="$STATE/run/$1.pid" pid deadline
	[ -f "$f" ] || return 0
	pid="$(cat "$f")"
	if pid_alive "$pid"; then
		log "$name: stopping (pid $pid)"
		# prod-up.sh starts each process with setsid: its pid is its group.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + grace))
		while pid_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
		if pid_alive "$pid"; then
			log "$name: still running after ${grace}s, SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$f"
}

stop_postgres() {
	local pgdata="$STATE/postgres/data" pgbin
	[ -f "$pgdata/postmaster.pid" ] || return 0
	pgbin="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)"
	local as_pg=()
	[ "$(id -u)" -ne 0 ] || as_pg=(runuser -u postgres --)
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1 || return 0
	log "postgres: stopping"
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
}

[ "$#" -gt 0 ] || set -- worker-1 worker-2 temporal-ui temporal-server postgres
for c in "$@"; do
	case "$c" in
	worker-1 | worker-2) stop_pid "$c" 60 ;;
	temporal-ui | temporal-server) stop_pid "$c" 20 ;;
	postgres) stop_postgres ;;
	*)
		printf 'prod-down: unknown component %q\n' "$c" >&2
		exit 2
		;;
	esac
done
