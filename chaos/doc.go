// Package chaos holds the fault-injection run of escrowflow (`make chaos`).
//
// It has no code of its own outside its tests: TestChaos starts a Temporal
// dev server, runs the real worker binary (built from ./cmd/escrow-worker)
// as a separate process over real monero-wallet-rpc processes, starts
// escrows and injects faults while they run — SIGKILL of the worker, SIGKILL
// of wallet-rpc processes in the middle of calls, a restart of the Temporal
// server, a wallet dir that fills up and one that turns read-only — and
// after every trial checks that each escrow either completed with wallets
// that open independently and agree on the multisig address, or failed with
// a typed reason; that no committed snapshot changed; that no temp file was
// left behind; and that no wallet-rpc process outlived the pool that owned
// it. It prints a table of trials and outcomes.
//
// See docs/RELIABILITY.md for the fault model and how to run it.
package chaos
