package e2e

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

// stockKeys lists the stock wallets (NAME.keys of names "stock-…") in dir.
func stockKeys(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "stock-") && strings.HasSuffix(e.Name(), ".keys") {
			out = append(out, e.Name())
		}
	}
	return out
}

func rpcCalls(logs *observer.ObservedLogs, escrowID, method string) int {
	n := 0
	for _, e := range logs.FilterMessage("rpc call completed").All() {
		m := e.ContextMap()
		if m["method"] == method && (escrowID == "" || m["escrow_id"] == escrowID) {
			n++
		}
	}
	return n
}

// TestWarmStock runs an escrow on a worker whose stock is full: its three
// roles take over stock wallets on real wallet-rpc processes (a new
// password, no create_wallet), the final wallets open on their own with the
// roles' passwords, the stock working copies are gone when it completes,
// and the stock fills up again.
func TestWarmStock(t *testing.T) {
	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	logs := inProcessWorker(t, tp.HostPort, walletDir, 3, func(c *worker.Config) { c.WalletStock = 3 })
	testenv.WaitFor(t, 2*time.Minute, "wallet stock filled", func() bool {
		return logs.FilterMessage("wallet stock filled").Len() > 0
	})
	first := stockKeys(t, walletDir)
	require.Len(t, first, 3)

	sc := starter.New(tp.Client(t))
	ctx := context.Background()
	_, err := sc.Start(ctx, "warm-1")
	require.NoError(t, err)
	res, err := sc.Wait(ctx, "warm-1")
	require.NoError(t, err)
	verifyWallets(t, walletDir, res)

	require.Equal(t, 3, rpcCalls(logs, "warm-1", "change_wallet_password"), "every role took a stock wallet")
	require.Zero(t, rpcCalls(logs, "warm-1", "create_wallet"))
	var want []string
	for _, role := range escrow.Roles {
		w := res.Wallets[role].Wallet
		want = append(want, w, w+".keys", w+".address.txt", w+".sha256")
	}
	want = append(want, "warm-1.claim")
	sort.Strings(want)
	require.Equal(t, want, walletFiles(t, walletDir, "warm-1"))

	testenv.WaitFor(t, 2*time.Minute, "the stock refilled", func() bool {
		now := stockKeys(t, walletDir)
		for _, k := range now {
			for _, f := range first {
				require.NotEqual(t, f, k, "a stock wallet that was taken is gone")
			}
		}
		return len(now) == 3
	})
}
