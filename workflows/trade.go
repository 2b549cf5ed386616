package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// tradeNonRetryable adds the trade's failure types that a retry cannot fix
// to the setup's.
var tradeNonRetryable = append(append([]string(nil), escrow.NonRetryableTypes...),
	escrow.TypeNoDaemon, escrow.TypeUnsafeWalletRpc, escrow.TypePayoutMismatch,
	escrow.TypeSecondPayout, escrow.TypeNoncesSpent)

// withNonRetryable returns opts with its own retry policy that does not
// retry the trade's failure types.
func withNonRetryable(opts workflow.ActivityOptions) workflow.ActivityOptions {
	rp := *opts.RetryPolicy
	rp.NonRetryableErrorTypes = tradeNonRetryable
	opts.RetryPolicy = &rp
	return opts
}

var (
	// TradeStepOptions are the options of the trade's wallet activities
	// (CheckDeposit, ExportMultisig, ImportMultisig, CreatePayout,
	// SignPayout, SubmitPayout), run on the escrow's host task queue.
	TradeStepOptions = withNonRetryable(StepOptions)
	// TradeDaemonOptions are the options of the activities that only talk
	// to the daemon (CheckTradeTerms, EstimatePayoutFee, CheckPayoutTx),
	// run on the shared task queue.
	TradeDaemonOptions = withNonRetryable(FinishOptions)
)

const (
	// FollowInterval is the most a trade waits between two checks of a
	// deposit that has arrived but is not yet confirmed and unlocked, and
	// between two checks of a submitted payout (less when ScanInterval is
	// shorter).
	FollowInterval = 30 * time.Second
	// ExpiryGrace bounds how long an expired trade waits for the locked
	// part of a partial deposit to unlock before refunding what is
	// unlocked.
	ExpiryGrace = time.Hour
	// MaxNonceRetries bounds how often a payout redoes the multisig info
	// exchange after CreatePayout failed NoncesSpent.
	MaxNonceRetries = 3
	// MaxPayoutChecks bounds the CheckPayoutTx calls of one payout (with
	// FollowInterval, 6 h); then the trade fails PayoutUnconfirmed.
	MaxPayoutChecks = 720
)

// TradeInput is the input of EscrowTrade: an escrow.TradeInput. Valid JSON
// of another shape does not fail the workflow task: the trade fails with
// InvalidInput like any other bad input.
type TradeInput struct {
	escrow.TradeInput
	malformed string
}

// UnmarshalJSON decodes an escrow.TradeInput, recording a wrong shape.
func (in *TradeInput) UnmarshalJSON(b []byte) error {
	p, malformed := escrow.DecodeInput[escrow.TradeInput](b, "an object", "")
	*in = TradeInput{TradeInput: p, malformed: malformed}
	return nil
}

// trade is the state of one EscrowTrade run.
type trade struct {
	ctx       workflow.Context
	in        escrow.TradeInput
	timing    escrow.TradeTiming
	status    escrow.TradeStatus
	hostQueue string
	snapshots map[escrow.Role]string // per role, last committed wallet snapshot
	unlocked  uint64                 // the deposit's unlocked part, last seen

	// Set by the update handlers.
	announced   *escrow.DepositAnnouncement
	announceSeq int               // announcements accepted
	checkedSeq  int               // announcements a CheckDeposit has seen
	badSeq      int               // the last announcement CheckDeposit found invalid
	custody     custody           // external roles and their keys (parsed at start)
	px          *payoutX          // the running payout attempt with an external signer
	prep        *preparedExchange // buyer and vendor's exchange at FUNDED, when one was started
	payoutSeen  map[[32]byte]bool // digests of every accepted payout message
	kind        escrow.PayoutKind
	shareBps    int
	disputed    bool
	done        bool // the main function returned: handlers stop waiting
}

// EscrowTrade runs an escrow from its setup to its payout: it checks the
// terms, runs EscrowSetup as a child, waits for the deposit, for the
// parties' decision (or a dispute and the arbiter's resolution), and pays
// out with a 2-of-3 signed transaction. Its result is the final
// escrow.TradeStatus (PAID_OUT or EXPIRED); a FAILED trade ends with an
// application error of the reason's type whose details hold the status.
func EscrowTrade(ctx workflow.Context, in TradeInput) (*escrow.TradeStatus, error) {
	t := &trade{ctx: ctx, in: in.TradeInput, snapshots: map[escrow.Role]string{}, payoutSeen: map[[32]byte]bool{}}
	t.status = escrow.TradeStatus{EscrowID: in.EscrowID, State: escrow.TradeSettingUp}
	if err := t.register(); err != nil {
		return nil, err
	}
	err := t.start(in.malformed)
	if err == nil {
		err = t.run()
	}
	if err != nil {
		err = t.fail(err)
	}
	t.done = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if werr := workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) }); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	return &t.status, nil
}

// run lists the trade's states in order; the mechanics are below.
func (t *trade) run() error {
	if err := t.checkTerms(); err != nil { // SETTING_UP
		return err
	}
	if err := t.setUp(); err != nil {
		return err
	}
	if err := t.setState(escrow.TradeAwaitingDeposit); err != nil {
		return err
	}
	funded, err := t.awaitDeposit()
	if err != nil {
		return err
	}
	if !funded {
		return t.expire() // EXPIRED, what arrived refunded
	}
	if err := t.setState(escrow.TradeFunded); err != nil {
		return err
	}
	t.prepareExchange()            // buyer and vendor exchange multisig info while the trade waits
	kind, err := t.awaitDecision() // RELEASING, REFUNDING, or DISPUTED then RESOLVING
	if err != nil {
		return err
	}
	if err := t.payout(kind); err != nil {
		return err
	}
	return t.setState(escrow.TradePaidOut)
}

