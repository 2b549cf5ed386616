package starter

// The trade API: a backend starts an EscrowTrade, sends its five updates,
// asks for its status and waits for its end. This file depends only on the
// contract package escrow (and the Temporal SDK).

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

// The trade's update errors are the contract's (package escrow).
type (
	// UpdateRejectedError is escrow.UpdateRejectedError: the trade's
	// validator refused an update; nothing was recorded.
	UpdateRejectedError = escrow.UpdateRejectedError
	// TradeUpdateError is escrow.TradeUpdateError: the trade accepted an
	// update whose handler then failed.
	TradeUpdateError = escrow.TradeUpdateError
)

// ErrUpdateRejected is escrow.ErrUpdateRejected.
var ErrUpdateRejected = escrow.ErrUpdateRejected

// StartTrade starts the trade of in.EscrowID: workflow EscrowTrade, id
// trade-<escrowId>, which sets the escrow up (child escrow-<escrowId>) and
// then waits for the deposit. A bad escrow id returns an
// *escrow.InvalidEscrowIDError, input missing a field or with a malformed
// duration an *escrow.TradeInputError, both without calling Temporal; an
// escrow id whose trade was already started returns an error matching
// ErrDuplicateEscrow. The worker checks the addresses' network: a bad one
// fails the trade with InvalidInput (see WaitTrade), nothing created.
func (c *Client) StartTrade(ctx context.Context, in escrow.TradeInput) (Run, error) {
	if _, err := in.Check(); err != nil {
		return Run{}, err
	}
	opts := client.StartWorkflowOptions{
		ID:                                       escrow.TradeWorkflowID(in.EscrowID),
		TaskQueue:                                c.taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			escrow.EscrowStateKey.ValueSet(string(escrow.TradeSettingUp))),
	}
	run, err := c.c.ExecuteWorkflow(ctx, opts, escrow.TradeWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return Run{}, fmt.Errorf("trade %q already exists (workflow %s): %w", in.EscrowID,
			escrow.TradeWorkflowID(in.EscrowID), ErrDuplicateEscrow)
	}
	if err != nil {
		return Run{}, fmt.Errorf("start trade %q: %w", in.EscrowID, err)
	}
	return Run{EscrowID: in.EscrowID, WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// AnnounceDeposit tells the trade the buyer's payment (its txid and the tx
// key from the buyer's wallet, get_tx_key) and returns the status once the
// trade has checked it. A tx key that does not prove a payment to the
// multisig address returns a *TradeUpdateError of type InvalidInput.
func (c *Client) AnnounceDeposit(ctx context.Context, escrowID string, ann escrow.DepositAnnouncement) (escrow.TradeStatus, error) {
	return c.update(ctx, escrowID, escrow.UpdateDeposit, ann)
}

// Release is the buyer's decision to pay the vendor (trade FUNDED).
func (c *Client) Release(ctx context.Context, escrowID string) (escrow.TradeStatus, error) {
	return c.update(ctx, escrowID, escrow.UpdateRelease, escrow.Decision{By: string(escrow.Buyer)})
}

// Refund is the vendor's decision to pay the buyer back (trade FUNDED).
func (c *Client) Refund(ctx context.Context, escrowID string) (escrow.TradeStatus, error) {
	return c.update(ctx, escrowID, escrow.UpdateRefund, escrow.Decision{By: string(escrow.Vendor)})
}

// Dispute opens a dispute by "buyer" or "vendor" (trade FUNDED); the
// arbiter then decides with Resolve.
func (c *Client) Dispute(ctx context.Context, escrowID, by, reason string) (escrow.TradeStatus, error) {
	return c.update(ctx, escrowID, escrow.UpdateDispute, escrow.Decision{By: by, Reason: reason})
}

// Resolve is the arbiter's decision of a dispute: vendorShareBps (0..10000)
// of the payout to the vendor, the rest to the buyer.
func (c *Client) Resolve(ctx context.Context, escrowID string, vendorShareBps int) (escrow.TradeStatus, error) {
	return c.update(ctx, escrowID, escrow.UpdateResolve, escrow.Decision{By: string(escrow.Arbiter), VendorShareBps: &vendorShareBps})
}

// update sends update name to escrowID's trade and waits for its result.
func (c *Client) update(ctx context.Context, escrowID, name string, arg any) (escrow.TradeStatus, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return escrow.TradeStatus{}, err
	}
	h, err := c.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   escrow.TradeWorkflowID(escrowID),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var st escrow.TradeStatus
	if err == nil {
		err = h.Get(ctx, &st)
	}
	if err != nil {
		return escrow.TradeStatus{}, updateError(escrowID, name, err)
	}
	return st, nil
}

// updateError maps the error of an update: a validator's rejection, a
// failed handler, an unknown trade, or an error of the call.
func updateError(escrowID, name string, err error) error {
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == escrow.TypeUpdateRejected:
		return &UpdateRejectedError{EscrowID: escrowID, Update: name, Reason: appErr.Message(), Err: err}
	case errors.As(err, &appErr):
		return &TradeUpdateError{EscrowID: escrowID, Update: name, Type: appErr.Type(), Message: appErr.Message(), Err: err}
	}
	return tradeRPCError(escrowID, name, err)
}

// tradeRPCError gives an error of a Temporal call on a trade its context,
// mapping an unknown trade to ErrEscrowNotFound.
func tradeRPCError(escrowID, op string, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("trade %q: %w", escrowID, ErrEscrowNotFound)
	}
	return fmt.Errorf("%s: trade %q: %w", op, escrowID, err)
}

// TradeStatus returns the trade's answer to its status query (a worker
// must answer it; QueryTimeout bounds the wait). An unknown trade returns
// an error wrapping ErrEscrowNotFound, an invalid id an
// *escrow.InvalidEscrowIDError.
func (c *Client) TradeStatus(ctx context.Context, escrowID string) (escrow.TradeStatus, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return escrow.TradeStatus{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	v, err := c.c.QueryWorkflow(qctx, escrow.TradeWorkflowID(escrowID), "", escrow.TradeStatusQuery)
	if err != nil {
		return escrow.TradeStatus{}, tradeRPCError(escrowID, "query status", err)
	}
	var st escrow.TradeStatus
	if err := v.Get(&st); err != nil {
		return escrow.TradeStatus{}, fmt.Errorf("decode status of trade %q: %w", escrowID, err)
	}
	return st, nil
}

// WaitTrade blocks until the trade ends or ctx is done and returns its
// final status (PAID_OUT or EXPIRED). A FAILED trade returns an
// *EscrowFailedError whose Type is the reason's type (PayoutMismatch,
// NoDaemon, InvalidInput, …); an unknown trade an error wrapping
// ErrEscrowNotFound.
func (c *Client) WaitTrade(ctx context.Context, escrowID string) (*escrow.TradeStatus, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return nil, err
	}
	for {
		var st escrow.TradeStatus
		err := c.c.GetWorkflow(ctx, escrow.TradeWorkflowID(escrowID), "").Get(ctx, &st)
		if err == nil {
			return &st, nil
		}
		if ctx.Err() == nil && pollTimedOut(err) {
			continue
		}
		if typ, msg, ok := failure(err); ok {
			return nil, &EscrowFailedError{EscrowID: escrowID, Type: typ, Message: msg, Err: err}
		}
		return nil, tradeRPCError(escrowID, "wait for", err)
	}
}
