package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// awaitDeposit checks the multisig address at once, then every
// ScanInterval (every FollowInterval once enough has arrived and waits for
// its confirmations), and at once after each announced deposit. Between
// checks the trade holds nothing but a timer. It returns true when the
// deposit is funded: at least AmountAtomic received, with Confirmations,
// unlocked. It returns false at DepositTimeout unless at least AmountAtomic
// has arrived by then (that deposit is followed until it is funded).
func (t *trade) awaitDeposit() (bool, error) {
	deadline := workflow.Now(t.ctx).Add(t.timing.DepositTimeout)
	scan := true
	for {
		if err := t.checkDeposit(scan); err != nil {
			return false, err
		}
		d := t.status.Deposit
		if d.ReceivedAtomic >= t.in.AmountAtomic && d.Confirmations >= t.timing.Confirmations &&
			t.unlocked >= t.in.AmountAtomic {
			return true, nil
		}
		wait := t.timing.ScanInterval
		if d.ReceivedAtomic >= t.in.AmountAtomic {
			wait = t.followInterval()
		} else {
			left := deadline.Sub(workflow.Now(t.ctx))
			if left <= 0 {
				return false, nil
			}
			wait = min(wait, left)
		}
		announced, err := workflow.AwaitWithTimeout(t.ctx, wait, func() bool { return t.announceSeq > t.checkedSeq })
		if err != nil {
			return false, err
		}
		scan = !announced
	}
}

// checkDeposit runs CheckDeposit on the arbiter's wallet with the latest
// announcement (scanning the whole address when scan) and records the
// result. A failure a retry may fix is logged and counts as no news: the
// next check comes at the next interval.
func (t *trade) checkDeposit(scan bool) error {
	seq := t.announceSeq
	in := activities.DepositCheckInput{EscrowID: t.in.EscrowID, MultisigAddress: t.status.MultisigAddress,
		Role: string(escrow.Arbiter), Wallet: t.snapshots[escrow.Arbiter], Announced: t.announced, Scan: scan || t.announced == nil}
	ctx := t.hostOptions(t.ctx, TradeStepOptions)
	var out activities.DepositCheckOutput
	err := workflow.ExecuteActivity(ctx, a.CheckDeposit, in).Get(ctx, &out)
	var appErr *temporal.ApplicationError
	switch {
	case temporal.IsCanceledError(err):
		return err
	case in.Announced != nil && hasType(err, escrow.TypeInvalidInput):
		// The worker refused the announcement itself (a tx key that is no
		// key): it proves nothing, and the trade goes on.
		out = activities.DepositCheckOutput{Deposit: t.status.Deposit, UnlockedAtomic: t.unlocked}
	case err != nil && errors.As(err, &appErr) && appErr.NonRetryable():
		return err
	case err != nil:
		workflow.GetLogger(t.ctx).Warn("deposit check failed; checking again later", "error", err)
		t.checkedSeq = max(t.checkedSeq, seq)
		return nil
	}
	t.checkedSeq = max(t.checkedSeq, seq)
	if in.Announced != nil && !out.AnnouncedValid {
		t.badSeq, t.announced = seq, nil
	}
	t.status.Deposit, t.unlocked = out.Deposit, out.UnlockedAtomic
	return nil
}

// expire ends a trade whose deposit did not arrive in time: EXPIRED, and
// whatever arrived is refunded to the buyer through the payout path once
// unlocked (waiting at most ExpiryGrace for a locked part). A deposit that
// does not exceed the payout's fee budget stays in the multisig address.
func (t *trade) expire() error {
	if err := t.setState(escrow.TradeExpired); err != nil {
		return err
	}
	t.status.Reason = "no sufficient deposit arrived within " + t.timing.DepositTimeout.String()
	t.status.ReasonType = escrow.TypeDepositExpired
	grace := workflow.Now(t.ctx).Add(ExpiryGrace)
	for t.unlocked < t.status.Deposit.ReceivedAtomic {
		left := grace.Sub(workflow.Now(t.ctx))
		if left <= 0 {
			break
		}
		if err := workflow.Sleep(t.ctx, min(left, t.followInterval())); err != nil {
			return err
		}
		if err := t.checkDeposit(true); err != nil {
			return err
		}
	}
	if t.unlocked == 0 {
		return nil
	}
	return t.payout(escrow.PayoutExpired)
}

// followInterval is how long the trade waits between checks of something
// that is expected soon.
func (t *trade) followInterval() time.Duration { return min(t.timing.ScanInterval, FollowInterval) }