// start validates the input: a bad one fails the trade with InvalidInput
// before anything is created.
func (t *trade) start(malformed string) error {
	if err := t.setState(escrow.TradeSettingUp); err != nil {
		return err
	}
	if malformed != "" {
		return invalidInput("invalid workflow input: " + malformed)
	}
	timing, err := t.in.Check()
	if err != nil {
		return invalidInput(err.Error())
	}
	t.timing = timing
	if setup := t.in.SetupInput(); hasCustody(setup) {
		if t.custody, err = parseCustody(setup); err != nil {
			return invalidInput(err.Error())
		}
	}
	return nil
}

func invalidInput(reason string) error {
	return temporal.NewNonRetryableApplicationError(reason, escrow.TypeInvalidInput, nil)
}

// checkTerms has the worker check the addresses' network, its daemon and
// its wallet-rpc; it changes nothing.
func (t *trade) checkTerms() error {
	ctx := workflow.WithActivityOptions(t.ctx, TradeDaemonOptions)
	in := activities.TermsInput{EscrowID: t.in.EscrowID, AmountAtomic: t.in.AmountAtomic,
		VendorAddress: t.in.VendorAddress, BuyerRefundAddress: t.in.BuyerRefundAddress}
	return workflow.ExecuteActivity(ctx, a.CheckTradeTerms, in).Get(ctx, nil)
}

// setUp runs EscrowSetup as the child escrow-<escrowId>.
func (t *trade) setUp() error {
	ctx := workflow.WithChildOptions(t.ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            escrow.WorkflowID(t.in.EscrowID),
		TaskQueue:             escrow.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WaitForCancellation:   true,
	})
	var res escrow.SetupResult
	err := workflow.ExecuteChildWorkflow(ctx, escrow.WorkflowName, t.in.SetupInput()).Get(t.ctx, &res)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	if errors.As(err, &started) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("escrow %q was already set up (workflow %s)",
			t.in.EscrowID, escrow.WorkflowID(t.in.EscrowID)), escrow.TypeDuplicateEscrow, err)
	}
	if err != nil {
		return err
	}
	t.status.MultisigAddress, t.hostQueue = res.MultisigAddress, res.HostTaskQueue
	for _, role := range escrow.Roles {
		t.snapshots[role] = res.Wallets[role].Wallet
	}
	return nil
}

// awaitDecision waits for release or refund, or for a dispute and its
// resolution, and enters the payout's state.
func (t *trade) awaitDecision() (escrow.PayoutKind, error) {
	if err := workflow.Await(t.ctx, func() bool { return t.kind != "" || t.disputed }); err != nil {
		return "", err
	}
	if t.kind == "" {
		if err := t.setState(escrow.TradeDisputed); err != nil {
			return "", err
		}
		if err := workflow.Await(t.ctx, func() bool { return t.kind != "" }); err != nil {
			return "", err
		}
	}
	next := map[escrow.PayoutKind]escrow.TradeState{escrow.PayoutRelease: escrow.TradeReleasing,
		escrow.PayoutRefund: escrow.TradeRefunding, escrow.PayoutResolve: escrow.TradeResolving}[t.kind]
	return t.kind, t.setState(next)
}

func (t *trade) setState(st escrow.TradeState) error {
	t.status.State = st
	return workflow.UpsertTypedSearchAttributes(t.ctx, escrow.EscrowStateKey.ValueSet(string(st)))
}

// fail records err as the trade's FAILED reason and returns the error the
// trade ends with (the cancellation itself when it was cancelled).
func (t *trade) fail(err error) error {
	reasonType, reason := escrow.TypeUnknown, err.Error()
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	switch {
	case temporal.IsCanceledError(err):
		reasonType, reason = escrow.TypeCancelled, "cancelled"
	case errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
		reasonType = escrow.TypeWorkerLost
		reason = fmt.Sprintf("the worker holding the wallets (task queue %s) did not poll for %s", t.hostQueue, escrow.DefaultWorkerLostAfter)
	case errors.As(err, &appErr):
		reasonType, reason = appErr.Type(), appErr.Message()
	case errors.As(err, &timeout):
		reasonType = escrow.TypeTimeout
	}
	t.status.State, t.status.Reason, t.status.ReasonType = escrow.TradeFailed, reason, reasonType
	ctx, _ := workflow.NewDisconnectedContext(t.ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, escrow.EscrowStateKey.ValueSet(string(escrow.TradeFailed)))
	if reasonType == escrow.TypeCancelled {
		return err
	}
	return temporal.NewNonRetryableApplicationError("trade failed: "+reason, reasonType, err, t.status)
}

// hostOptions returns ctx with opts on the escrow's host task queue.
func (t *trade) hostOptions(ctx workflow.Context, opts workflow.ActivityOptions) workflow.Context {
	if t.hostQueue != "" {
		opts.TaskQueue = t.hostQueue
		opts.ScheduleToStartTimeout = escrow.DefaultWorkerLostAfter
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// hasType reports whether err is an application error of type typ.
func hasType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}
