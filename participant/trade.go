package participant

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// TradeConfig configures Trade.
type TradeConfig struct {
	Config
	// Terms are the trade's terms as this participant agreed to them (from
	// the marketplace, not from the service): every payout it creates or
	// co-signs pays only these addresses, and exactly the terms' amounts
	// for a release, refund or expired trade.
	Terms escrow.PayoutTerms
	// Approve, if set, is asked before the participant creates or signs a
	// payout that matches the terms (a wallet app may ask its user); an
	// error refuses the payout and stops Trade.
	Approve func(ctx context.Context, plan escrow.PayoutPlan) error
	// PollEvery is how often the trade's status is read. Default: 2 s.
	PollEvery time.Duration

	// tamper, set by tests, changes the plan a creator builds its set for
	// (a forged set, which the service must refuse).
	tamper func(*escrow.PayoutPlan)
	// afterPayoutStep, set by tests, runs after a payout step's wallet
	// call and before its message is recorded; an error stops Trade there
	// (a crash).
	afterPayoutStep func(round string) error
}

// Trade follows the EscrowTrade of cfg.EscrowID once its setup is done
// (after Run) and takes part in its payout whenever this participant is
// one of the two signers: it exports its multisig info, imports its
// peer's, and creates the set (creator) or checks and co-signs the set the
// service relays (co-signer). Every plan is checked against cfg.Terms and
// every set against its plan with describe_transfer before anything is
// created or signed; a mismatch refuses it (an error of type
// PayoutMismatch) and nothing is signed. A message is recorded in the
// participant's directory before it is sent, and the wallet stored after,
// so a restarted participant resends it instead of signing again; a wallet
// call that fails or loses its answer mid-payout is taken again the same
// way, until the trade ends. A wallet that cannot take its step with the
// infos exchanged for the attempt (wallet-rpc says stale data, finds
// nothing to spend, or cannot load the checked set) sends a STALE message
// instead, having signed nothing, and the service starts the next attempt
// with fresh infos. Trade returns the final status (PAID_OUT or EXPIRED);
// a FAILED trade is an error wrapping a *temporal.ApplicationError of the
// reason's type.
func Trade(ctx context.Context, cfg TradeConfig) (escrow.TradeStatus, error) {
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 2 * time.Second
	}
	r, key, stop, err := open(ctx, cfg.Config, false)
	if err != nil {
		return escrow.TradeStatus{}, err
	}
	defer stop()
	if _, ok := r.st.Sent[string(escrow.RoundExchange2)]; !ok {
		return escrow.TradeStatus{}, fmt.Errorf("participant: the setup of %s is not done here (run the setup first)", cfg.EscrowID)
	}
	t := &trader{runner: r, cfg: cfg, key: key, address: r.st.Sent[string(escrow.RoundExchange2)].Message}
	for {
		st, err := r.escrows.TradeStatus(ctx, cfg.EscrowID)
		switch {
		case err != nil && ctx.Err() != nil:
			return st, ctx.Err()
		case err != nil:
			r.log.Debug("trade status not available yet", zap.Error(err))
		case st.State == escrow.TradeFailed:
			return st, fmt.Errorf("participant: trade %s failed: %s: %w", cfg.EscrowID, st.Reason,
				temporal.NewNonRetryableApplicationError(st.Reason, st.ReasonType, nil))
		case (st.State == escrow.TradePaidOut || st.State == escrow.TradeExpired) && t.ended(ctx):
			// An EXPIRED trade may still refund what arrived: it is over
			// once its run has closed.
			return st, nil
		case st.State != escrow.TradePaidOut && st.Payout.Attempt > 0 && !r.st.PayoutDone[st.Payout.Attempt] &&
			(string(st.Payout.Creator) == cfg.Role || string(st.Payout.Cosigner) == cfg.Role):
			err := t.attempt(ctx, st.Payout)
			var appErr *temporal.ApplicationError
			switch {
			case err == nil:
			case errors.As(err, &appErr) && appErr.Type() == escrow.TypeNoncesSpent:
				r.log.Warn("payout attempt superseded; following the next", zap.Int("attempt", st.Payout.Attempt))
			case transient(err):
				// Redone from what is recorded: a step whose message was
				// not recorded runs again on the freshly imported infos,
				// as after a restart.
				r.log.Warn("payout step failed; trying again", zap.Int("attempt", st.Payout.Attempt), zap.Error(err))
			default:
				return st, err
			}
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(cfg.PollEvery):
		}
	}
}

