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

// a is only used to name activity methods; the worker registers the real
// value.
var a *activities.Activities

// StepOptions are the activity options of the per-role wallet steps.
// StartToClose bounds one attempt (a create or open under full load takes
// seconds, not minutes); the heartbeat timeout notices a dead worker within
// seconds so the retry, which resumes from the last committed snapshot,
// starts soon. ScheduleToClose bounds all attempts so an escrow never hangs.
var StepOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    3 * time.Minute,
	HeartbeatTimeout:       10 * time.Second,
	ScheduleToCloseTimeout: 15 * time.Minute,
	WaitForCancellation:    true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        20 * time.Second,
		MaximumAttempts:        12,
		NonRetryableErrorTypes: escrow.NonRetryableTypes,
	},
}

// FinishOptions are the activity options of ClaimEscrow and FinishEscrow.
// Both take milliseconds but heartbeat like the steps, so an attempt on a
// worker that died is retried within seconds, not after a minute.
var FinishOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	HeartbeatTimeout:       10 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        20 * time.Second,
		NonRetryableErrorTypes: escrow.NonRetryableTypes,
	},
}

// hostQueueChange names the change that runs wallet activities on the task
// queue of the worker that claimed the escrow (replays of histories from
// before it keep every activity on the shared queue).
const hostQueueChange = "host-task-queue"

// finishDisconnectedChange names the change that finishes a completed
// escrow on a disconnected context (a cancellation then waits for it).
const finishDisconnectedChange = "finish-completed-disconnected"

// setup is the state of one EscrowSetup run.
type setup struct {
	ctx workflow.Context
	// hostQueue is the task queue of the worker holding the escrow's
	// wallet files; "" runs wallet activities on the workflow's queue.
	hostQueue  string
	workerLost time.Duration
	status     escrow.Status
	result     escrow.SetupResult
	snapshots  [3]string // per role (index in escrow.Roles), last committed snapshot
	infos      [3]string // per role, its latest multisig message
	custody    custody   // external participants, if any
}

// EscrowSetup sets up a 2-of-3 multisig wallet for buyer, vendor and
// arbiter. Each round runs the three roles' activities in parallel and
// waits for all three; each role receives exactly its two peers' messages
// of the previous round. On success it returns the multisig address, the
// roles' final wallet snapshots and per-round timings. On failure or
// cancellation it frees the escrow's wallet-rpc processes, parks its wallet
// files and ends FAILED with the reason's error type.
func EscrowSetup(ctx workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
	s := &setup{ctx: ctx, workerLost: in.WorkerLostAfter}
	if s.workerLost <= 0 {
		s.workerLost = escrow.DefaultWorkerLostAfter
	}
	s.status = escrow.Status{EscrowID: in.EscrowID, State: escrow.StateCreating, Roles: map[escrow.Role]escrow.RoleStatus{}}
	if err := workflow.SetQueryHandler(ctx, escrow.StatusQuery, func() (escrow.Status, error) {
		return s.status, nil
	}); err != nil {
		return nil, err
	}
	if in.Malformed() != "" {
		reason := "invalid workflow input: " + in.Malformed()
		s.status.State, s.status.Reason, s.status.ReasonType = escrow.StateFailed, reason, escrow.TypeInvalidInput
		_ = s.upsertState()
		return nil, temporal.NewNonRetryableApplicationError(reason, escrow.TypeInvalidInput, nil)
	}
	if err := escrow.ValidateEscrowID(in.EscrowID); err != nil {
		s.status.State, s.status.Reason, s.status.ReasonType = escrow.StateFailed, err.Error(), escrow.TypeInvalidInput
		_ = s.upsertState()
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), escrow.TypeInvalidInput, err)
	}
	if err := s.startCustody(in); err != nil {
		reason := "invalid workflow input: " + err.Error()
		s.status.State, s.status.Reason, s.status.ReasonType = escrow.StateFailed, reason, escrow.TypeInvalidInput
		_ = s.upsertState()
		return nil, temporal.NewNonRetryableApplicationError(reason, escrow.TypeInvalidInput, nil)
	}
	// Registered once the custody is known, which the validator reads.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, escrow.SubmitRoundUpdate, s.submitRound,
		workflow.UpdateHandlerOptions{Validator: s.validateRound}); err != nil {
		return nil, err
	}
	s.result = escrow.SetupResult{EscrowID: in.EscrowID, Wallets: map[escrow.Role]escrow.WalletResult{}}
	started := workflow.Now(ctx)

	err := s.run(in, started)
	if err == nil {
		s.end("completed", "")
		s.awaitHandlers(ctx)
		return &s.result, nil
	}
	err = s.fail(err, started)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	s.awaitHandlers(dctx)
	return nil, err
}

