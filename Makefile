# escrowflow — Monero 2-of-3 multisig escrow setups as Temporal workflows.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI := $(BIN)/temporal
TEST_TIMEOUT ?= 30m

.PHONY: help prereqs prereqs-test prereqs-prod build test demo down prod-up prod-down

help: ## List the targets
	@echo "escrowflow make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-9s %s\n", $$1, $$2}'

prereqs: ## Install/check monero-wallet-rpc and the pinned Temporal CLI (bin/temporal)
	@scripts/prereqs.sh

prereqs-test: ## prereqs, plus chromium for the Web UI test and the Temporal server, SQL tool and UI server
	@scripts/prereqs.sh --browser

prereqs-prod: ## prereqs, plus the Temporal server, SQL tool and Web UI server (bin/) for prod-up
	@scripts/prereqs.sh --prod

build: ## Build bin/escrow-worker, bin/escrowctl and bin/escrow-devserver
	$(GO) build -o $(BIN)/escrow-worker ./cmd/escrow-worker
	$(GO) build -o $(BIN)/escrowctl ./cmd/escrowctl
	$(GO) build -o $(BIN)/escrow-devserver ./cmd/escrow-devserver

# test runs one package at a time (-p 1): the end-to-end, pool and chaos
# packages each run Temporal dev servers and wallet-rpc pools that need the
# machine's cores to themselves; side by side on 2 cores they get flaky.
test: prereqs-test ## gofmt check, go vet and all tests with -race (what CI runs)
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	$(GO) vet ./...
	ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -p 1 -timeout $(TEST_TIMEOUT) ./...

demo: prereqs build ## Start Temporal, a regtest monerod + faucet and the worker on 127.0.0.1; 3 setups, then 3 trades (release, refund, dispute)
	@scripts/demo.sh

down: ## Stop the demo stack started by `make demo`
	@scripts/down.sh

prod-up: prereqs-prod build ## PostgreSQL, Temporal server (mutual TLS), Web UI, 2 workers on 127.0.0.1 (.escrowflow-prod/)
	@scripts/prod-up.sh

prod-down: ## Stop the stack started by `make prod-up` (its state stays in .escrowflow-prod/)
	@scripts/prod-down.sh

.PHONY: histories
histories: prereqs ## Re-record workflows/testdata/*.json (replay tests) from a live run
	ESCROWFLOW_RECORD_HISTORIES=1 ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 20m -run '^(TestRecordHistories|TestRecordCustodyHistory)$$' -v ./e2e/

.PHONY: trade-histories
trade-histories: prereqs ## Re-record workflows/testdata/trade/*.json (trade replay tests, hosted and external custody) from a live regtest run
	ESCROWFLOW_RECORD_HISTORIES=1 ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 40m -run '^TestTrades$$' -v ./e2e/trade/
	ESCROWFLOW_RECORD_HISTORIES=1 ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 40m -run '^TestExternalTrades$$' -v ./participant/

.PHONY: seed-check
seed-check: prereqs build ## Run the old design's Tests 1-4 on the demo stack and check its criteria
	@scripts/seed-check.sh

FUZZTIME ?= 30s
# package:target pairs `make fuzz` runs, each for $(FUZZTIME); their seed
# corpora (f.Add and testdata/fuzz/) also run in every plain `go test`.
FUZZ_TARGETS := ./activities/:FuzzValidateEscrowID ./activities/:FuzzCheckPeers \
	./activities/:FuzzClassify ./rpcclient/:FuzzDecodeResponse

.PHONY: fuzz
fuzz: ## Run each fuzz target for 30 s (FUZZTIME=2m make fuzz for longer)
	@for t in $(FUZZ_TARGETS); do \
		pkg="$${t%%:*}"; fn="$${t##*:}"; \
		echo "$(GO) test -run='^$$' -fuzz='^$$fn\$$' -fuzztime=$(FUZZTIME) $$pkg"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) "$$pkg" || exit 1; \
	done

# `make chaos` runs the full fault-injection run (the short one runs in
# `make test`). ESCROWFLOW_CHAOS_TRIALS=N: N worker-kill trials, N/4
# wallet-rpc-kill trials, one Temporal restart, three Temporal SIGKILLs, a
# restore drill, disk full and read-only; ESCROWFLOW_CHAOS_SEED=<seed printed
# by a run> reproduces a run; ESCROWFLOW_CHAOS_REPORT_JSON=<file> writes the
# raw report.
ESCROWFLOW_CHAOS_TRIALS ?= 20

.PHONY: chaos
chaos: prereqs ## Fault-injection run (kills, Temporal restart and SIGKILL, restore drill, disk full, read-only); prints a table
	ESCROWFLOW_CHAOS_TRIALS=$(ESCROWFLOW_CHAOS_TRIALS) ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) \
		$(GO) test -count=1 -v -timeout 60m -run '^TestChaos$$' ./chaos/

# `make bench-sweep` runs escrowctl bench over pool sizes and concurrencies
# and draws docs/bench/*.svg (tens of minutes; run it on an idle machine).
# `make bench-prod` runs 24 escrows on two workers against the
# PostgreSQL-backed server (make prod-up's stack) and the same against the
# dev server, each on a fresh stack (docs/BENCHMARKS.md; about 10 minutes).
.PHONY: bench-prod
bench-prod: prereqs-prod build ## escrows/min and p50/p95: PostgreSQL-backed server vs dev server, two workers
	bash scripts/bench-prod.sh

.PHONY: bench-sweep
bench-sweep: prereqs ## Benchmark sweeps (pool size, concurrency) and their plots in docs/bench
	bash scripts/bench-sweep.sh
