#!/usr/bin/env bash
# Installs (when missing) and checks the external prerequisites of escrowflow:
#   - monero-wallet-rpc and monerod (Debian package "monero")
#   - with --browser: chromium (Debian packages "chromium", "fonts-dejavu-core"),
#     headless, for the Web UI test (make test passes it; make demo does not)
#   - the Temporal CLI, pinned, in the repo-local ignored folder bin/
#   - with --prod (or --browser, which make test passes): the Temporal server,
#     its SQL tool and the Web UI server (bin/temporal-server,
#     bin/temporal-sql-tool, bin/temporal-ui-server), built from the Go
#     modules of the versions the CLI embeds, for scripts/prod-up.sh
# Idempotent and quick when everything is present; prints one line per check.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPORAL_CLI_VERSION="1.5.1"
TEMPORAL_CLI_MODULE="github.com/temporalio/cli"
TEMPORAL_BIN="$REPO/bin/temporal"

log() { printf 'prereqs: %s\n' "$*"; }

# as_root runs a command as root: directly when we are root, via sudo when
# that exists, and fails otherwise.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		log "need root to run: $* (not root and no sudo)" >&2
		return 1
	fi
}

# --- go -----------------------------------------------------------------------
if ! command -v go >/dev/null 2>&1; then
	log "go: MISSING (install Go matching go.mod first)" >&2
	exit 1
fi
log "go: ok ($(go env GOVERSION))"

# --- monero-wallet-rpc and monerod (the demo's and the tests' regtest chain) --
if command -v monero-wallet-rpc >/dev/null 2>&1 && command -v monerod >/dev/null 2>&1; then
	log "monero-wallet-rpc: ok ($(command -v monero-wallet-rpc))"
	log "monerod: ok ($(command -v monerod))"
else
	log "monero-wallet-rpc or monerod: missing, installing Debian package monero"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y monero
	for b in monero-wallet-rpc monerod; do
		if ! command -v "$b" >/dev/null 2>&1; then
			log "$b: still not on PATH after installing monero" >&2
			exit 1
		fi
		log "$b: installed ($(command -v "$b"))"
	done
fi

# --- chromium (headless browser for the Web UI test) -------------------------
# e2e/webui_test.go drives Debian's chromium headless; fonts-dejavu-core gives
# it fonts to render (and screenshot) the UI's text.
if [ "${1:-}" != --browser ]; then
	: # not needed for the demo
elif command -v chromium >/dev/null 2>&1; then
	log "chromium: ok ($(command -v chromium))"
else
	log "chromium: missing, installing Debian packages chromium and fonts-dejavu-core"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-dejavu-core
	if ! command -v chromium >/dev/null 2>&1; then
		log "chromium: still not on PATH after installing chromium" >&2
		exit 1
	fi
	log "chromium: installed ($(command -v chromium))"
fi

# --- Temporal CLI ------------------------------------------------------------
# temporal_version_ok reports whether bin/temporal is the pinned version.
# A CLI built with `go install ...@vX` prints "temporal version 0.0.0-DEV",
# so the module version recorded in the binary's build info counts as well.
temporal_version_ok() {
	[ -x "$TEMPORAL_BIN" ] || return 1
	local out
	out="$("$TEMPORAL_BIN" --version 2>/dev/null || true)"
	if printf '%s\n' "$out" | grep -Eq "^temporal version v?${TEMPORAL_CLI_VERSION//./\\.}([^0-9.]|$)"; then
		return 0
	fi
	go version -m "$TEMPORAL_BIN" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+${TEMPORAL_CLI_MODULE//./\\.}[[:space:]]+v${TEMPORAL_CLI_VERSION//./\\.}([[:space:]]|$)"
}

if temporal_version_ok; then
	log "temporal CLI: ok (v$TEMPORAL_CLI_VERSION in bin/temporal)"
else
	log "temporal CLI: bin/temporal missing or not v$TEMPORAL_CLI_VERSION, building it (takes a few minutes)"
	mkdir -p "$REPO/bin"
	(cd "$REPO" && GOBIN="$REPO/bin" go install "$TEMPORAL_CLI_MODULE/cmd/temporal@v$TEMPORAL_CLI_VERSION")
	if ! temporal_version_ok; then
		log "temporal CLI: bin/temporal is still not v$TEMPORAL_CLI_VERSION after go install" >&2
		exit 1
	fi
	log "temporal CLI: installed v$TEMPORAL_CLI_VERSION in bin/temporal"
fi

# --- Temporal server, SQL tool and Web UI (make prod-up, make test) -------------
# Built with go install from the module proxy, like the CLI, without adding
# them to our go.mod; each binary is kept when its build info names the
# pinned module version.
TEMPORAL_SERVER_VERSION="1.29.1"
TEMPORAL_UI_VERSION="2.42.1"

# module_version_ok BINARY MODULE VERSION
module_version_ok() {
	[ -x "$1" ] || return 1
	go version -m "$1" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+${2//./\\.}[[:space:]]+v${3//./\\.}([[:space:]]|$)"
}

# install_tool NAME PACKAGE MODULE VERSION: go install PACKAGE@vVERSION as
# bin/NAME (go install names binaries after their folder: server, sql).
install_tool() {
	local name="$1" pkg="$2" mod="$3" version="$4" tmp
	if module_version_ok "$REPO/bin/$name" "$mod" "$version"; then
		log "$name: ok (v$version in bin/$name)"
		return 0
	fi
	log "$name: bin/$name missing or not v$version, building it (takes minutes)"
	tmp="$(mktemp -d)"
	(cd "$REPO" && GOBIN="$tmp" go install "$pkg@v$version")
	mkdir -p "$REPO/bin"
	mv "$tmp/$(basename "$pkg")" "$REPO/bin/$name"
	rmdir "$tmp"
	module_version_ok "$REPO/bin/$name" "$mod" "$version" || {
		log "$name: bin/$name is still not v$version after go install" >&2
		return 1
	}
	log "$name: installed v$version in bin/$name"
}

case "${1:-}" in
--prod | --browser)
	# PostgreSQL's server binaries (initdb, pg_ctl) and openssl, for the
	# production stack and its test.
	if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && command -v openssl >/dev/null 2>&1; then
		log "postgresql, openssl: ok"
	else
		log "postgresql or openssl: missing, installing Debian packages postgresql and openssl"
		as_root apt-get update
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql openssl
	fi
	install_tool temporal-server go.temporal.io/server/cmd/server go.temporal.io/server "$TEMPORAL_SERVER_VERSION"
	install_tool temporal-sql-tool go.temporal.io/server/cmd/tools/sql go.temporal.io/server "$TEMPORAL_SERVER_VERSION"
	install_tool temporal-ui-server github.com/temporalio/ui-server/v2/cmd/server github.com/temporalio/ui-server/v2 "$TEMPORAL_UI_VERSION"
	;;
esac