// awaitHandlers lets running submitRound updates answer before the run
// ends (they return once the custody exchange is over).
func (s *setup) awaitHandlers(ctx workflow.Context) {
	if s.custody.any() {
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	}
}

// run performs the rounds; any error is handled by fail.
func (s *setup) run(in escrow.SetupInput, started time.Time) error {
	ctx := s.ctx
	if err := s.setState(escrow.StateCreating); err != nil {
		return err
	}
	var claim activities.ClaimOutput
	cctx := workflow.WithActivityOptions(ctx, FinishOptions)
	if err := workflow.ExecuteActivity(cctx, a.ClaimEscrow, activities.ClaimInput{EscrowID: in.EscrowID}).Get(ctx, &claim); err != nil {
		return err
	}
	if workflow.GetVersion(ctx, hostQueueChange, workflow.DefaultVersion, 1) == 1 {
		s.hostQueue = claim.TaskQueue
	}
	fctx := s.hostOptions(ctx, FinishOptions)

	if _, err := s.round(escrow.RoundCreate, a.CreateWallet, nil); err != nil {
		return err
	}
	if err := s.setState(escrow.StatePreparing); err != nil {
		return err
	}
	if _, err := s.round(escrow.RoundPrepare, a.PrepareMultisig, nil); err != nil {
		return err
	}
	if err := s.setState(escrow.StateMaking); err != nil {
		return err
	}
	if _, err := s.round(escrow.RoundMake, a.MakeMultisig, s.peers); err != nil {
		return err
	}
	if err := s.setState(escrow.StateExchanging); err != nil {
		return err
	}
	if _, err := s.round(escrow.RoundExchange1, a.ExchangeMultisigKeys, s.peers); err != nil {
		return err
	}
	final, err := s.round(escrow.RoundExchange2, a.ExchangeMultisigKeys, s.peers)
	if err != nil {
		return err
	}
	if err := s.setState(escrow.StateVerifying); err != nil {
		return err
	}
	verified, err := s.round(escrow.RoundVerify, a.VerifyMultisig, nil)
	if err != nil {
		return err
	}
	if err := check(final, verified); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), escrow.TypeVerificationFailed, err)
	}

	s.result.MultisigAddress = verified[0].Address
	s.result.HostTaskQueue = s.hostQueue
	keep := make([]string, 0, len(escrow.Roles))
	for i, role := range escrow.Roles {
		if s.custody.external[i] {
			s.result.Wallets[role] = escrow.WalletResult{Address: verified[i].Address, Custody: escrow.CustodyExternal}
			continue
		}
		s.result.Wallets[role] = escrow.WalletResult{Wallet: s.snapshots[i], Address: verified[i].Address}
		keep = append(keep, s.snapshots[i])
	}
	finish := activities.FinishInput{EscrowID: in.EscrowID, Outcome: escrow.OutcomeCompleted, Keep: keep,
		DurationMs: workflow.Now(ctx).Sub(started).Milliseconds()}
	if workflow.GetVersion(ctx, finishDisconnectedChange, workflow.DefaultVersion, 1) == 1 {
		// The wallets are final: a cancellation now must not turn a
		// completed escrow into a cancelled one whose files FinishEscrow
		// has already cleaned up. Finish it whatever happens.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		fctx, ctx = s.hostOptions(dctx, FinishOptions), dctx
		s.ctx = dctx
	}
	if err := workflow.ExecuteActivity(fctx, a.FinishEscrow, finish).Get(ctx, nil); err != nil {
		return err
	}
	return s.setState(escrow.StateCompleted)
}

