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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

const (
	tradeAmount = 1000
	feeBudget   = 30
	txid        = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	txKey       = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// fakeChain plays the daemon and the signers' wallets: the test moves the
// deposit with delayed callbacks, and every payout step checks it got the
// snapshot and peer info the previous step produced.
type fakeChain struct {
	mu                         sync.Mutex
	received, unlocked, confs  uint64
	announcedValid             bool
	checks                     []activities.DepositCheckInput
	calls                      []string // "Activity/role"
	snap                       map[string]string
	info                       map[string]string
	exports                    int
	txset                      string
	signedExternal             string  // a SIGNED message an external co-signer sends
	createErrs                 []error // returned by successive CreatePayout calls
	signErrs                   []error // returned by successive SignPayout calls
	exportErrs                 []error // returned by successive ExportMultisig calls
	checkErr                   error   // returned by CheckDeposit calls with an announcement
	plans                      []escrow.PayoutPlan
	payoutConfs                uint64
	payoutFoundAfter, txChecks int
	payoutStuck                bool // the payout never confirms
	termsErr, setupErr         error
	setupStarted               int
}

func (f *fakeChain) call(name, role string) {
	f.calls = append(f.calls, name+"/"+role)
}

func (f *fakeChain) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

type tradeSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env  *testsuite.TestWorkflowEnvironment
	fake *fakeChain
	sent int // payoutRound updates sent (their ids)
}

func TestEscrowTrade(t *testing.T) { suite.Run(t, new(tradeSuite)) }

func (s *tradeSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
	s.env.RegisterWorkflowWithOptions(EscrowSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	s.env.RegisterActivity(&activities.Activities{})
	s.fake = &fakeChain{announcedValid: true, snap: map[string]string{}, info: map[string]string{}}
	s.mock()
}

func (s *tradeSuite) input() escrow.TradeInput {
	return escrow.TradeInput{EscrowID: "e1", AmountAtomic: tradeAmount, VendorAddress: "escrow.Vendor", BuyerRefundAddress: "escrow.Buyer",
		DepositTimeout: "24h", Confirmations: 10, ScanInterval: "10m"}
}

func (s *tradeSuite) mock() {
	f := s.fake
	wrong := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), "TestWrongInput", nil)
	}
	s.env.OnActivity(a.CheckTradeTerms, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TermsInput) (activities.TermsOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("CheckTradeTerms", "")
			return activities.TermsOutput{Network: "mainnet", Regtest: true}, f.termsErr
		})
	s.env.OnWorkflow(escrow.WorkflowName, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
			f.mu.Lock()
			f.setupStarted++
			defer f.mu.Unlock()
			if f.setupErr != nil {
				return nil, f.setupErr
			}
			res := &escrow.SetupResult{EscrowID: in.EscrowID, MultisigAddress: "Multisig", HostTaskQueue: "host-q", Wallets: map[escrow.Role]escrow.WalletResult{}}
			for _, r := range escrow.Roles {
				res.Wallets[r] = escrow.WalletResult{Wallet: "final-" + string(r), Address: "Multisig"}
				f.snap[string(r)] = "final-" + string(r)
			}
			return res, nil
		})
	s.env.OnActivity(a.CheckDeposit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DepositCheckInput) (activities.DepositCheckOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("CheckDeposit", in.Role)
			f.checks = append(f.checks, in)
			if in.MultisigAddress != "Multisig" || in.Wallet != "final-arbiter" {
				return activities.DepositCheckOutput{}, wrong("CheckDeposit got %+v", in)
			}
			if in.Announced != nil && f.checkErr != nil {
				return activities.DepositCheckOutput{}, f.checkErr
			}
			out := activities.DepositCheckOutput{UnlockedAtomic: f.unlocked, AnnouncedValid: f.announcedValid,
				Deposit: escrow.DepositStatus{ReceivedAtomic: f.received, Confirmations: f.confs}}
			if f.received > 0 {
				out.Deposit.TxIDs = []string{txid}
			}
			return out, nil
		})
	s.env.OnActivity(a.EstimatePayoutFee, mock.Anything, mock.Anything).Return(activities.FeeOutput{EstimateAtomic: 10, BudgetAtomic: feeBudget}, nil)
	s.env.OnActivity(a.ExportMultisig, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PayoutStepInput) (activities.PayoutStepOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("ExportMultisig", in.Role)
			if in.Snapshot != f.snap[in.Role] {
				return activities.PayoutStepOutput{}, wrong("export of %s from %q, want %q", in.Role, in.Snapshot, f.snap[in.Role])
			}
			if len(f.exportErrs) > 0 {
				err := f.exportErrs[0]
				f.exportErrs = f.exportErrs[1:]
				return activities.PayoutStepOutput{}, err
			}
			f.exports++
			f.info[in.Role] = fmt.Sprintf("info-%s-%d", in.Role, f.exports)
			f.snap[in.Role] = fmt.Sprintf("exported-%s-%d", in.Role, f.exports)
			return activities.PayoutStepOutput{Snapshot: f.snap[in.Role], Info: f.info[in.Role]}, nil
		})
	s.env.OnActivity(a.ImportMultisig, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PayoutStepInput) (activities.PayoutStepOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("ImportMultisig", in.Role)
			// One peer's info, the latest that peer exported.
			latest := false
			for role, info := range f.info {
				latest = latest || (len(in.PeerInfos) == 1 && role != in.Role && info == in.PeerInfos[0])
			}
			if in.Snapshot != f.snap[in.Role] || !latest {
				return activities.PayoutStepOutput{}, wrong("import of %s got %q %v, want %q and one peer's latest info of %v", in.Role, in.Snapshot, in.PeerInfos, f.snap[in.Role], f.info)
			}
			f.snap[in.Role] = "imported-" + f.snap[in.Role]
			return activities.PayoutStepOutput{Snapshot: f.snap[in.Role], Outputs: 1, UnlockedAtomic: f.unlocked}, nil
		})
	s.env.OnActivity(a.CreatePayout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreatePayoutInput) (activities.CreatePayoutOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("CreatePayout", in.Role)
			f.plans = append(f.plans, in.Plan)
			if in.Snapshot != f.snap[in.Role] {
				return activities.CreatePayoutOutput{}, wrong("create from %q, want %q", in.Snapshot, f.snap[in.Role])
			}
			if len(f.createErrs) > 0 {
				err := f.createErrs[0]
				f.createErrs = f.createErrs[1:]
				// The attempt used the nonces of the last exchange.
				delete(f.info, in.Role)
				return activities.CreatePayoutOutput{}, err
			}
			f.txset = "txset-" + f.snap[in.Role]
			f.snap[in.Role] = "created-" + in.Role
			return activities.CreatePayoutOutput{Snapshot: f.snap[in.Role], TxSet: f.txset, FeeAtomic: 12}, nil
		})
	s.env.OnActivity(a.SignPayout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignPayoutInput) (activities.SignPayoutOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("SignPayout", in.Role)
			if in.Snapshot != f.snap[in.Role] || in.TxSet != f.txset {
				return activities.SignPayoutOutput{}, wrong("sign of %q from %q", in.TxSet, in.Snapshot)
			}
			if len(f.signErrs) > 0 {
				err := f.signErrs[0]
				f.signErrs = f.signErrs[1:]
				// Nothing signed; the creator's nonces of this exchange are used.
				delete(f.info, in.Role)
				return activities.SignPayoutOutput{}, err
			}
			f.snap[in.Role] = "signed-" + in.Role
			outs := in.Plan.Outputs
			if in.Plan.SweepTo != "" {
				outs = []escrow.PayoutOutput{{Address: in.Plan.SweepTo, AmountAtomic: in.Plan.TotalAtomic - 12}}
			}
			return activities.SignPayoutOutput{Snapshot: f.snap[in.Role], SignedTxSet: "signed-" + in.TxSet,
				TxHashes: []string{"payout-hash"}, FeeAtomic: 12, Outputs: outs}, nil
		})
	s.env.OnActivity(a.SubmitPayout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SubmitPayoutInput) (activities.SubmitPayoutOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("SubmitPayout", in.Role)
			if in.SignedTxSet != "signed-"+f.txset && (f.signedExternal == "" || in.SignedTxSet != f.signedExternal) {
				return activities.SubmitPayoutOutput{}, wrong("submit of %q", in.SignedTxSet)
			}
			return activities.SubmitPayoutOutput{TxHash: in.TxHashes[0]}, nil
		})
	s.env.OnActivity(a.CheckPayoutTx, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.TxCheckInput) (activities.TxCheckOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("CheckPayoutTx", "")
			f.txChecks++
			if f.txChecks <= f.payoutFoundAfter {
				return activities.TxCheckOutput{}, nil
			}
			if !f.payoutStuck {
				f.payoutConfs += 5
			}
			return activities.TxCheckOutput{Found: true, Confirmations: f.payoutConfs}, nil
		})
}

