package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// TestBlocksNeeded: a paid deposit waits for its unlock (SpendableAge) and
// Confirmations, a signed payout for Confirmations; nothing else mines.
func TestBlocksNeeded(t *testing.T) {
	awaiting := escrow.TradeStatus{State: escrow.TradeAwaitingDeposit}
	assert.Zero(t, blocksNeeded(awaiting, false), "no deposit paid yet")
	assert.Equal(t, uint64(max(Confirmations, SpendableAge)), blocksNeeded(awaiting, true))
	awaiting.Deposit.Confirmations = 4
	assert.Equal(t, uint64(max(Confirmations, SpendableAge)-4), blocksNeeded(awaiting, true))
	awaiting.Deposit.Confirmations = 50
	assert.Zero(t, blocksNeeded(awaiting, true), "more than enough")

	funded := escrow.TradeStatus{State: escrow.TradeFunded}
	assert.Zero(t, blocksNeeded(funded, true), "FUNDED waits for a decision, not for blocks")

	releasing := escrow.TradeStatus{State: escrow.TradeReleasing}
	assert.Zero(t, blocksNeeded(releasing, true), "no payout signed yet")
	releasing.Payout.TxHash, releasing.Payout.Confirmations = "ab", 3
	assert.Equal(t, uint64(Confirmations-3), blocksNeeded(releasing, true))

	paid := releasing
	paid.State = escrow.TradePaidOut
	assert.Zero(t, blocksNeeded(paid, true), "a final trade needs nothing")
}

// TestSums: the recipients' amounts count only the payout's transaction
// and only their own address.
func TestSums(t *testing.T) {
	in := []rpcclient.Transfer{{TxID: "p", Amount: 5}, {TxID: "q", Amount: 7}, {TxID: "p", Amount: 1}}
	assert.Equal(t, uint64(6), sumOf(in, "p"))
	assert.Zero(t, sumOf(in, "r"))
	out := []escrow.PayoutOutput{{Address: "v", AmountAtomic: 70}, {Address: "b", AmountAtomic: 30}}
	assert.Equal(t, uint64(70), paidTo(out, "v"))
	assert.Equal(t, uint64(30), paidTo(out, "b"))
	assert.Zero(t, paidTo(out, "x"))
}

// TestReport: a trade is OK only when paid out with every recipient's
// wallet showing what the payout says, and the text says which is not.
func TestReport(t *testing.T) {
	good := TradeReport{EscrowID: "a", Decision: "release", State: escrow.TradePaidOut, PayoutTxHash: "h",
		Recipients: []Recipient{{Role: escrow.Vendor, Address: "4vendoraddress", ExpectedAtomic: 1_500_000_000_000, ReceivedAtomic: 1_500_000_000_000}}}
	require.True(t, good.OK())
	short := good
	short.Recipients = []Recipient{{Role: escrow.Buyer, Address: "4buyeraddress", ExpectedAtomic: 2, ReceivedAtomic: 1}}
	assert.False(t, short.OK())
	failed := TradeReport{EscrowID: "c", State: escrow.TradeFailed, Error: "boom"}
	assert.False(t, failed.OK())
	expired := good
	expired.State = escrow.TradeExpired
	assert.False(t, expired.OK())

	var buf bytes.Buffer
	require.NoError(t, WriteText(&buf, &Report{Trades: []TradeReport{good, short, failed}, MeasuredMs: 61_234}))
	out := buf.String()
	assert.Regexp(t, `payout tx +h\n`, out)
	assert.Contains(t, out, "received 1.500000000000 XMR")
	assert.Contains(t, out, "✗ the payout says 0.000000000002 XMR")
	assert.Contains(t, out, "error: boom")
	assert.Contains(t, out, "1m1.2s")
	assert.Equal(t, 1, strings.Count(out, "✓"))
}

// TestTradeIDs: the ids are valid escrow ids, distinct, named after their
// decision.
func TestTradeIDs(t *testing.T) {
	ids := TradeIDs("trade", time.Date(2026, 11, 30, 23, 59, 58, 0, time.UTC), "ab12")
	assert.Equal(t, "trade-20261130-235958-ab12-release", ids[0])
	assert.Equal(t, "trade-20261130-235958-ab12-dispute", ids[2])
	for _, id := range ids {
		require.NoError(t, escrow.ValidateEscrowID(id))
	}
}