// check verifies that every role is a ready 2-of-3 multisig wallet and that
// all report the address the last exchange round produced.
func check(final, verified [3]activities.StepOutput) error {
	want := final[0].Address
	if want == "" {
		return &escrow.VerificationError{Reason: "the last exchange round returned no address"}
	}
	for i, role := range escrow.Roles {
		v := verified[i]
		switch {
		case !v.Multisig || !v.Ready:
			return &escrow.VerificationError{Reason: fmt.Sprintf("%s wallet is not a ready multisig wallet", role)}
		case v.Threshold != escrow.Threshold || v.Total != escrow.Total:
			return &escrow.VerificationError{Reason: fmt.Sprintf("%s wallet is %d-of-%d, want %d-of-%d",
				role, v.Threshold, v.Total, escrow.Threshold, escrow.Total)}
		case final[i].Address != want || v.Address != want:
			return &escrow.VerificationError{Reason: fmt.Sprintf("%s wallet reports a different address", role)}
		}
	}
	return nil
}

// peers returns the messages role i receives: its two peers' latest, in
// role order.
func (s *setup) peers(i int) []string {
	out := make([]string, 0, len(escrow.Roles)-1)
	for j := range escrow.Roles {
		if j != i {
			out = append(out, s.infos[j])
		}
	}
	return out
}

// producesMessage are the rounds whose every role must return a multisig
// message for the next round: a missing one must not let the previous
// round's message be sent on.
var producesMessage = map[escrow.Round]bool{escrow.RoundPrepare: true, escrow.RoundMake: true, escrow.RoundExchange1: true}

// round runs one step for the three roles in parallel and waits for all
// three, recording each role's timing as it finishes: an activity per
// hosted role, and the messages of the external roles' participants (see
// awaitExternal). It returns the first error after every role has ended.
func (s *setup) round(r escrow.Round, activity any, peers func(i int) []string) ([3]activities.StepOutput, error) {
	ctx := s.hostOptions(s.ctx, StepOptions)
	var outs [3]activities.StepOutput
	var errs [3]error
	hostedFailed := false
	sel := workflow.NewSelector(ctx)
	started := workflow.Now(ctx)
	pending := 0
	for i, role := range escrow.Roles {
		if s.custody.external[i] {
			continue
		}
		pending++
		in := activities.StepInput{EscrowID: s.status.EscrowID, Role: string(role), Round: string(r), Snapshot: s.snapshots[i]}
		if peers != nil {
			in.PeerInfos = peers(i)
		}
		s.status.Roles[role] = escrow.RoleStatus{Round: r, Step: "running"}
		sel.AddFuture(workflow.ExecuteActivity(ctx, activity, in), func(f workflow.Future) {
			errs[i] = f.Get(ctx, &outs[i])
			step := "done"
			if errs[i] != nil {
				step = "failed"
				hostedFailed = true
			}
			s.status.Roles[role] = escrow.RoleStatus{Round: r, Step: step}
			s.result.Rounds = append(s.result.Rounds, escrow.RoundTiming{
				Round: r, Role: role, Started: started, Finished: workflow.Now(ctx),
				Attempts: outs[i].Attempt, LeaseWaitMs: outs[i].LeaseWaitMs, RPCMs: outs[i].RPCMs,
				Recovered: outs[i].Recovered,
			})
		})
	}
	if s.custody.any() && messageRound(r) >= 0 {
		pending++
		s.waitExternal(sel, r, started, &hostedFailed, &errs)
	}
	for range pending {
		sel.Select(ctx)
	}
	for i := range escrow.Roles {
		if errs[i] != nil {
			return outs, errs[i]
		}
	}
	if producesMessage[r] {
		for i, role := range escrow.Roles {
			// An external role's message is in its submitRound update,
			// whose validator refuses a malformed one.
			if !s.custody.external[i] && outs[i].MultisigInfo == "" {
				err := &escrow.VerificationError{Reason: fmt.Sprintf("round %s: %s produced no multisig message", r, role)}
				return outs, temporal.NewNonRetryableApplicationError(err.Error(), escrow.TypeVerificationFailed, err)
			}
		}
	}
	for i := range escrow.Roles {
		if s.custody.external[i] {
			outs[i] = s.externalOutput(r, i)
			if outs[i].MultisigInfo != "" {
				s.infos[i] = outs[i].MultisigInfo
			}
			continue
		}
		s.snapshots[i] = outs[i].Snapshot
		if outs[i].MultisigInfo != "" {
			s.infos[i] = outs[i].MultisigInfo
		}
	}
	s.recordHosted(r, outs)
	return outs, nil
}

