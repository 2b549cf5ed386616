package activities

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// measureEnv enables TestMeasureDepositCheck (docs/BENCHMARKS.md), as it
// does the end-to-end measurements.
const measureEnv = "ESCROWFLOW_MEASURE_TRADE"

// selfCPU is this process's user + system CPU.
func selfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMeasureDepositCheck is a measurement, not a test: on one funded
// escrow it measures the CPU of a deposit check done as before this
// package read the chain itself (a fresh copy of the arbiter's snapshot,
// open_wallet, refresh, get_transfers, close_wallet, on a wallet-rpc
// process) and as CheckDeposit does it now (scan and announced), each
// after one new block holding one transaction. It counts the checking
// process (wallet-rpc, or this process for CheckDeposit) and monerod.
func TestMeasureDepositCheck(t *testing.T) {
	if os.Getenv(measureEnv) != "1" {
		t.Skipf("measurement, not a test: %s=1 runs it", measureEnv)
	}
	w := newTradeWorld(t)
	faucet := w.chain.Faucet(t)
	other := w.chain.NewWallet(t, "other")
	defer other.Close()
	const id, n = "meas1", 5
	snaps, msig := w.setup(t, id)
	txid, key := faucet.Pay(t, msig, 1_000_000_000_000)
	w.chain.Mine(t, 10)
	monerod := w.chain.PID()
	require.NotZero(t, monerod)
	ctx := context.Background()
	newBlock := func() { faucet.Pay(t, other.Address, 1_000_000_000); w.chain.Mine(t, 1) }

	lease, err := w.pool.Acquire(ctx, "measure-old-check")
	require.NoError(t, err)
	var oldCheck, oldDaemon time.Duration
	for i := range n {
		newBlock()
		working := fmt.Sprintf("%s.arbiter.work.old-%d", id, i)
		c0, d0, start := testenv.ProcCPU(t, lease.PID), testenv.ProcCPU(t, monerod), time.Now()
		_, err := w.store.Restore(snaps[2], working)
		require.NoError(t, err)
		password, err := w.acts.passwords.For(id, "arbiter")
		require.NoError(t, err)
		require.NoError(t, lease.Client.OpenWallet(ctx, working, password))
		_, err = lease.Client.Refresh(ctx, 0)
		require.NoError(t, err)
		tr, err := lease.Client.GetTransfers(ctx, rpcclient.GetTransfersParams{In: true, Pool: true})
		require.NoError(t, err)
		require.NoError(t, lease.Client.CloseWallet(ctx))
		require.NoError(t, w.store.Remove(working))
		oldCheck += testenv.ProcCPU(t, lease.PID) - c0
		oldDaemon += testenv.ProcCPU(t, monerod) - d0
		require.Len(t, tr.In, 1)
		t.Logf("old check %d: %s wall", i, time.Since(start).Round(time.Millisecond))
	}
	lease.Release("")

	scan := DepositCheckInput{EscrowID: id, MultisigAddress: msig, Role: "arbiter", Wallet: snaps[2], Scan: true}
	mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, scan) // the first: reads the view key once
	announced := scan
	announced.Scan, announced.Announced = false, &escrow.DepositAnnouncement{TxID: txid, TxKey: key}
	measure := func(in DepositCheckInput) (self, daemon time.Duration) {
		for i := range n {
			newBlock()
			c0, d0, start := selfCPU(t), testenv.ProcCPU(t, monerod), time.Now()
			out := mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, in)
			self += selfCPU(t) - c0
			daemon += testenv.ProcCPU(t, monerod) - d0
			require.Equal(t, uint64(1_000_000_000_000), out.Deposit.ReceivedAtomic)
			t.Logf("check %d: %s wall", i, time.Since(start).Round(time.Millisecond))
		}
		return self, daemon
	}
	scanSelf, scanDaemon := measure(scan)
	annSelf, annDaemon := measure(announced)
	per := func(d time.Duration) string { return (d / n).Round(time.Millisecond).String() }
	t.Logf("MEASURE per check, CPU: before (wallet-rpc + monerod) %s + %s; scan now (worker + monerod) %s + %s; announced now %s + %s",
		per(oldCheck), per(oldDaemon), per(scanSelf), per(scanDaemon), per(annSelf), per(annDaemon))
}
