package trade

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/regtest"
)

const xmr = 1_000_000_000_000

// TestTrades runs the money flow end to end on one Temporal server and one
// chain: several trades at once on an in-process worker, then a worker
// SIGKILLed between sign_multisig and submit_multisig.
func TestTrades(t *testing.T) {
	e := newEnv(t)
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, e) })
	t.Run("WorkerKilledAfterSigning", func(t *testing.T) { testKilledAfterSigning(t, e) })
}

// party is one trade's vendor and buyer, each a wallet of its own.
type party struct{ vendor, buyer *regtest.Wallet }

func newParty(t *testing.T, e *env, id string) party {
	p := party{vendor: e.chain.NewWallet(t, id+"-vendor"), buyer: e.chain.NewWallet(t, id+"-buyer")}
	t.Cleanup(p.vendor.Close)
	t.Cleanup(p.buyer.Close)
	return p
}

// testDecisions: release of an overpaid trade announced with its tx key;
// refund of a deposit found by scan; a dispute resolved 70/30; an
// underpaid trade that expires and is refunded; and the validators'
// rejections on the way.
func testDecisions(t *testing.T, e *env) {
	cfg := e.workerConfig(t, t.TempDir(), 6)
	e.runWorker(t, cfg)
	e.chain.MineEvery(t, 2*time.Second)
	ctx := context.Background()

	const price = 2 * xmr
	ids := []string{"rel", "ref", "dis", "exp"}
	parties := map[string]party{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newParty(t, e, id)
			mu.Lock()
			parties[id] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		in := tradeInput(id, price, parties[id].vendor, parties[id].buyer)
		if id == "exp" {
			in.DepositTimeout = "4m"
		}
		_, err := e.sc.StartTrade(ctx, in)
		require.NoError(t, err, id)
	}
	msig := map[string]string{}
	for _, id := range ids {
		st := e.waitTrade(t, id, 8*time.Minute, escrow.TradeAwaitingDeposit)
		require.NotEmpty(t, st.MultisigAddress)
		msig[id] = st.MultisigAddress
	}

	// Decisions before FUNDED and a resolve without a dispute are rejected.
	_, err := e.sc.Release(ctx, "rel")
	requireRejected(t, err, "release before FUNDED")
	_, err = e.sc.Resolve(ctx, "dis", 5000)
	requireRejected(t, err, "resolve without a dispute")

	const excess = xmr / 4
	txid, key := e.faucet.Pay(t, msig["rel"], price+excess)
	st, err := e.sc.AnnounceDeposit(ctx, "rel", escrow.DepositAnnouncement{TxID: txid, TxKey: key})
	require.NoError(t, err)
	assert.Equal(t, []string{txid}, st.Deposit.TxIDs, "the announcement is checked with the tx key")
	e.faucet.Pay(t, msig["ref"], price)
	e.faucet.Pay(t, msig["dis"], price+excess)
	const short = price / 2
	e.faucet.Pay(t, msig["exp"], short)

	for _, id := range []string{"rel", "ref", "dis"} {
		e.waitTrade(t, id, 5*time.Minute, escrow.TradeFunded)
	}
	_, err = e.sc.Release(ctx, "rel")
	require.NoError(t, err)
	_, err = e.sc.Refund(ctx, "rel")
	requireRejected(t, err, "a second decision")
	_, err = e.sc.Refund(ctx, "ref")
	require.NoError(t, err)
	_, err = e.sc.Dispute(ctx, "dis", "buyer", "the goods never came")
	require.NoError(t, err)
	_, err = e.sc.Resolve(ctx, "dis", 10001)
	requireRejected(t, err, "a share above 10000 bps")
	_, err = e.sc.Resolve(ctx, "dis", 7000)
	require.NoError(t, err)

	two, one := e.feeBudget(t, 2, 1), e.feeBudget(t, 1, 1)

	rel := e.finish(t, "rel", escrow.TradePaidOut)
	assert.Equal(t, price-two, received(t, parties["rel"].vendor, 1), "release: the price less the fee budget to the vendor")
	assert.Equal(t, uint64(excess), received(t, parties["rel"].buyer, 1), "release: the excess to the buyer")
	assert.LessOrEqual(t, rel.Payout.FeeAtomic, two)
	assert.NotEmpty(t, rel.Payout.TxHash)

	ref := e.finish(t, "ref", escrow.TradePaidOut)
	assert.LessOrEqual(t, ref.Payout.FeeAtomic, one)
	assert.Equal(t, price-ref.Payout.FeeAtomic, received(t, parties["ref"].buyer, 1), "refund: everything less the fee")

	dis := e.finish(t, "dis", escrow.TradePaidOut)
	net := price + excess - two
	vendorShare := net/10000*7000 + net%10000*7000/10000
	assert.Equal(t, vendorShare, received(t, parties["dis"].vendor, 1), "resolve: 70% to the vendor")
	assert.Equal(t, net-vendorShare, received(t, parties["dis"].buyer, 1), "resolve: 30% to the buyer")
	assert.Equal(t, "the goods never came", dis.Dispute)

	exp := e.finish(t, "exp", escrow.TradeExpired)
	assert.Equal(t, escrow.TypeDepositExpired, exp.ReasonType)
	assert.Equal(t, short-exp.Payout.FeeAtomic, received(t, parties["exp"].buyer, 1), "expired: what arrived back to the buyer")
	got, _ := parties["exp"].vendor.Received(t, 0)
	assert.Zero(t, got)
}

// testKilledAfterSigning kills the worker process with SIGKILL right after
// the co-signer's signature was committed, before submit_multisig, and
// restarts it: the payout is submitted once, with no second signature.
func testKilledAfterSigning(t *testing.T, e *env) {
	dir := t.TempDir()
	cfg := e.workerConfig(t, filepath.Join(dir, "wallets"), 3)
	require.NoError(t, os.MkdirAll(cfg.WalletDir, 0o700))
	logPath := filepath.Join(dir, "worker.log")
	w := e.startWorkerProcess(t, cfg, logPath, `"msg":"payout signed"`)
	e.chain.MineEvery(t, 2*time.Second)
	ctx := context.Background()
	p := newParty(t, e, "kill")
	const price = xmr
	_, err := e.sc.StartTrade(ctx, tradeInput("kill", price, p.vendor, p.buyer))
	require.NoError(t, err)
	st := e.waitTrade(t, "kill", 5*time.Minute, escrow.TradeAwaitingDeposit)
	e.faucet.Pay(t, st.MultisigAddress, price)
	e.waitTrade(t, "kill", 5*time.Minute, escrow.TradeFunded)
	_, err = e.sc.Release(ctx, "kill")
	require.NoError(t, err)

	w.waitKilled(t, 8*time.Minute)
	killed, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(killed), `"method":"submit_multisig"`, "the fault landed before submit_multisig")
	require.NotContains(t, string(killed), `"msg":"payout submitted"`)

	e.startWorkerProcess(t, cfg, logPath, "")
	res := e.finish(t, "kill", escrow.TradePaidOut)
	all, err := os.ReadFile(logPath)
	require.NoError(t, err)
	after := string(all[len(killed):])
	assert.NotContains(t, after, `"method":"sign_multisig"`, "no second signature after the restart")
	assert.Equal(t, price-res.Payout.FeeAtomic, received(t, p.vendor, 1), "one payout: the whole deposit less the fee to the vendor")
}
