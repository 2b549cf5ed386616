# escrowflow — Monero 2-of-3 multisig escrow setups as Temporal workflows.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO ?= go
BIN := $(CURDIR)/bin
TEMPORAL_CLI := $(BIN)/temporal
TEST_TIMEOUT ?= 75m

.PHONY: help prereqs build test demo down

help: ## List the targets
	@echo "escrowflow make targets:"
	@grep -E '^[a-z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-9s %s\n", $$1, $$2}'

prereqs: ## Install/check monero-wallet-rpc and the pinned Temporal CLI (bin/temporal)
	@scripts/prereqs.sh

build: ## Build bin/escrow-worker and bin/escrowctl
	$(GO) build -o $(BIN)/escrow-worker ./cmd/escrow-worker
	$(GO) build -o $(BIN)/escrowctl ./cmd/escrowctl

test: prereqs ## gofmt check, go vet and all tests with -race (what CI runs)
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	$(GO) vet ./...
	ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

demo: prereqs build ## Start Temporal + worker on 127.0.0.1 and run 3 escrows (stack keeps running)
	@scripts/demo.sh

down: ## Stop the demo stack started by `make demo`
	@scripts/down.sh

.PHONY: histories
histories: prereqs ## Re-record workflows/testdata/*.json (replay tests) from a live run
	ESCROWFLOW_RECORD_HISTORIES=1 ESCROWFLOW_TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 20m -run '^TestRecordHistories$$' -v ./e2e/
