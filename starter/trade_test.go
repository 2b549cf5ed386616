package starter

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

func tradeInput() escrow.TradeInput {
	return escrow.TradeInput{EscrowID: "e1", AmountAtomic: 5, VendorAddress: "V", BuyerRefundAddress: "B"}
}

// roundTrip is err as the server returns it: converted to a failure and back.
func roundTrip(err error) error {
	fc := temporal.GetDefaultFailureConverter()
	return fc.FailureToError(fc.ErrorToFailure(err))
}

func TestStartTradeOptions(t *testing.T) {
	m := mocks.NewClient(t)
	run := mocks.NewWorkflowRun(t)
	run.On("GetID").Return("trade-e1")
	run.On("GetRunID").Return("run-1")
	var got client.StartWorkflowOptions
	m.On("ExecuteWorkflow", anyCtx, mock.Anything, escrow.TradeWorkflowName, tradeInput()).
		Run(func(args mock.Arguments) { got = args.Get(1).(client.StartWorkflowOptions) }).
		Return(run, nil).Once()

	r, err := New(m).StartTrade(context.Background(), tradeInput())

	require.NoError(t, err)
	assert.Equal(t, Run{EscrowID: "e1", WorkflowID: "trade-e1", RunID: "run-1"}, r)
	assert.Equal(t, "trade-e1", got.ID)
	assert.Equal(t, "escrow-setup", got.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, got.WorkflowIDReusePolicy)
	assert.True(t, got.WorkflowExecutionErrorWhenAlreadyStarted)
	state, ok := got.TypedSearchAttributes.GetKeyword(escrow.EscrowStateKey)
	assert.True(t, ok, "EscrowState set at start")
	assert.Equal(t, string(escrow.TradeSettingUp), state)
}

func TestStartTradeRejectsBadInputWithoutTemporal(t *testing.T) {
	m := mocks.NewClient(t) // any call fails the test
	in := tradeInput()
	in.DepositTimeout = "soon"

	_, err := New(m).StartTrade(context.Background(), in)

	var ierr *escrow.TradeInputError
	require.ErrorAs(t, err, &ierr)
	assert.Equal(t, "depositTimeout", ierr.Field)
}

func TestStartTradeDuplicate(t *testing.T) {
	m := mocks.NewClient(t)
	m.On("ExecuteWorkflow", anyCtx, mock.Anything, escrow.TradeWorkflowName, tradeInput()).
		Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "req", "run-0")).Once()

	_, err := New(m).StartTrade(context.Background(), tradeInput())

	assert.ErrorIs(t, err, ErrDuplicateEscrow)
}

func TestTradeUpdates(t *testing.T) {
	share := 7000
	tests := []struct {
		name string
		call func(c *Client) (escrow.TradeStatus, error)
		want string
		arg  any
	}{
		{"release", func(c *Client) (escrow.TradeStatus, error) { return c.Release(context.Background(), "e1") },
			escrow.UpdateRelease, escrow.Decision{By: "buyer"}},
		{"refund", func(c *Client) (escrow.TradeStatus, error) { return c.Refund(context.Background(), "e1") },
			escrow.UpdateRefund, escrow.Decision{By: "vendor"}},
		{"dispute", func(c *Client) (escrow.TradeStatus, error) {
			return c.Dispute(context.Background(), "e1", "buyer", "late")
		}, escrow.UpdateDispute, escrow.Decision{By: "buyer", Reason: "late"}},
		{"resolve", func(c *Client) (escrow.TradeStatus, error) { return c.Resolve(context.Background(), "e1", 7000) },
			escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: &share}},
		{"deposit", func(c *Client) (escrow.TradeStatus, error) {
			return c.AnnounceDeposit(context.Background(), "e1", escrow.DepositAnnouncement{TxID: "t", TxKey: "k"})
		}, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: "t", TxKey: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			h := mocks.NewWorkflowUpdateHandle(t)
			h.On("Get", anyCtx, mock.AnythingOfType("*escrow.TradeStatus")).Run(func(args mock.Arguments) {
				*args.Get(1).(*escrow.TradeStatus) = escrow.TradeStatus{EscrowID: "e1", State: escrow.TradeReleasing}
			}).Return(nil).Once()
			var got client.UpdateWorkflowOptions
			m.On("UpdateWorkflow", anyCtx, mock.Anything).Run(func(args mock.Arguments) {
				got = args.Get(1).(client.UpdateWorkflowOptions)
			}).Return(h, nil).Once()

			st, err := tt.call(New(m))

			require.NoError(t, err)
			assert.Equal(t, escrow.TradeReleasing, st.State)
			assert.Equal(t, "trade-e1", got.WorkflowID)
			assert.Equal(t, tt.want, got.UpdateName)
			assert.Equal(t, []any{tt.arg}, got.Args)
			assert.Equal(t, client.WorkflowUpdateStageCompleted, got.WaitForStage)
		})
	}
}