// waitExternal adds to sel the wait for the external roles' messages of
// round r (given up once a hosted role failed), recording each message's
// arrival; a missed deadline is the error of each role that sent nothing.
func (s *setup) waitExternal(sel workflow.Selector, r escrow.Round, started time.Time, hostedFailed *bool, errs *[3]error) {
	ri := messageRound(r)
	for i, role := range escrow.Roles {
		if s.custody.external[i] && s.custody.msgs[ri][i] == "" {
			s.status.Roles[role] = escrow.RoleStatus{Round: r, Step: "waiting", Custody: escrow.CustodyExternal}
		}
	}
	sel.AddFuture(s.awaitExternal(r, func() bool { return *hostedFailed }), func(f workflow.Future) {
		err := f.Get(s.ctx, nil)
		for i, role := range escrow.Roles {
			if !s.custody.external[i] {
				continue
			}
			if err != nil && s.custody.msgs[ri][i] == "" {
				errs[i] = err
				s.status.Roles[role] = escrow.RoleStatus{Round: r, Step: "failed", Custody: escrow.CustodyExternal}
			}
			if at := s.custody.arrived[ri][i]; !at.IsZero() {
				s.result.Rounds = append(s.result.Rounds, escrow.RoundTiming{
					Round: r, Role: role, Started: started, Finished: at, External: true})
			}
		}
	})
}

// hostOptions returns ctx with opts, on the escrow's worker's own task
// queue when it has one: there a worker that stopped polling is noticed by
// the ScheduleToStart timeout, which Temporal does not retry.
func (s *setup) hostOptions(ctx workflow.Context, opts workflow.ActivityOptions) workflow.Context {
	if s.hostQueue != "" {
		opts.TaskQueue = s.hostQueue
		opts.ScheduleToStartTimeout = s.workerLost
	}
	return workflow.WithActivityOptions(ctx, opts)
}

func (s *setup) setState(st escrow.State) error {
	s.status.State = st
	return s.upsertState()
}

func (s *setup) upsertState() error {
	return workflow.UpsertTypedSearchAttributes(s.ctx, escrow.EscrowStateKey.ValueSet(string(s.status.State)))
}

// fail records the failure, frees the escrow's processes and parks its
// files (also after cancellation, on a disconnected context), and returns
// the error the workflow ends with.
func (s *setup) fail(err error, started time.Time) error {
	outcome, reasonType, reason := escrow.OutcomeFailed, escrow.TypeUnknown, err.Error()
	var appErr *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	switch {
	case temporal.IsCanceledError(err):
		outcome, reasonType, reason = escrow.OutcomeCancelled, escrow.TypeCancelled, "cancelled"
	case errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
		reasonType = escrow.TypeWorkerLost
		reason = fmt.Sprintf("the worker holding the wallets (task queue %s) did not poll for %s", s.hostQueue, s.workerLost)
	case errors.As(err, &appErr):
		reasonType, reason = appErr.Type(), appErr.Message()
	case errors.As(err, &timeout):
		reasonType = escrow.TypeTimeout
	}
	s.status.State, s.status.Reason, s.status.ReasonType = escrow.StateFailed, reason, reasonType
	s.end(reason, reasonType)

	ctx, _ := workflow.NewDisconnectedContext(s.ctx)
	_ = workflow.UpsertTypedSearchAttributes(ctx, escrow.EscrowStateKey.ValueSet(string(escrow.StateFailed)))
	fctx := s.hostOptions(ctx, FinishOptions)
	finish := activities.FinishInput{EscrowID: s.status.EscrowID, Outcome: outcome, Reason: reason,
		ReasonType: reasonType, DurationMs: workflow.Now(ctx).Sub(started).Milliseconds()}
	if ferr := workflow.ExecuteActivity(fctx, a.FinishEscrow, finish).Get(ctx, nil); ferr != nil {
		workflow.GetLogger(ctx).Error("finishing a failed escrow failed", "error", ferr)
	}
	if outcome == escrow.OutcomeCancelled {
		return err
	}
	return temporal.NewNonRetryableApplicationError("escrow setup failed: "+reason, reasonType, err)
}