// transient reports an error of a payout step that may pass when the
// attempt is taken again: the wallet refused a call (refresh, export,
// import: a daemon that is busy or away) or its answer was lost. The
// trade's own deadline bounds the retries: a trade that fails is seen by
// the loop and ends it. A refusal by this participant or by the service
// (an application error), a failed record and a cancelled ctx are not
// transient.
func transient(err error) bool {
	var appErr *temporal.ApplicationError
	var rpcErr *rpcclient.RPCError
	switch {
	case errors.As(err, &appErr):
		return false
	case errors.As(err, &rpcErr):
		return true
	}
	return rpcclient.IsRetryable(err)
}

// trader is one Trade.
type trader struct {
	*runner
	cfg     TradeConfig
	key     ed25519.PrivateKey
	address string // the multisig address of this participant's wallet
}

// ended reports whether the trade's run has closed.
func (t *trader) ended(ctx context.Context) bool {
	d, err := t.cfg.Temporal.DescribeWorkflowExecution(ctx, escrow.TradeWorkflowID(t.cfg.EscrowID), "")
	return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// attempt takes this participant's steps of payout attempt p.Attempt.
func (t *trader) attempt(ctx context.Context, p escrow.PayoutStatus) error {
	n, creator := p.Attempt, string(p.Creator) == t.cfg.Role
	if _, ok := t.st.Payout[escrow.PayoutRoundName(escrow.PayoutStale, n)]; ok {
		return t.stale(ctx, n, nil) // recorded before a restart: send it again
	}
	exported, err := t.send(ctx, escrow.PayoutExport, n, func() (escrow.PayoutMessage, error) {
		if _, err := t.wallet.Refresh(ctx, 0); err != nil {
			return escrow.PayoutMessage{}, err
		}
		info, err := t.wallet.ExportMultisigInfo(ctx)
		return escrow.PayoutMessage{Message: info}, err
	}, t.wallet.Store)
	if err != nil {
		return err
	}
	plan := exported.Plan
	if err := escrow.CheckPlanTerms(plan, t.cfg.Terms, t.address); err != nil {
		return t.refuse(err)
	}
	if t.cfg.Approve != nil {
		if err := t.cfg.Approve(ctx, plan); err != nil {
			return fmt.Errorf("participant: payout not approved: %w", err)
		}
	}
	if _, err := t.wallet.ImportMultisigInfo(ctx, []string{exported.PeerInfo}); err != nil {
		return fmt.Errorf("participant: import the peer's multisig info: %w", err)
	}
	if creator {
		_, err = t.send(ctx, escrow.PayoutTxSet, n, func() (escrow.PayoutMessage, error) {
			txset, err := t.create(ctx, plan)
			return escrow.PayoutMessage{Message: txset}, err
		}, t.wallet.Store)
	} else {
		_, err = t.send(ctx, escrow.PayoutSigned, n, func() (escrow.PayoutMessage, error) {
			if signed := t.signedBefore(n); signed != "" {
				// One signed payout per escrow, as on the worker's side.
				return escrow.PayoutMessage{}, fmt.Errorf("participant: %w", temporal.NewNonRetryableApplicationError(
					"this participant already signed the escrow's payout in "+signed, escrow.TypeSecondPayout, nil))
			}
			return t.cosign(ctx, plan, exported.TxSet)
		}, t.wallet.Store)
	}
	if needsFreshInfos(err) {
		return t.stale(ctx, n, err)
	}
	if err != nil {
		return err
	}
	t.st.PayoutDone[n] = true
	return t.st.save(t.cfg.Dir)
}

// needsFreshInfos reports a wallet refusal after which this attempt's
// multisig infos cannot make or sign its payout: nothing was created or
// signed, and only a new attempt with fresh infos can go on.
func needsFreshInfos(err error) bool {
	return rpcclient.IsStaleMultisig(err) || rpcclient.IsNothingToSpend(err) || rpcclient.IsUnloadableTxSet(err)
}

// stale sends this participant's STALE message of attempt n (cause says
// why; nil resends the recorded one): the service ends the attempt and
// starts the next with fresh infos. This participant is done with attempt
// n once the message is delivered, or refused because the attempt had
// already ended; stale then returns a NoncesSpent error, on which Trade
// follows the next attempt.
func (t *trader) stale(ctx context.Context, n int, cause error) error {
	reason := staleReason(cause)
	if cause != nil {
		t.log.Warn("this wallet cannot take its payout step with the exchanged infos: asking for another attempt",
			zap.Int("attempt", n), zap.Error(cause))
	}
	_, err := t.send(ctx, escrow.PayoutStale, n, func() (escrow.PayoutMessage, error) {
		return escrow.PayoutMessage{Message: reason}, nil
	}, func(context.Context) error { return nil })
	var appErr *temporal.ApplicationError
	if err != nil && !errors.As(err, &appErr) {
		return err
	}
	t.st.PayoutDone[n] = true
	if err := t.st.save(t.cfg.Dir); err != nil {
		return err
	}
	return fmt.Errorf("participant: %w", temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("payout attempt %d needs fresh multisig infos", n), escrow.TypeNoncesSpent, cause))
}

