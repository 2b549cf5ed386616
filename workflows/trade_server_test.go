package workflows_test

// EscrowTrade on the real Temporal dev server, with its activities and its
// EscrowSetup child stubbed (this tests the workflow's contract with
// Temporal: plain-JSON start, updates whose rejections leave no event in
// history, the status query, EscrowState and the result; the money itself
// moves in the end-to-end tests).

import (
	"context"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/workflows"
)

// stubChain answers the trade's activities; funded flips the deposit.
type stubChain struct{ funded atomic.Bool }

func (c *stubChain) register(w worker.Worker) {
	reg := func(name string, fn any) { w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg("CheckTradeTerms", func(context.Context, activities.TermsInput) (activities.TermsOutput, error) {
		return activities.TermsOutput{Network: "mainnet", Regtest: true}, nil
	})
	reg("CheckDeposit", func(context.Context, activities.DepositCheckInput) (activities.DepositCheckOutput, error) {
		if !c.funded.Load() {
			return activities.DepositCheckOutput{}, nil
		}
		return activities.DepositCheckOutput{UnlockedAtomic: 5000, AnnouncedValid: true,
			Deposit: escrow.DepositStatus{ReceivedAtomic: 5000, Confirmations: 1, TxIDs: []string{"t"}}}, nil
	})
	reg("EstimatePayoutFee", func(context.Context, activities.FeeInput) (activities.FeeOutput, error) {
		return activities.FeeOutput{EstimateAtomic: 10, BudgetAtomic: 30}, nil
	})
	step := func(_ context.Context, in activities.PayoutStepInput) (activities.PayoutStepOutput, error) {
		return activities.PayoutStepOutput{Snapshot: in.Snapshot + "+", Info: "info-" + in.Role}, nil
	}
	reg("ExportMultisig", step)
	reg("ImportMultisig", step)
	reg("CreatePayout", func(_ context.Context, in activities.CreatePayoutInput) (activities.CreatePayoutOutput, error) {
		return activities.CreatePayoutOutput{Snapshot: in.Snapshot, TxSet: "set"}, nil
	})
	reg("SignPayout", func(_ context.Context, in activities.SignPayoutInput) (activities.SignPayoutOutput, error) {
		return activities.SignPayoutOutput{Snapshot: in.Snapshot, SignedTxSet: "signed", TxHashes: []string{"h"}, FeeAtomic: 12,
			Outputs: []escrow.PayoutOutput{{Address: in.Plan.SweepTo, AmountAtomic: in.Plan.TotalAtomic - 12}}}, nil
	})
	reg("SubmitPayout", func(context.Context, activities.SubmitPayoutInput) (activities.SubmitPayoutOutput, error) {
		return activities.SubmitPayoutOutput{TxHash: "h"}, nil
	})
	reg("CheckPayoutTx", func(context.Context, activities.TxCheckInput) (activities.TxCheckOutput, error) {
		return activities.TxCheckOutput{Found: true, Confirmations: 1}, nil
	})
}

// stubSetup stands in for EscrowSetup: a multisig address, no host queue.
// Escrow ids starting with "hang" wait until cancelled.
func stubSetup(ctx workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
	if strings.HasPrefix(in.EscrowID, "hang") {
		return nil, workflow.Await(ctx, func() bool { return false })
	}
	res := &escrow.SetupResult{EscrowID: in.EscrowID, MultisigAddress: "M", Wallets: map[escrow.Role]escrow.WalletResult{}}
	for _, r := range escrow.Roles {
		res.Wallets[r] = escrow.WalletResult{Wallet: "final-" + string(r), Address: "M"}
	}
	return res, nil
}

func TestTradeOnTemporalServer(t *testing.T) {
	tp := testenv.StartTemporal(t)
	tc := tp.Client(t)
	w := worker.New(tc, escrow.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
	w.RegisterWorkflowWithOptions(stubSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	chain := &stubChain{}
	chain.register(w)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	sc := starter.New(tc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The raw CLI starts a trade with plain JSON.
	out, err := exec.CommandContext(ctx, testenv.TemporalCLI(t), "workflow", "start", "--address", tp.HostPort,
		"--namespace", tp.Namespace, "--task-queue", "escrow-setup", "--type", "EscrowTrade", "--workflow-id", "trade-s1",
		"--input", `{"escrowId":"s1","amountAtomic":5000,"vendorAddress":"V","buyerRefundAddress":"B","confirmations":1,"scanInterval":"1s","depositTimeout":"10m"}`).CombinedOutput()
	require.NoError(t, err, "%s", out)
	awaitState(ctx, t, sc, "s1", escrow.TradeAwaitingDeposit)

	// Rejected: a decision before FUNDED, by the CLI and by the starter.
	out, err = exec.CommandContext(ctx, testenv.TemporalCLI(t), "workflow", "update", "execute", "--address", tp.HostPort,
		"--namespace", tp.Namespace, "--workflow-id", "trade-s1", "--name", "release", "--input", `{"by":"buyer"}`).CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "decisions need a FUNDED trade")
	_, err = sc.Release(ctx, "s1")
	assert.ErrorIs(t, err, starter.ErrUpdateRejected)

	chain.funded.Store(true)
	awaitState(ctx, t, sc, "s1", escrow.TradeFunded)
	_, err = sc.Refund(ctx, "s1")
	require.NoError(t, err)
	_, err = sc.Release(ctx, "s1")
	var rej *starter.UpdateRejectedError
	require.ErrorAs(t, err, &rej, "a second decision")
	_, err = sc.Resolve(ctx, "s1", 5000)
	require.ErrorAs(t, err, &rej, "resolve without a dispute")

	final, err := sc.WaitTrade(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, escrow.TradePaidOut, final.State)
	assert.Equal(t, escrow.PayoutRefund, final.Payout.Kind)
	assert.Equal(t, []escrow.PayoutOutput{{Address: "B", AmountAtomic: 5000 - 12}}, final.Payout.Outputs)

	// History: exactly one update (the refund) was accepted and completed;
	// the four rejected ones left nothing.
	var accepted, completed, rejected int
	hist := &historypb.History{}
	it := tc.GetWorkflowHistory(ctx, "trade-s1", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			accepted++
			assert.Equal(t, escrow.UpdateRefund, ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest().GetInput().GetName())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
			completed++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
			rejected++
		}
	}
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{accepted, completed, rejected})

	// The recorded history replays on the current code (updates, timers and
	// the child included).
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
	require.NoError(t, r.ReplayWorkflowHistory(nil, hist))

	// Cancelling a trade during its setup cancels the setup, waits for it,
	// and ends FAILED (Cancelled).
	_, err = sc.StartTrade(ctx, escrow.TradeInput{EscrowID: "hang1", AmountAtomic: 1, VendorAddress: "V", BuyerRefundAddress: "B"})
	require.NoError(t, err)
	testenv.WaitFor(t, time.Minute, "the setup child", func() bool {
		d, err := tc.DescribeWorkflow(ctx, escrow.WorkflowID("hang1"), "")
		return err == nil && d.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	require.NoError(t, tc.CancelWorkflow(ctx, "trade-hang1", ""))
	_, err = sc.WaitTrade(ctx, "hang1")
	var failed *starter.EscrowFailedError
	require.ErrorAs(t, err, &failed)
	assert.Equal(t, escrow.TypeCancelled, failed.Type)
	child, err := tc.DescribeWorkflow(ctx, escrow.WorkflowID("hang1"), "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, child.Status)

	d, err := tc.DescribeWorkflow(ctx, "trade-s1", "")
	require.NoError(t, err)
	state, _ := d.TypedSearchAttributes.GetKeyword(escrow.EscrowStateKey)
	assert.Equal(t, string(escrow.TradePaidOut), state)
	assert.True(t, strings.HasPrefix(d.WorkflowExecution.ID, escrow.TradeIDPrefix))
}

// awaitState waits until the trade's status query says want (or FAILED).
func awaitState(ctx context.Context, t *testing.T, sc *starter.Client, id string, want escrow.TradeState) {
	t.Helper()
	var st escrow.TradeStatus
	testenv.WaitFor(t, time.Minute, string(want), func() bool {
		var err error
		st, err = sc.TradeStatus(ctx, id)
		return err == nil && (st.State == want || st.State == escrow.TradeFailed)
	})
	require.Equal(t, want, st.State, "%+v", st)
}
