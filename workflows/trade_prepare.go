package workflows

import (
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/escrow"
)

// prepareExchangeChange marks trades that exchange buyer's and vendor's
// multisig info at FUNDED (histories recorded before it replay without).
const prepareExchangeChange = "prepare-exchange-at-funded"

// preparedExchange is the multisig info exchange buyer and vendor run as
// soon as the trade is FUNDED, while it waits for the decision: release and
// refund, which those two sign, then start from CreatePayout instead of
// reopening both wallets to export and import (the larger part of the
// time from a decision to the payout, docs/BENCHMARKS.md).
//
// The exchange is what the payout would run itself, only earlier: each
// wallet commits its fresh nonces before its info leaves, and the payout
// uses the snapshots the exchange committed. It is used once, by the
// payout's first attempt, and only when the deposit the payout plans with
// is the one both wallets saw: the same transactions, the same unlocked
// amount as the imports reported. Otherwise, after any failure of the
// exchange, and for a dispute (whose signers include the arbiter), the
// payout exchanges afresh; a wallet that still finds its infos stale fails
// CreatePayout NoncesSpent and the payout exchanges again as before.
type preparedExchange struct {
	done     bool     // the exchange has ended, with or without success
	ok       bool     // both imports committed and saw the unlocked deposit
	unlocked uint64   // the unlocked deposit when it started
	txids    []string // the deposit's transactions when it started
}

// prepareExchange starts buyer and vendor's exchange in the background
// when both are hosted (an external participant exports its own info
// inside the payout's rounds).
func (t *trade) prepareExchange() {
	if t.external(escrow.Buyer) || t.external(escrow.Vendor) {
		return
	}
	if workflow.GetVersion(t.ctx, prepareExchangeChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	p := &preparedExchange{unlocked: t.unlocked, txids: slices.Clone(t.status.Deposit.TxIDs)}
	t.prep = p
	workflow.Go(t.ctx, func(ctx workflow.Context) {
		defer func() { p.done = true }()
		outs, err := t.exchangeMultisigInfo(ctx, escrow.Buyer, escrow.Vendor)
		switch {
		case err != nil && !temporal.IsCanceledError(err):
			workflow.GetLogger(ctx).Warn("multisig info exchange at FUNDED failed; the payout exchanges afresh", "error", err)
		case err == nil:
			p.ok = outs[0].UnlockedAtomic == p.unlocked && outs[1].UnlockedAtomic == p.unlocked
		}
	})
}

// awaitPrepared waits until a prepared exchange has ended: the payout's
// steps must not run on the signers' wallets while it does.
func (t *trade) awaitPrepared() error {
	if t.prep == nil {
		return nil
	}
	return workflow.Await(t.ctx, func() bool { return t.prep.done })
}

// usePrepared reports whether the payout of creator and cosigner can sign
// with the prepared exchange's infos (the payout has awaited it; only its
// first attempt asks).
func (t *trade) usePrepared(creator, cosigner escrow.Role) bool {
	p := t.prep
	pair := (creator == escrow.Buyer && cosigner == escrow.Vendor) || (creator == escrow.Vendor && cosigner == escrow.Buyer)
	return p != nil && p.ok && pair && t.unlocked == p.unlocked && slices.Equal(t.status.Deposit.TxIDs, p.txids)
}
