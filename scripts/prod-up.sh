#!/usr/bin/env bash
# Starts escrowflow's production stack on 127.0.0.1, without containers
# (`make prod-up`); scripts/prod-down.sh stops it. Idempotent: what runs is
# kept, what is missing or dead is started again.
#
#   - PostgreSQL (Debian's, installed when missing): a cluster of its own in
#     $STATE/postgres, on 127.0.0.1:$PROD_PG_PORT, run as the postgres user
#     when we are root (PostgreSQL refuses to run as root);
#   - the databases temporal and temporal_visibility, created and brought to
#     the latest schema by temporal-sql-tool (schemas embedded in the module);
#   - a CA and certificates ($STATE/tls), made with openssl;
#   - the Temporal server 1.29.1 (frontend, history, matching, worker) with
#     deploy/temporal/production.yaml: the frontend requires mutual TLS;
#   - the namespace and the EscrowState search attribute;
#   - the Web UI 2.42.1 when bin/temporal-ui-server exists;
#   - two workers, each with its own certificate, wallet dir and worker id.
#
# Database settings come from deploy/temporal.env, the file docker-compose.yml
# gives its temporal service. State, logs, pid files and secrets live in
# $ESCROWFLOW_PROD_DIR (default .escrowflow-prod/, git-ignored). Ports (env,
# default): FRONTEND_GRPC_PORT 7233, PROD_UI_PORT 8233, PROD_CODEC_PORT 8234,
# PROD_METRICS_PORT 9464 (worker 2: PROD_METRICS_PORT_2, 9465), PROD_PG_PORT 5433, and the server's
# internal ports FRONTEND_HTTP_PORT, FRONTEND_MEMBERSHIP_PORT,
# {HISTORY,MATCHING,WORKER}_{GRPC,MEMBERSHIP}_PORT (the server's defaults).
# PROD_POOL_SIZE (9) and PROD_WALLET_STOCK (3) size each worker.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE="${ESCROWFLOW_PROD_DIR:-$REPO/.escrowflow-prod}"
BIN="${ESCROWFLOW_PROD_BIN:-$REPO/bin}"
TEMPORAL_CLI="${ESCROWFLOW_TEMPORAL_CLI:-$BIN/temporal}"
WORKER_BIN="${ESCROWFLOW_WORKER_BIN:-$BIN/escrow-worker}"

: "${FRONTEND_GRPC_PORT:=7233}" "${FRONTEND_HTTP_PORT:=7243}" "${FRONTEND_MEMBERSHIP_PORT:=6933}"
: "${HISTORY_GRPC_PORT:=7234}" "${HISTORY_MEMBERSHIP_PORT:=6934}"
: "${MATCHING_GRPC_PORT:=7235}" "${MATCHING_MEMBERSHIP_PORT:=6935}"
: "${WORKER_GRPC_PORT:=7239}" "${WORKER_MEMBERSHIP_PORT:=6939}"
: "${PROD_PG_PORT:=5433}" "${PROD_UI_PORT:=8233}" "${PROD_CODEC_PORT:=8234}" "${PROD_METRICS_PORT:=9464}"
: "${PROD_METRICS_PORT_2:=$((PROD_METRICS_PORT + 1))}"
: "${PROD_POOL_SIZE:=9}" "${PROD_WALLET_STOCK:=3}"
export FRONTEND_GRPC_PORT FRONTEND_HTTP_PORT FRONTEND_MEMBERSHIP_PORT HISTORY_GRPC_PORT \
	HISTORY_MEMBERSHIP_PORT MATCHING_GRPC_PORT MATCHING_MEMBERSHIP_PORT WORKER_GRPC_PORT WORKER_MEMBERSHIP_PORT

log() { printf 'prod-up: %s\n' "$*"; }
die() {
	printf 'prod-up: %s\n' "$*" >&2
	exit 1
}

# The database settings shared with docker-compose.yml.
set -a
# shellcheck source=../deploy/temporal.env
. "$REPO/deploy/temporal.env"
set +a
export POSTGRES_SEEDS=127.0.0.1 DB_PORT="$PROD_PG_PORT"
export ESCROWFLOW_DYNAMIC_CONFIG="$REPO/deploy/temporal/dynamicconfig.yaml"

mkdir -p "$STATE"/{run,logs,secrets,tls}
chmod 700 "$STATE/secrets" "$STATE/tls"
TLS="$STATE/tls"
ADDRESS="127.0.0.1:$FRONTEND_GRPC_PORT"

for b in "$BIN/temporal-server" "$BIN/temporal-sql-tool" "$TEMPORAL_CLI" "$WORKER_BIN"; do
	[ -x "$b" ] || die "$b is missing: run make prereqs-prod build (or make prod-up)"
