package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/regtest"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// lineWriter sends each progress write to the test log.
type lineWriter struct{ t *testing.T }

func (w lineWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunOnRegtest runs the demo on the real stack: the Temporal dev
// server, a worker on a regtest monerod, and a wallet-rpc on that chain for
// the faucet and the parties' own wallets. Every trade is PAID_OUT, each
// recipient's own wallet shows exactly what the payout says, and the
// money went where each decision sends it.
func TestRunOnRegtest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, monerod and monero-wallet-rpc")
	}
	keys, err := codec.NewKey("demo")
	require.NoError(t, err)
	cd, err := codec.ParseKeys(keys)
	require.NoError(t, err)
	tp := testenv.StartTemporal(t)
	chain := regtest.Start(t)
	wallets := chain.NewWallet(t, "demo")

	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = tp.HostPort
	cfg.WalletDir = t.TempDir()
	cfg.PoolSize = 6
	cfg.WalletStock = 0
	cfg.WalletRPCBinary = testenv.RequireBinary(t, "monero-wallet-rpc")
	cfg.MasterSecret = []byte("demo test master secret, 32 bytes or more")
	cfg.MetricsAddress = "off"
	cfg.Network = "regtest"
	cfg.DaemonAddress = chain.Address
	cfg.TrustedDaemon = true
	cfg.Codec = worker.CodecConfig{Keys: keys}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, zap.NewNop()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(90 * time.Second):
			t.Error("worker did not stop within 90 s")
		}
	})

	tc, err := client.Dial(client.Options{HostPort: tp.HostPort, DataConverter: cd.DataConverter()})
	require.NoError(t, err)
	defer tc.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer rcancel()
	rep, err := Run(rctx, Config{Trades: starter.New(tc), DaemonAddress: chain.Address, WalletRPC: wallets.URL(),
		IDs: TradeIDs("t", time.Now(), "0000"), Progress: lineWriter{t}})
	require.NoError(t, err)
	require.Len(t, rep.Trades, 3)

	got := map[string]map[escrow.Role]uint64{}
	for _, tr := range rep.Trades {
		assert.Equal(t, escrow.TradePaidOut, tr.State, tr.EscrowID)
		assert.Len(t, tr.PayoutTxHash, 64, tr.EscrowID)
		assert.Len(t, tr.DepositTxID, 64, tr.EscrowID)
		got[tr.Decision] = map[escrow.Role]uint64{}
		for _, r := range tr.Recipients {
			assert.Equal(t, r.ExpectedAtomic, r.ReceivedAtomic, "%s: %s's own wallet", tr.EscrowID, r.Role)
			got[tr.Decision][r.Role] = r.ReceivedAtomic
		}
	}
	rel, ref, dis := got[decisions[0]], got[decisions[1]], got[decisions[2]]
	assert.Positive(t, rel[escrow.Vendor], "release pays the vendor")
	assert.Zero(t, rel[escrow.Buyer], "release: no excess for the buyer")
	assert.Positive(t, ref[escrow.Buyer], "refund pays the buyer")
	assert.Zero(t, ref[escrow.Vendor])
	for _, r := range []map[escrow.Role]uint64{rel, ref, dis} {
		assert.Less(t, r[escrow.Vendor]+r[escrow.Buyer], uint64(DefaultAmount), "everything less the fee")
		assert.Greater(t, r[escrow.Vendor]+r[escrow.Buyer], uint64(DefaultAmount)*99/100, "the fee is small")
	}
	net := dis[escrow.Vendor] + dis[escrow.Buyer]
	assert.InDelta(t, ResolveVendorShareBps, float64(dis[escrow.Vendor])*10000/float64(net), 1, "the vendor's share of the dispute")
}