func TestTradeUpdateErrors(t *testing.T) {
	tests := []struct {
		name  string
		give  error
		check func(t *testing.T, err error)
	}{
		{"validator rejection", roundTrip(temporal.NewNonRetryableApplicationError("the trade is AWAITING_DEPOSIT", escrow.TypeUpdateRejected, nil)),
			func(t *testing.T, err error) {
				var rej *UpdateRejectedError
				require.ErrorAs(t, err, &rej)
				assert.ErrorIs(t, err, ErrUpdateRejected)
				assert.Equal(t, "release", rej.Update)
				assert.Equal(t, "the trade is AWAITING_DEPOSIT", rej.Reason)
			}},
		{"handler failure", roundTrip(temporal.NewNonRetryableApplicationError("no payment", "InvalidInput", nil)),
			func(t *testing.T, err error) {
				var uerr *TradeUpdateError
				require.ErrorAs(t, err, &uerr)
				assert.NotErrorIs(t, err, ErrUpdateRejected)
				assert.Equal(t, "InvalidInput", uerr.Type)
			}},
		{"unknown trade", serviceerror.NewNotFound("workflow not found"),
			func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrEscrowNotFound) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			h := mocks.NewWorkflowUpdateHandle(t)
			h.On("Get", anyCtx, mock.Anything).Return(tt.give).Once()
			m.On("UpdateWorkflow", anyCtx, mock.Anything).Return(h, nil).Once()

			_, err := New(m).Release(context.Background(), "e1")

			tt.check(t, err)
		})
	}
}

func TestTradeStatusQuery(t *testing.T) {
	m := mocks.NewClient(t)
	want := escrow.TradeStatus{EscrowID: "e1", State: escrow.TradeFunded, MultisigAddress: "M",
		Deposit: escrow.DepositStatus{ReceivedAtomic: 5, Confirmations: 10, TxIDs: []string{"t"}}}
	m.On("QueryWorkflow", anyCtx, "trade-e1", "", escrow.TradeStatusQuery).Return(value{want}, nil).Once()

	st, err := New(m).TradeStatus(context.Background(), "e1")

	require.NoError(t, err)
	assert.Equal(t, want, st)
}

func TestTradeStatusUnknown(t *testing.T) {
	m := mocks.NewClient(t)
	m.On("QueryWorkflow", anyCtx, "trade-nope", "", escrow.TradeStatusQuery).Return(nil, serviceerror.NewNotFound("x")).Once()

	_, err := New(m).TradeStatus(context.Background(), "nope")

	assert.ErrorIs(t, err, ErrEscrowNotFound)
}

func TestWaitTrade(t *testing.T) {
	t.Run("paid out", func(t *testing.T) {
		m := mocks.NewClient(t)
		run := mocks.NewWorkflowRun(t)
		run.On("Get", anyCtx, mock.AnythingOfType("*escrow.TradeStatus")).Run(func(args mock.Arguments) {
			*args.Get(1).(*escrow.TradeStatus) = escrow.TradeStatus{EscrowID: "e1", State: escrow.TradePaidOut}
		}).Return(nil).Once()
		m.On("GetWorkflow", anyCtx, "trade-e1", "").Return(run).Once()

		st, err := New(m).WaitTrade(context.Background(), "e1")

		require.NoError(t, err)
		assert.Equal(t, escrow.TradePaidOut, st.State)
	})
	t.Run("failed", func(t *testing.T) {
		m := mocks.NewClient(t)
		run := mocks.NewWorkflowRun(t)
		cause := temporal.NewNonRetryableApplicationError("trade failed: wrong address", escrow.TypePayoutMismatch, nil)
		run.On("Get", anyCtx, mock.Anything).Return(workflowFailure(t, cause)).Once()
		m.On("GetWorkflow", anyCtx, "trade-e1", "").Return(run).Once()

		_, err := New(m).WaitTrade(context.Background(), "e1")

		var failed *EscrowFailedError
		require.ErrorAs(t, err, &failed)
		assert.Equal(t, escrow.TypePayoutMismatch, failed.Type)
	})
	t.Run("long poll ran out", func(t *testing.T) {
		m := mocks.NewClient(t)
		first, second := mocks.NewWorkflowRun(t), mocks.NewWorkflowRun(t)
		first.On("Get", anyCtx, mock.Anything).Return(serviceerror.NewDeadlineExceeded("poll")).Once()
		second.On("Get", anyCtx, mock.Anything).Return(nil).Once()
		m.On("GetWorkflow", anyCtx, "trade-e1", "").Return(first).Once()
		m.On("GetWorkflow", anyCtx, "trade-e1", "").Return(second).Once()

		_, err := New(m).WaitTrade(context.Background(), "e1")

		assert.NoError(t, err)
	})
	t.Run("context ends", func(t *testing.T) {
		m := mocks.NewClient(t)
		run := mocks.NewWorkflowRun(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		run.On("Get", anyCtx, mock.Anything).Return(context.Canceled).Once()
		m.On("GetWorkflow", anyCtx, "trade-e1", "").Return(run).Once()

		_, err := New(m).WaitTrade(ctx, "e1")

		assert.True(t, errors.Is(err, context.Canceled))
	})
}

func TestTradeCallsRejectInvalidIDsWithoutTemporal(t *testing.T) {
	c := New(mocks.NewClient(t)) // any call fails the test
	ctx := context.Background()
	in := tradeInput()
	in.EscrowID = "../x"
	var idErr *escrow.InvalidEscrowIDError
	_, err := c.StartTrade(ctx, in)
	assert.ErrorAs(t, err, &idErr)
	_, err = c.Release(ctx, "a b")
	assert.ErrorAs(t, err, &idErr)
	_, err = c.TradeStatus(ctx, "")
	assert.ErrorAs(t, err, &idErr)
	_, err = c.WaitTrade(ctx, "-x")
	assert.ErrorAs(t, err, &idErr)
}