// at runs fn on the fake chain after d of workflow time.
func (s *tradeSuite) at(d time.Duration, fn func(f *fakeChain)) {
	s.env.RegisterDelayedCallback(func() {
		s.fake.mu.Lock()
		defer s.fake.mu.Unlock()
		fn(s.fake)
	}, d)
}

// deposit makes amount arrive at d, confirmed and unlocked at once.
func (s *tradeSuite) deposit(d time.Duration, amount uint64) {
	s.at(d, func(f *fakeChain) { f.received, f.unlocked, f.confs = amount, amount, 10 })
}

// updateResult is what one update call produced.
type updateResult struct {
	accepted bool
	rejected error
	err      error
	status   escrow.TradeStatus
	done     bool
}

// update sends an update at d and records its outcome in the returned value.
func (s *tradeSuite) update(d time.Duration, name string, arg any) *updateResult {
	r := &updateResult{}
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, fmt.Sprintf("%s-%s", name, d), &testsuite.TestUpdateCallback{
			OnAccept: func() { r.accepted = true },
			OnReject: func(err error) { r.rejected, r.done = err, true },
			OnComplete: func(v any, err error) {
				r.err, r.done = err, true
				if st, ok := v.(escrow.TradeStatus); ok {
					r.status = st
				}
			},
		}, arg)
	}, d)
	return r
}

func share(n int) *int { return &n }

// result runs the workflow to its end and returns its result.
func (s *tradeSuite) result() escrow.TradeStatus {
	s.True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var st escrow.TradeStatus
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	return st
}

func (s *tradeSuite) query() escrow.TradeStatus {
	v, err := s.env.QueryWorkflow(escrow.TradeStatusQuery)
	s.Require().NoError(err)
	var st escrow.TradeStatus
	s.Require().NoError(v.Get(&st))
	return st
}

// failure returns the application error the workflow failed with.
func (s *tradeSuite) failure() *temporal.ApplicationError {
	s.True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v", err)
	return appErr
}

func (s *tradeSuite) payoutCalls() []string {
	s.fake.mu.Lock()
	defer s.fake.mu.Unlock()
	var out []string
	for _, c := range s.fake.calls {
		switch c[:6] {
		case "Create", "SignPa", "Submit":
			out = append(out, c)
		}
	}
	return out
}

// activityErr is an application error of type typ that the activity
// itself does not mark non-retryable: the trade's retry policy must.
func activityErr(typ string) error {
	return temporal.NewApplicationError("test: "+typ, typ)
}
