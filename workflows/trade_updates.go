package workflows

import (
	"regexp"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/escrow"
)

// register sets the status query, the five updates and payoutRound. Validators only
// read the trade: a rejected update leaves no event in history.
func (t *trade) register() error {
	if err := workflow.SetQueryHandler(t.ctx, escrow.TradeStatusQuery, func() (escrow.TradeStatus, error) {
		return t.status, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(t.ctx, escrow.UpdateDeposit, t.deposit,
		workflow.UpdateHandlerOptions{Validator: t.validateDeposit}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(t.ctx, escrow.PayoutRoundUpdate, t.payoutRound,
		workflow.UpdateHandlerOptions{Validator: t.validatePayoutRound}); err != nil {
		return err
	}
	for _, name := range []string{escrow.UpdateRelease, escrow.UpdateRefund, escrow.UpdateDispute, escrow.UpdateResolve} {
		err := workflow.SetUpdateHandlerWithOptions(t.ctx, name,
			func(ctx workflow.Context, d escrow.Decision) (escrow.TradeStatus, error) {
				return t.decide(ctx, name, d)
			},
			workflow.UpdateHandlerOptions{Validator: func(d escrow.Decision) error { return t.validateDecision(name, d) }})
		if err != nil {
			return err
		}
	}
	return nil
}

// tradeRejected is the error of a trade update's validator.
func tradeRejected(format string, args ...any) error {
	return rejected(escrow.TypeUpdateRejected, format, args...)
}

// hex64 matches a transaction id or a tx key: 64 hex digits (the handler
// lower-cases them).
var hex64 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (t *trade) validateDeposit(ann escrow.DepositAnnouncement) error {
	switch {
	case t.status.State != escrow.TradeSettingUp && t.status.State != escrow.TradeAwaitingDeposit:
		return tradeRejected("the trade is %s: it no longer waits for a deposit", t.status.State)
	case t.announceSeq >= escrow.MaxAnnouncements:
		return tradeRejected("the trade has had %d deposit announcements, the most it takes", escrow.MaxAnnouncements)
	case !hex64.MatchString(ann.TxID):
		return tradeRejected("txid must be 64 hex digits")
	case !hex64.MatchString(ann.TxKey):
		return tradeRejected("txKey must be 64 hex digits")
	}
	return nil
}

// deposit records the announcement, wakes the deposit wait and returns the
// status once a check has seen it. An announcement the check finds does
// not prove a payment to the multisig address fails the update.
func (t *trade) deposit(ctx workflow.Context, ann escrow.DepositAnnouncement) (escrow.TradeStatus, error) {
	t.announceSeq++
	seq := t.announceSeq
	t.announced = &escrow.DepositAnnouncement{TxID: strings.ToLower(ann.TxID), TxKey: strings.ToLower(ann.TxKey)}
	err := workflow.Await(ctx, func() bool {
		return t.checkedSeq >= seq || t.done ||
			(t.status.State != escrow.TradeSettingUp && t.status.State != escrow.TradeAwaitingDeposit)
	})
	if err != nil {
		return t.status, err
	}
	if t.badSeq == seq {
		return t.status, temporal.NewNonRetryableApplicationError(
			"the tx key does not prove a payment to the multisig address", escrow.TypeInvalidInput, nil)
	}
	return t.status, nil
}

// deciders names the role each decision must come from ("" = buyer or
// vendor).
var deciders = map[string]string{escrow.UpdateRelease: string(escrow.Buyer), escrow.UpdateRefund: string(escrow.Vendor),
	escrow.UpdateResolve: string(escrow.Arbiter)}

func (t *trade) validateDecision(name string, d escrow.Decision) error {
	if want := deciders[name]; want != "" && d.By != want {
		return tradeRejected("%s must be by %q, not %q", name, want, d.By)
	}
	if name == escrow.UpdateDispute && d.By != string(escrow.Buyer) && d.By != string(escrow.Vendor) {
		return tradeRejected("dispute must be by \"buyer\" or \"vendor\", not %q", d.By)
	}
	switch {
	case t.kind != "":
		return tradeRejected("the trade already has a decision (%s)", t.kind)
	case name == escrow.UpdateResolve && !t.disputed:
		return tradeRejected("resolve needs a dispute first (the trade is %s)", t.status.State)
	case name == escrow.UpdateResolve && t.status.State != escrow.TradeDisputed:
		return tradeRejected("the dispute is not recorded yet (the trade is %s)", t.status.State)
	case name == escrow.UpdateResolve && d.VendorShareBps == nil:
		return tradeRejected("resolve needs vendorShareBps (0..%d)", escrow.MaxShareBps)
	case name == escrow.UpdateResolve && (*d.VendorShareBps < 0 || *d.VendorShareBps > escrow.MaxShareBps):
		return tradeRejected("vendorShareBps %d is not in 0..%d", *d.VendorShareBps, escrow.MaxShareBps)
	case name == escrow.UpdateResolve:
		return nil
	case t.disputed:
		return tradeRejected("the trade is disputed: only the arbiter's resolve decides it")
	case t.status.State != escrow.TradeFunded:
		return tradeRejected("the trade is %s: decisions need a FUNDED trade", t.status.State)
	case name == escrow.UpdateDispute && len(d.Reason) > escrow.MaxDisputeReason:
		return tradeRejected("the reason is longer than %d bytes", escrow.MaxDisputeReason)
	}
	return nil
}

// decide records an accepted decision and returns the status once the
// trade has entered the state it leads to.
func (t *trade) decide(ctx workflow.Context, name string, d escrow.Decision) (escrow.TradeStatus, error) {
	// Two updates accepted in one workflow task both passed their validator.
	if err := t.validateDecision(name, d); err != nil {
		return t.status, err
	}
	from := t.status.State
	switch name {
	case escrow.UpdateRelease:
		t.kind = escrow.PayoutRelease
	case escrow.UpdateRefund:
		t.kind = escrow.PayoutRefund
	case escrow.UpdateDispute:
		t.disputed, t.status.Dispute = true, d.Reason
	case escrow.UpdateResolve:
		t.kind, t.shareBps = escrow.PayoutResolve, *d.VendorShareBps
	}
	err := workflow.Await(ctx, func() bool { return t.status.State != from || t.done })
	return t.status, err
}