done

# pid_alive, http_ok
# shellcheck source=lib.sh
. "$REPO/scripts/lib.sh"

# running NAME: the process recorded in run/NAME.pid is alive.
running() {
	local f="$STATE/run/$1.pid"
	[ -f "$f" ] && pid_alive "$(cat "$f")"
}

# need_free WHAT PORT...: fails when something already listens on a port
# (make demo uses 7233, 8233, 8234 and 9464 too: make down first).
need_free() {
	local what="$1" port
	shift
	for port in "$@"; do
		! port_open 127.0.0.1 "$port" || die "$what: 127.0.0.1:$port is in use (make demo's stack? make down first, or set the port variables)"
	done
}

# start NAME CMD...: starts CMD in a session of its own, logs to logs/NAME.log.
start() {
	local name="$1"
	shift
	setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$STATE/run/$name.pid"
}

# PROD_WORKERS_ONLY=host:port starts only the two workers, in plaintext,
# against that Temporal (for the bench's dev-server comparison,
# scripts/bench-prod.sh); the rest is skipped.
if [ -n "${PROD_WORKERS_ONLY:-}" ]; then
	ADDRESS="$PROD_WORKERS_ONLY"
else
# --- PostgreSQL ------------------------------------------------------------
PGBIN="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
	log "PostgreSQL: missing, installing Debian package postgresql"
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
	else
		sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
	fi
	PGBIN="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n1)"
fi
PGDATA="$STATE/postgres/data"
PGRUN="$STATE/postgres/run"
# as_pg runs a PostgreSQL program as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
if [ ! -f "$PGDATA/PG_VERSION" ]; then
	log "PostgreSQL: new cluster in $PGDATA"
	mkdir -p "$PGDATA" "$PGRUN"
	chmod 700 "$PGDATA" "$PGRUN"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$STATE/postgres"
		runuser -u postgres -- test -x "$STATE/postgres" ||
			die "the postgres user cannot reach $STATE: make its parent folders searchable (chmod o+x)"
	fi
	# Superuser "postgres" on the socket only, in a folder only postgres can
	# enter; TCP on 127.0.0.1 needs a password.
	as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
		-E UTF8 --locale=C.UTF-8 >>"$STATE/logs/postgres-initdb.log"
fi
if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
	need_free PostgreSQL "$PROD_PG_PORT"
	log "PostgreSQL: starting on 127.0.0.1:$PROD_PG_PORT"
	as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/../postgres.log" -w -t 120 \
		-o "-c listen_addresses=127.0.0.1 -p $PROD_PG_PORT -k $PGRUN" start >/dev/null
fi
psql_su() { as_pg "$PGBIN/psql" -h "$PGRUN" -p "$PROD_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_su -c "SELECT 1 FROM pg_roles WHERE rolname = '$POSTGRES_USER'")" != 1 ]; then
	psql_su -c "CREATE ROLE \"$POSTGRES_USER\" LOGIN CREATEDB PASSWORD '$POSTGRES_PWD'"
fi