// staleReason is cause's text as a STALE message: printable ASCII, at
// most escrow.MaxStaleReasonBytes (wallet-rpc errors carry no secrets:
// see rpcclient).
func staleReason(cause error) string {
	if cause == nil {
		return ""
	}
	b := []byte(cause.Error() + ".")
	for i, c := range b {
		if c < ' ' || c > '~' {
			b[i] = '?'
		}
	}
	return string(b[:min(len(b), escrow.MaxStaleReasonBytes)])
}

// signedBefore names the round of a signature this participant recorded
// in another attempt than n ("" if none).
func (t *trader) signedBefore(n int) string {
	for round := range t.st.Payout {
		if step, k, ok := escrow.ParsePayoutRound(round); ok && step == escrow.PayoutSigned && k != n {
			return round
		}
	}
	return ""
}

// create makes the payout of plan with this wallet (transfer, or
// sweep_all for a sweep) and checks the set it made against the plan.
func (t *trader) create(ctx context.Context, plan escrow.PayoutPlan) (string, error) {
	if t.cfg.tamper != nil {
		// A forged creator: it builds another set and skips its own check.
		t.cfg.tamper(&plan)
	}
	var txset string
	if plan.SweepTo != "" {
		res, err := t.wallet.SweepAll(ctx, rpcclient.SweepAllParams{Address: plan.SweepTo})
		if err != nil {
			return "", err
		}
		txset = res.MultisigTxset
	} else {
		dests := make([]rpcclient.Destination, len(plan.Outputs))
		for i, o := range plan.Outputs {
			dests[i] = rpcclient.Destination{Address: o.Address, Amount: o.AmountAtomic}
		}
		res, err := t.wallet.Transfer(ctx, rpcclient.TransferParams{Destinations: dests})
		if err != nil {
			return "", err
		}
		txset = res.MultisigTxset
	}
	if txset == "" {
		return "", errors.New("participant: wallet-rpc returned no multisig txset")
	}
	if t.cfg.tamper != nil {
		return txset, nil
	}
	return txset, t.check(ctx, plan, txset)
}

// cosign checks txset against plan and signs it.
func (t *trader) cosign(ctx context.Context, plan escrow.PayoutPlan, txset string) (escrow.PayoutMessage, error) {
	if err := t.check(ctx, plan, txset); err != nil {
		return escrow.PayoutMessage{}, err
	}
	res, err := t.wallet.SignMultisig(ctx, txset)
	if err != nil {
		return escrow.PayoutMessage{}, err
	}
	if len(res.TxHashList) == 0 {
		return escrow.PayoutMessage{}, t.refuse(&escrow.PayoutMismatchError{Reason: "the set is not complete after this signature"})
	}
	return escrow.PayoutMessage{Message: res.TxDataHex, TxHashes: res.TxHashList}, nil
}

// check runs describe_transfer on txset and compares it with plan: a
// mismatch is refused; a describe_transfer that got no answer or could not
// load the set is returned as it is (the attempt is taken again, or ends
// STALE).
func (t *trader) check(ctx context.Context, plan escrow.PayoutPlan, txset string) error {
	err := CheckSet(ctx, t.wallet, t.cfg.Terms, t.address, plan, txset)
	var mismatch *escrow.PayoutMismatchError
	if errors.As(err, &mismatch) {
		return t.refuse(err)
	}
	return err
}

