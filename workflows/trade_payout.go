package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// payout pays the deposit out as kind decides: a fresh look at the
// balance, the daemon's fee estimate, the plan, a multisig info exchange
// between the two signers (or the one prepared at FUNDED, see
// prepareExchange), the creator's transaction, the co-signer's
// check and signature, the submission, and the payout's confirmations.
// NoncesSpent from the creation or the signature (nothing signed by the
// co-signer) redoes the exchange and the creation, at most
// MaxNonceRetries times.
func (t *trade) payout(kind escrow.PayoutKind) error {
	creator, cosigner := escrow.PayoutSigners(kind, t.shareBps)
	t.status.Payout = escrow.PayoutStatus{Kind: kind}
	if err := t.awaitPrepared(); err != nil {
		return err
	}
	if err := t.checkDeposit(true); err != nil {
		return err
	}
	plan, err := t.plan(kind)
	if kind == escrow.PayoutExpired && errors.Is(err, escrow.ErrNothingToPay) {
		t.status.Reason += "; the deposit does not cover a refund's fee and stays in the multisig address"
		return nil
	}
	if err != nil {
		return err
	}
	t.status.Payout.Outputs = plan.Outputs

	var signed activities.SignPayoutOutput
	for attempt := 0; ; attempt++ {
		var err error
		signed, err = t.sign(creator, cosigner, plan, attempt)
		if hasType(err, escrow.TypeNoncesSpent) && attempt < MaxNonceRetries {
			workflow.GetLogger(t.ctx).Warn("the payout needs fresh multisig info; exchanging again", "attempt", attempt+1)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	t.status.Payout.FeeAtomic, t.status.Payout.Outputs = signed.FeeAtomic, signed.Outputs
	if len(signed.TxHashes) > 0 {
		t.status.Payout.TxHash = signed.TxHashes[0]
	}

	ctx := t.hostOptions(t.ctx, TradeStepOptions)
	submitter := t.submitter(cosigner)
	submit := activities.SubmitPayoutInput{EscrowID: t.in.EscrowID, Role: string(submitter), Snapshot: t.snapshots[submitter],
		SignedTxSet: signed.SignedTxSet, TxHashes: signed.TxHashes}
	var sub activities.SubmitPayoutOutput
	if err := workflow.ExecuteActivity(ctx, a.SubmitPayout, submit).Get(ctx, &sub); err != nil {
		return err
	}
	t.status.Payout.TxHash = sub.TxHash
	if t.px != nil {
		t.px.txHash = sub.TxHash // answers the co-signer's SIGNED message
	}
	return t.awaitPayoutConfirmations(submit)
}

// createAndSign exchanges fresh multisig info between the signers (unless
// the exchange prepared at FUNDED fits), has the creator create the payout
// and the co-signer check and sign it.
func (t *trade) createAndSign(creator, cosigner escrow.Role, plan escrow.PayoutPlan, attempt int) (activities.SignPayoutOutput, error) {
	if attempt > 0 || !t.usePrepared(creator, cosigner) {
		if _, err := t.exchangeMultisigInfo(t.ctx, creator, cosigner); err != nil {
			return activities.SignPayoutOutput{}, err
		}
	}
	ctx := t.hostOptions(t.ctx, TradeStepOptions)
	in := activities.CreatePayoutInput{EscrowID: t.in.EscrowID, Role: string(creator), Snapshot: t.snapshots[creator], Plan: plan}
	var created activities.CreatePayoutOutput
	if err := workflow.ExecuteActivity(ctx, a.CreatePayout, in).Get(ctx, &created); err != nil {
		return activities.SignPayoutOutput{}, err
	}
	t.snapshots[creator] = created.Snapshot
	sign := activities.SignPayoutInput{EscrowID: t.in.EscrowID, Role: string(cosigner), Snapshot: t.snapshots[cosigner],
		TxSet: created.TxSet, Plan: plan}
	var signed activities.SignPayoutOutput
	if err := workflow.ExecuteActivity(ctx, a.SignPayout, sign).Get(ctx, &signed); err != nil {
		return activities.SignPayoutOutput{}, err
	}
	t.snapshots[cosigner] = signed.Snapshot
	return signed, nil
}

// plan asks the daemon for the fee of the payout's shape and plans it.
func (t *trade) plan(kind escrow.PayoutKind) (escrow.PayoutPlan, error) {
	terms := escrow.PayoutTerms{AmountAtomic: t.in.AmountAtomic, VendorAddress: t.in.VendorAddress,
		BuyerRefundAddress: t.in.BuyerRefundAddress}
	shape, err := escrow.PlanPayout(kind, terms, t.unlocked, t.shareBps, t.status.MultisigAddress, 0)
	if err != nil {
		return shape, planError(err)
	}
	fee := activities.FeeInput{Outputs: max(1, len(shape.Outputs)), Inputs: max(1, len(t.status.Deposit.TxIDs))}
	ctx := workflow.WithActivityOptions(t.ctx, TradeDaemonOptions)
	var est activities.FeeOutput
	if err := workflow.ExecuteActivity(ctx, a.EstimatePayoutFee, fee).Get(ctx, &est); err != nil {
		return escrow.PayoutPlan{}, err
	}
	plan, err := escrow.PlanPayout(kind, terms, t.unlocked, t.shareBps, t.status.MultisigAddress, est.BudgetAtomic)
	return plan, planError(err)
}

// planError makes a PlanPayout error a PayoutImpossible failure, keeping
// ErrNothingToPay reachable.
func planError(err error) error {
	if err == nil {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), escrow.TypePayoutImpossible, err)
}

// exchangeMultisigInfo has both signers export fresh multisig info in
// parallel, then import the other's, committing each wallet; it returns
// the imports' outputs.
func (t *trade) exchangeMultisigInfo(ctx workflow.Context, creator, cosigner escrow.Role) ([2]activities.PayoutStepOutput, error) {
	signers := [2]escrow.Role{creator, cosigner}
	exported, err := t.hostedStep(ctx, signers, a.ExportMultisig, func(int) []string { return nil })
	if err != nil {
		return exported, err
	}
	return t.hostedStep(ctx, signers, a.ImportMultisig, func(i int) []string { return []string{exported[1-i].Info} })
}

// awaitPayoutConfirmations follows the submitted payout until it has
// Confirmations blocks, checking at most MaxPayoutChecks times. A payout neither the pool nor the chain knows is
// submitted again (SubmitPayout is idempotent for the same signed set).
func (t *trade) awaitPayoutConfirmations(submit activities.SubmitPayoutInput) error {
	dctx := workflow.WithActivityOptions(t.ctx, TradeDaemonOptions)
	for range MaxPayoutChecks {
		var out activities.TxCheckOutput
		if err := workflow.ExecuteActivity(dctx, a.CheckPayoutTx, activities.TxCheckInput{TxHash: t.status.Payout.TxHash}).Get(dctx, &out); err != nil {
			return err
		}
		t.status.Payout.Confirmations = out.Confirmations
		if out.Confirmations >= t.timing.Confirmations {
			return nil
		}
		if !out.Found {
			hctx := t.hostOptions(t.ctx, TradeStepOptions)
			if err := workflow.ExecuteActivity(hctx, a.SubmitPayout, submit).Get(hctx, nil); err != nil {
				return err
			}
		}
		if err := workflow.Sleep(t.ctx, t.followInterval()); err != nil {
			return err
		}
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("payout %s has %d of %d confirmations after %d checks",
		t.status.Payout.TxHash, t.status.Payout.Confirmations, t.timing.Confirmations, MaxPayoutChecks),
		escrow.TypePayoutUnconfirmed, nil)
}