# --- databases and schemas (temporal-sql-tool, embedded schemas) -------------
sqltool() {
	"$BIN/temporal-sql-tool" --plugin "$DB" --ep 127.0.0.1 -p "$PROD_PG_PORT" \
		-u "$POSTGRES_USER" --pw "$POSTGRES_PWD" "$@" >>"$STATE/logs/sql-tool.log" 2>&1
}
for pair in "$DBNAME:temporal" "$VISIBILITY_DBNAME:visibility"; do
	db="${pair%%:*}" schema="postgresql/v12/${pair##*:}"
	if [ "$(psql_su -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
		log "database $db: creating, schema $schema"
		sqltool --db "$db" create-database || die "create-database $db failed (logs/sql-tool.log)"
		sqltool --db "$db" setup-schema -v 0.0 || die "setup-schema $db failed (logs/sql-tool.log)"
	fi
	sqltool --db "$db" update-schema --schema-name "$schema" || die "update-schema $db failed (logs/sql-tool.log)"
done

# --- CA and certificates -------------------------------------------------------
# cert NAME CN [SAN]: a P-256 key and a certificate signed by the CA.
cert() {
	local name="$1" cn="$2" san="${3:-}"
	[ -f "$TLS/$name.pem" ] && return 0
	(
		umask 077
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
			-keyout "$TLS/$name.key" -out "$TLS/$name.csr" 2>/dev/null
		{
			echo "basicConstraints=CA:FALSE"
			echo "keyUsage=digitalSignature,keyEncipherment"
			if [ -n "$san" ]; then
				echo "extendedKeyUsage=serverAuth,clientAuth"
				echo "subjectAltName=$san"
			else
				echo "extendedKeyUsage=clientAuth"
			fi
		} >"$TLS/$name.ext"
		openssl x509 -req -in "$TLS/$name.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
			-days 365 -sha256 -extfile "$TLS/$name.ext" -out "$TLS/$name.pem" 2>/dev/null
		rm -f "$TLS/$name.csr" "$TLS/$name.ext"
	)
}
if [ ! -f "$TLS/ca.pem" ]; then
	log "TLS: new CA and certificates in $TLS"
	(
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -sha256 \
			-subj "/CN=escrowflow prod-up CA" -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	)
fi
cert frontend localhost "DNS:localhost,IP:127.0.0.1"
cert system-worker temporal-system-worker
cert worker-1 escrow-worker-1
cert worker-2 escrow-worker-2
cert client escrowctl
cert ui temporal-ui

# --- Temporal server -----------------------------------------------------------
tls_client_args=(--address "$ADDRESS" --tls-cert-path "$TLS/client.pem" --tls-key-path "$TLS/client.key" --tls-ca-path "$TLS/ca.pem")
if ! running temporal-server; then
	need_free "Temporal server" "$FRONTEND_GRPC_PORT" "$FRONTEND_HTTP_PORT" "$FRONTEND_MEMBERSHIP_PORT" \
		"$HISTORY_GRPC_PORT" "$HISTORY_MEMBERSHIP_PORT" "$MATCHING_GRPC_PORT" "$MATCHING_MEMBERSHIP_PORT" \
		"$WORKER_GRPC_PORT" "$WORKER_MEMBERSHIP_PORT"
	log "Temporal server: starting, frontend $ADDRESS (mutual TLS)"
	TEMPORAL_TLS_FRONTEND_CERT="$TLS/frontend.pem" TEMPORAL_TLS_FRONTEND_KEY="$TLS/frontend.key" \
		TEMPORAL_TLS_CLIENT_CA_CERT="$TLS/ca.pem" TEMPORAL_TLS_FRONTEND_SERVER_NAME=localhost \
		TEMPORAL_TLS_SYSTEM_WORKER_CERT="$TLS/system-worker.pem" TEMPORAL_TLS_SYSTEM_WORKER_KEY="$TLS/system-worker.key" \
		start temporal-server "$BIN/temporal-server" --root "$REPO/deploy" --config temporal --env production \
		--allow-no-auth start
fi
deadline=$((SECONDS + 180))
until "$TEMPORAL_CLI" operator cluster health "${tls_client_args[@]}" >/dev/null 2>&1; do
	running temporal-server || die "Temporal server exited (logs/temporal-server.log)"
	[ "$SECONDS" -lt "$deadline" ] || die "Temporal server not healthy after 180 s (logs/temporal-server.log)"
	sleep 1
done
# A server that has just (re)connected to its database can fail a describe it
# would answer a second later; so a failed create is retried until describe
# finds the namespace (it may have been there all along), not taken as final.
until "$TEMPORAL_CLI" operator namespace describe "${tls_client_args[@]}" --namespace "$DEFAULT_NAMESPACE" >/dev/null 2>&1; do
	[ -n "${ns_logged:-}" ] || log "namespace $DEFAULT_NAMESPACE: creating (retention $DEFAULT_NAMESPACE_RETENTION)"
	ns_logged=1
	ns_err="$("$TEMPORAL_CLI" operator namespace create "${tls_client_args[@]}" --namespace "$DEFAULT_NAMESPACE" \
		--retention "$DEFAULT_NAMESPACE_RETENTION" 2>&1 >/dev/null)" && break
	[ "$SECONDS" -lt "$deadline" ] || die "could not create or find the namespace $DEFAULT_NAMESPACE: $ns_err"
	sleep 1
done
until "$TEMPORAL_CLI" operator search-attribute list "${tls_client_args[@]}" --namespace "$DEFAULT_NAMESPACE" 2>/dev/null | grep -qw EscrowState; do
	"$TEMPORAL_CLI" operator search-attribute create "${tls_client_args[@]}" --namespace "$DEFAULT_NAMESPACE" \
		--name EscrowState --type Keyword >/dev/null 2>&1 || true
	[ "$SECONDS" -lt "$deadline" ] || die "could not register the search attribute EscrowState"
	sleep 1
done

fi # PROD_WORKERS_ONLY

# --- secrets ------------------------------------------------------------------
if [ ! -f "$STATE/secrets/master.key" ]; then
	(umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$STATE/secrets/master.key")
fi
if [ ! -f "$STATE/secrets/codec.keys" ]; then
	(umask 077 && printf 'k1:%s\n' "$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" >"$STATE/secrets/codec.keys")
fi

# --- Web UI -------------------------------------------------------------------
if [ -n "${PROD_WORKERS_ONLY:-}" ]; then
	:
elif [ ! -x "$BIN/temporal-ui-server" ]; then
	log "Web UI: bin/temporal-ui-server not built (make prereqs-prod builds it); skipped"
elif ! running temporal-ui; then
	need_free "Web UI" "$PROD_UI_PORT"
	log "Web UI: starting on http://127.0.0.1:$PROD_UI_PORT"
	TEMPORAL_ADDRESS="$ADDRESS" TEMPORAL_UI_PORT="$PROD_UI_PORT" TEMPORAL_TLS_CA="$TLS/ca.pem" \
		TEMPORAL_TLS_CERT="$TLS/ui.pem" TEMPORAL_TLS_KEY="$TLS/ui.key" TEMPORAL_TLS_SERVER_NAME=localhost \
		TEMPORAL_CODEC_ENDPOINT="http://127.0.0.1:$PROD_CODEC_PORT" TEMPORAL_DEFAULT_NAMESPACE="$DEFAULT_NAMESPACE" \
		start temporal-ui "$BIN/temporal-ui-server" --root "$REPO/deploy" --config temporal --env ui start
fi

# --- workers ------------------------------------------------------------------
for i in 1 2; do
	name="worker-$i"
	running "$name" && continue
	mkdir -p "$STATE/wallets-$i"
	codec_address="" metrics_port="$PROD_METRICS_PORT_2"
	if [ "$i" = 1 ]; then
		codec_address="127.0.0.1:$PROD_CODEC_PORT" metrics_port="$PROD_METRICS_PORT"
		need_free "$name" "$PROD_CODEC_PORT"
	fi
	need_free "$name" "$metrics_port"
	tls_env=(TEMPORAL_TLS_CERT="$TLS/$name.pem" TEMPORAL_TLS_KEY="$TLS/$name.key" TEMPORAL_TLS_CA="$TLS/ca.pem")
	[ -z "${PROD_WORKERS_ONLY:-}" ] || tls_env=()
	log "$name: starting (worker id prod-$i, wallets $STATE/wallets-$i)"
	start "$name" env TEMPORAL_ADDRESS="$ADDRESS" TEMPORAL_NAMESPACE="$DEFAULT_NAMESPACE" "${tls_env[@]}" \
		ESCROWFLOW_WALLET_DIR="$STATE/wallets-$i" ESCROWFLOW_WORKER_ID="prod-$i" \
		ESCROWFLOW_POOL_SIZE="$PROD_POOL_SIZE" ESCROWFLOW_WALLET_STOCK="$PROD_WALLET_STOCK" ESCROWFLOW_ADMIT_WAIT=0 \
		ESCROWFLOW_LOG_FORMAT=json ESCROWFLOW_MASTER_SECRET_FILE="$STATE/secrets/master.key" \
		ESCROWFLOW_CODEC_KEYS_FILE="$STATE/secrets/codec.keys" ESCROWFLOW_CODEC_ADDRESS="$codec_address" \
		ESCROWFLOW_CODEC_ORIGIN="http://127.0.0.1:$PROD_UI_PORT" \
		ESCROWFLOW_METRICS_ADDRESS="127.0.0.1:$metrics_port" \
		"$WORKER_BIN"
done
for i in 1 2; do
	deadline=$((SECONDS + 120)) metrics_port="$PROD_METRICS_PORT"
	[ "$i" = 1 ] || metrics_port="$PROD_METRICS_PORT_2"
	until http_ok 127.0.0.1 "$metrics_port" /readyz; do
		running "worker-$i" || die "worker-$i exited (logs/worker-$i.log)"
		[ "$SECONDS" -lt "$deadline" ] || die "worker-$i not started after 120 s (logs/worker-$i.log)"
		sleep 0.5
	done
done

# What a client needs, for `. $STATE/client.env`.
cat >"$STATE/client.env" <<EOF
export TEMPORAL_ADDRESS=$ADDRESS
export TEMPORAL_NAMESPACE=$DEFAULT_NAMESPACE
export TEMPORAL_TLS_CERT=$TLS/client.pem
export TEMPORAL_TLS_KEY=$TLS/client.key
export TEMPORAL_TLS_CA=$TLS/ca.pem
export ESCROWFLOW_CODEC_KEYS_FILE=$STATE/secrets/codec.keys
EOF
if [ -n "${PROD_WORKERS_ONLY:-}" ]; then
	log "ready: workers prod-1 and prod-2 on Temporal $ADDRESS (plaintext)"
	exit 0
fi
log "ready: Temporal $ADDRESS (mutual TLS), PostgreSQL 127.0.0.1:$PROD_PG_PORT, workers prod-1 and prod-2"
log "try: . ${STATE#"$REPO"/}/client.env && bin/escrowctl start --wait order-1"