// CheckSet is the check a participant makes before it signs anything: the
// plan pays only the terms' addresses (escrow.CheckPlanTerms) from this
// wallet's multisig address, and describe_transfer on the open wallet
// says txset is exactly the plan (escrow.CheckDescribed). A mismatch is an
// *escrow.PayoutMismatchError; a describe_transfer that got no answer
// (rpcclient.IsRetryable) or could not load the set
// (rpcclient.IsUnloadableTxSet) is returned as it is.
func CheckSet(ctx context.Context, w *rpcclient.Client, terms escrow.PayoutTerms, address string, plan escrow.PayoutPlan, txset string) error {
	if err := escrow.CheckPlanTerms(plan, terms, address); err != nil {
		return err
	}
	desc, err := w.DescribeTransfer(ctx, txset)
	if rpcclient.IsRetryable(err) || rpcclient.IsUnloadableTxSet(err) {
		// Not read (no answer, or a set whose inputs this wallet has not
		// seen): neither accepted nor refused.
		return err
	}
	if err != nil {
		return &escrow.PayoutMismatchError{Reason: "this wallet cannot read the set: " + err.Error()}
	}
	out := make([]escrow.DescribedTransfer, len(desc))
	for i, d := range desc {
		out[i] = escrow.DescribedTransfer{AmountIn: d.AmountIn, ChangeAddress: d.ChangeAddress,
			ChangeAmount: d.ChangeAmount, Fee: d.Fee, UnlockTime: d.UnlockTime}
		for _, r := range d.Recipients {
			out[i].Recipients = append(out[i].Recipients, escrow.PayoutOutput{Address: r.Address, AmountAtomic: r.Amount})
		}
	}
	_, _, err = escrow.CheckDescribed(plan, out)
	return err
}

// refuse logs a refused payout and returns err as a PayoutMismatch
// application error.
func (t *trader) refuse(err error) error {
	t.log.Error("payout refused: nothing signed", zap.Error(err))
	return fmt.Errorf("participant: %w", temporal.NewNonRetryableApplicationError(err.Error(), escrow.TypePayoutMismatch, err))
}

// send sends this participant's message of step in attempt n: the one
// recorded by an earlier run, or a new one from build, recorded (signed)
// before the wallet is stored with persist and before it is sent.
func (t *trader) send(ctx context.Context, step escrow.PayoutStep, n int, build func() (escrow.PayoutMessage, error),
	persist func(context.Context) error) (escrow.PayoutRoundResult, error) {
	round := escrow.PayoutRoundName(step, n)
	if res, ok := t.st.PayoutAnswers[round]; ok {
		return res, nil
	}
	m, sent := t.st.Payout[round]
	if !sent {
		var err error
		if m, err = build(); err != nil {
			return escrow.PayoutRoundResult{}, fmt.Errorf("participant: %s: %w", round, err)
		}
		if t.cfg.afterPayoutStep != nil {
			if err := t.cfg.afterPayoutStep(round); err != nil {
				return escrow.PayoutRoundResult{}, err
			}
		}
		m.Role, m.Round = t.cfg.Role, round
		escrow.SignPayoutMessage(t.key, t.cfg.EscrowID, &m)
		t.st.Payout[round] = m
		if err := t.st.save(t.cfg.Dir); err != nil {
			return escrow.PayoutRoundResult{}, err
		}
		if err := persist(ctx); err != nil {
			return escrow.PayoutRoundResult{}, err
		}
	}
	t.log.Info("payout message sent", zap.String("round", round), zap.Bool("resent", sent))
	res, err := t.deliver(ctx, m)
	if err != nil {
		return res, err
	}
	t.st.PayoutAnswers[round] = res
	return res, t.st.save(t.cfg.Dir)
}

// deliver sends m with the payoutRound update and waits for its answer,
// retrying after transient errors (the update id is the same for the same
// message, so a resend is answered like the first send).
func (t *trader) deliver(ctx context.Context, m escrow.PayoutMessage) (escrow.PayoutRoundResult, error) {
	sum := sha256.Sum256([]byte(m.Message))
	id := fmt.Sprintf("%s-%s-%s", m.Role, strings.ToLower(m.Round), hex.EncodeToString(sum[:8]))
	var res escrow.PayoutRoundResult
	var notFound *serviceerror.NotFound
	for {
		h, err := t.cfg.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			UpdateID:     id,
			WorkflowID:   escrow.TradeWorkflowID(t.cfg.EscrowID),
			UpdateName:   escrow.PayoutRoundUpdate,
			Args:         []any{m},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			if err = h.Get(ctx, &res); err == nil {
				return res, nil
			}
		}
		var appErr *temporal.ApplicationError
		switch {
		case errors.As(err, &appErr):
			return res, fmt.Errorf("participant: %s message of %s: %w", m.Round, t.cfg.EscrowID, err)
		case ctx.Err() != nil:
			return res, ctx.Err()
		case errors.As(err, &notFound):
			return res, fmt.Errorf("participant: %s message of %s: the trade is not running: %w", m.Round, t.cfg.EscrowID, err)
		}
		t.log.Warn("payout message not delivered, retrying", zap.String("round", m.Round), zap.Error(err))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(t.runner.cfg.RetryEvery):
		}
	}
}
