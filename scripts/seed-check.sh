#!/usr/bin/env bash
# Runs the old design's testing guide (Tests 1-4 and its success criteria)
# on the real stack (`make seed-check`, which installs prerequisites and
# builds bin/ first):
#   1. scripts/demo.sh with DEMO_RUN=0: the Temporal dev server on
#      127.0.0.1:7233 (reused when running) and a freshly started
#      bin/escrow-worker with the default pool of 9 wallet-rpc processes;
#   2. the Go test TestSeedCheck (package seedcheck), which sets up one escrow
#      alone, then three at once, reads the worker log and scans the Go code,
#      and prints each criterion with its measured figure and PASS/FAIL. Its
#      exit code is the script's: non-zero when a criterion fails.
# The stack keeps running afterwards; `make down` stops it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO"

# The old design's Test 3 is judged on the worker's default pool of 9.
export ESCROWFLOW_POOL_SIZE=9
DEMO_RUN=0 "$REPO/scripts/demo.sh"

echo
ESCROWFLOW_SEED_CHECK=1 \
	ESCROWFLOW_SEED_CHECK_WORKER_LOG="$REPO/.escrowflow/worker.log" \
	ESCROWFLOW_CODEC_KEYS_FILE="$REPO/.escrowflow/codec.keys" \
	TEMPORAL_ADDRESS="127.0.0.1:${DEMO_TEMPORAL_PORT:-7233}" \
	exec go test -count=1 -v -timeout 20m -run '^TestSeedCheck$' ./seedcheck/
