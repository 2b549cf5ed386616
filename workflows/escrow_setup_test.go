package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// fakeProtocol plays the wallets of the three roles: every message names
// its round and sender, and every call checks it received exactly its two
// peers' messages of the previous round.
type fakeProtocol struct {
	t        *testing.T
	mu       sync.Mutex
	calls    map[string]int // "round/role" → calls
	finishes []activities.FinishInput
	failOnce map[string]error // "round/role" → error returned on the first call
	address  map[string]string
	queues   map[string]int // task queue → wallet activities run there
}

func newFake(t *testing.T) *fakeProtocol {
	return &fakeProtocol{t: t, calls: map[string]int{}, failOnce: map[string]error{}, address: map[string]string{}, queues: map[string]int{}}
}

func msg(round, role string) string { return "Multisig-" + round + "-" + role }

var prevRound = map[string]string{
	string(escrow.RoundMake):      string(escrow.RoundPrepare),
	string(escrow.RoundExchange1): string(escrow.RoundMake),
	string(escrow.RoundExchange2): string(escrow.RoundExchange1),
}

func (f *fakeProtocol) step(ctx context.Context, in activities.StepInput) (activities.StepOutput, error) {
	f.mu.Lock()
	f.queues[activity.GetInfo(ctx).TaskQueue]++
	key := in.Round + "/" + in.Role
	f.calls[key]++
	n := f.calls[key]
	failErr := f.failOnce[key]
	addr := f.address[in.Role]
	f.mu.Unlock()
	if failErr != nil && n == 1 {
		return activities.StepOutput{}, failErr
	}
	if prev, ok := prevRound[in.Round]; ok {
		var want []string
		for _, r := range escrow.Roles {
			if string(r) != in.Role {
				want = append(want, msg(prev, string(r)))
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(in.PeerInfos) {
			return activities.StepOutput{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%s got %v, want %v", key, in.PeerInfos, want), "TestWrongPeers", nil)
		}
	}
	wantSnap := ""
	if in.Round != string(escrow.RoundCreate) {
		wantSnap = "snap-" + in.Role
	}
	if in.Snapshot != wantSnap && in.Snapshot != "snap-"+in.Role+"-final" {
		return activities.StepOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s started from snapshot %q", key, in.Snapshot), "TestWrongSnapshot", nil)
	}
	if addr == "" {
		addr = "9multisig"
	}
	out := activities.StepOutput{Snapshot: "snap-" + in.Role, Attempt: int32(n), LeaseWaitMs: 1, RPCMs: 10}
	switch in.Round {
	case string(escrow.RoundPrepare), string(escrow.RoundMake), string(escrow.RoundExchange1):
		out.MultisigInfo = msg(in.Round, in.Role)
	case string(escrow.RoundExchange2):
		out.Address, out.Snapshot = addr, "snap-"+in.Role+"-final"
	case string(escrow.RoundVerify):
		out.Snapshot = in.Snapshot
		out.Address, out.Multisig, out.Ready, out.Threshold, out.Total = addr, true, true, 2, 3
	}
	return out, nil
}

func (f *fakeProtocol) finish(_ context.Context, in activities.FinishInput) (activities.FinishOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finishes = append(f.finishes, in)
	return activities.FinishOutput{Owner: true}, nil
}

type setupSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env       *testsuite.TestWorkflowEnvironment
	fake      *fakeProtocol
	hostQueue string // what ClaimEscrow answers
}

func TestEscrowSetup(t *testing.T) { suite.Run(t, new(setupSuite)) }

func (s *setupSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(EscrowSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	s.env.RegisterActivity(&activities.Activities{})
	s.fake = newFake(s.T())
	s.hostQueue = ""
}

// mockActivities routes every activity to the fake; makeDelay, if set,
// makes each MakeMultisig call take that long on the test clock.
func (s *setupSuite) mockActivities(makeDelay time.Duration) {
	s.env.OnActivity(a.ClaimEscrow, mock.Anything, mock.Anything).Return(activities.ClaimOutput{TaskQueue: s.hostQueue}, nil)
	for _, act := range []any{a.CreateWallet, a.PrepareMultisig, a.ExchangeMultisigKeys, a.VerifyMultisig} {
		s.env.OnActivity(act, mock.Anything, mock.Anything).Return(s.fake.step)
	}
	s.env.OnActivity(a.MakeMultisig, mock.Anything, mock.Anything).After(makeDelay).Return(s.fake.step)
	s.env.OnActivity(a.FinishEscrow, mock.Anything, mock.Anything).Return(s.fake.finish)
}

func (s *setupSuite) status() escrow.Status {
	v, err := s.env.QueryWorkflow(escrow.StatusQuery)
	s.Require().NoError(err)
	var st escrow.Status
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *setupSuite) TestHappyPath() {
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-1"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res escrow.SetupResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))

	s.Equal("order-1", res.EscrowID)
	s.Equal("9multisig", res.MultisigAddress)
	for _, role := range escrow.Roles {
		s.Equal(escrow.WalletResult{Wallet: "snap-" + string(role) + "-final", Address: "9multisig"}, res.Wallets[role])
	}
	s.Len(res.Rounds, 6*3)
	for _, r := range res.Rounds {
		s.EqualValues(1, r.Attempts, "%s/%s", r.Round, r.Role)
		s.False(r.Finished.Before(r.Started))
	}
	s.Equal(escrow.StateCompleted, s.status().State)
	s.Require().Len(s.fake.finishes, 1)
	s.Equal(escrow.OutcomeCompleted, s.fake.finishes[0].Outcome)
	s.ElementsMatch([]string{"snap-buyer-final", "snap-vendor-final", "snap-arbiter-final"}, s.fake.finishes[0].Keep)
	for _, r := range []escrow.Round{escrow.RoundCreate, escrow.RoundPrepare, escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2, escrow.RoundVerify} {
		for _, role := range escrow.Roles {
			s.Equal(1, s.fake.calls[string(r)+"/"+string(role)], "%s/%s", r, role)
		}
	}
}

func (s *setupSuite) TestRetriedRoleDoesNotRedoPeers() {
	s.fake.failOnce[string(escrow.RoundMake)+"/vendor"] = temporal.NewApplicationError("wallet-rpc died", escrow.TypeWalletUnavailable)
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-2"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(2, s.fake.calls[string(escrow.RoundMake)+"/vendor"])
	s.Equal(1, s.fake.calls[string(escrow.RoundMake)+"/buyer"])
	s.Equal(1, s.fake.calls[string(escrow.RoundMake)+"/arbiter"])
	s.Equal(1, s.fake.calls[string(escrow.RoundCreate)+"/vendor"])
	var res escrow.SetupResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	for _, r := range res.Rounds {
		want := int32(1)
		if r.Round == escrow.RoundMake && r.Role == escrow.Vendor {
			want = 2
		}
		s.Equal(want, r.Attempts, "%s/%s", r.Round, r.Role)
	}
}

func (s *setupSuite) TestNonRetryableFailureEndsFailed() {
	s.fake.failOnce[string(escrow.RoundExchange1)+"/arbiter"] = temporal.NewNonRetryableApplicationError(
		"bad kex message", escrow.TypeInvalidMultisigMessage, nil)
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-3"})
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "%v", err)
	s.Equal(escrow.TypeInvalidMultisigMessage, appErr.Type())
	s.Equal(1, s.fake.calls[string(escrow.RoundExchange1)+"/arbiter"], "a non-retryable error is not retried")
	s.Equal(0, s.fake.calls[string(escrow.RoundExchange2)+"/buyer"])

	st := s.status()
	s.Equal(escrow.StateFailed, st.State)
	s.Equal(escrow.TypeInvalidMultisigMessage, st.ReasonType)
	s.Equal("failed", st.Roles[escrow.Arbiter].Step)
	s.Require().Len(s.fake.finishes, 1)
	s.Equal(escrow.OutcomeFailed, s.fake.finishes[0].Outcome)
	s.Equal(escrow.TypeInvalidMultisigMessage, s.fake.finishes[0].ReasonType)
}

func (s *setupSuite) TestAddressMismatchFailsVerification() {
	s.fake.address["vendor"] = "9other"
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-4"})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(escrow.TypeVerificationFailed, appErr.Type())
	s.Equal(escrow.StateFailed, s.status().State)
}

func (s *setupSuite) TestInvalidEscrowIDTouchesNothing() {
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "../etc"})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(escrow.TypeInvalidInput, appErr.Type())
	s.Empty(s.fake.calls)
	s.Empty(s.fake.finishes)
}

func (s *setupSuite) TestCancellationParksAndFrees() {
	s.env.RegisterDelayedCallback(func() {
		s.Equal(escrow.StateMaking, s.status().State)
		s.env.CancelWorkflow()
	}, 30*time.Minute)
	// MAKING does not finish before the cancellation: each call takes an hour.
	s.mockActivities(time.Hour)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-5"})
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.True(temporal.IsCanceledError(err), "%v", err)
	st := s.status()
	s.Equal(escrow.StateFailed, st.State)
	s.Equal("Cancelled", st.ReasonType)
	s.Require().Len(s.fake.finishes, 1)
	s.Equal(escrow.OutcomeCancelled, s.fake.finishes[0].Outcome)
}

func (s *setupSuite) TestWalletActivitiesRunOnTheClaimingWorkersQueue() {
	s.hostQueue = escrow.HostTaskQueue("w1")
	s.mockActivities(0)
	s.env.ExecuteWorkflow(EscrowSetup, escrow.SetupInput{EscrowID: "order-6"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(map[string]int{escrow.HostTaskQueue("w1"): 18}, s.fake.queues, "all 18 wallet steps on the worker's own queue")
}
