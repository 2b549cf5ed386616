package workflows

import (
	"time"

	"github.com/escrowflow/escrowflow/escrow"
)

func (s *tradeSuite) TestReleasePaysTheVendor() {
	s.deposit(time.Hour, tradeAmount)
	var funded escrow.TradeStatus
	s.env.RegisterDelayedCallback(func() { funded = s.query() }, 2*time.Hour)
	rel := s.update(3*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeFunded, funded.State)
	s.Equal(uint64(tradeAmount), funded.Deposit.ReceivedAtomic)
	s.True(rel.done)
	s.NoError(rel.err)
	s.Equal(escrow.TradeReleasing, rel.status.State)
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal("Multisig", st.MultisigAddress)
	s.Equal(escrow.PayoutRelease, st.Payout.Kind)
	s.Equal("payout-hash", st.Payout.TxHash)
	s.Equal(uint64(10), st.Payout.Confirmations)
	s.Equal([]escrow.PayoutOutput{{Address: "escrow.Vendor", AmountAtomic: tradeAmount - 12}}, st.Payout.Outputs)
	s.Equal([]string{"CreatePayout/buyer", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
	s.Require().Len(s.fake.plans, 1)
	s.Equal("escrow.Vendor", s.fake.plans[0].SweepTo)
	s.Equal(uint64(feeBudget), s.fake.plans[0].FeeBudgetAtomic)
	s.Zero(s.fake.count("ExportMultisig/arbiter"), "the arbiter takes no part in a release")
}

func (s *tradeSuite) TestReleaseWithExcessPaysTheBuyerTheExcess() {
	s.deposit(time.Hour, tradeAmount+250)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal([]escrow.PayoutOutput{{Address: "escrow.Vendor", AmountAtomic: tradeAmount - feeBudget},
		{Address: "escrow.Buyer", AmountAtomic: 250}}, st.Payout.Outputs)
}

func (s *tradeSuite) TestRefundPaysTheBuyer() {
	s.deposit(time.Hour, tradeAmount)
	ref := s.update(2*time.Hour, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeRefunding, ref.status.State)
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(escrow.PayoutRefund, st.Payout.Kind)
	s.Equal([]string{"CreatePayout/vendor", "SignPayout/buyer", "SubmitPayout/buyer"}, s.payoutCalls())
	s.Equal("escrow.Buyer", s.fake.plans[0].SweepTo)
}

func (s *tradeSuite) TestDisputeResolvedSplitsByShare() {
	s.deposit(time.Hour, tradeAmount+feeBudget)
	var disputed escrow.TradeStatus
	dis := s.update(2*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "buyer", Reason: "not delivered"})
	s.env.RegisterDelayedCallback(func() { disputed = s.query() }, 3*time.Hour)
	res := s.update(4*time.Hour, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(7000)})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeDisputed, dis.status.State)
	s.Equal(escrow.TradeDisputed, disputed.State)
	s.Equal("not delivered", disputed.Dispute)
	s.Equal(escrow.TradeResolving, res.status.State)
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(escrow.PayoutResolve, st.Payout.Kind)
	s.Equal([]escrow.PayoutOutput{{Address: "escrow.Vendor", AmountAtomic: 700}, {Address: "escrow.Buyer", AmountAtomic: 300}}, st.Payout.Outputs)
	s.Equal([]string{"CreatePayout/arbiter", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
}

func (s *tradeSuite) TestResolveTieIsCoSignedByTheBuyer() {
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "vendor"})
	s.update(3*time.Hour, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(5000)})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal([]string{"CreatePayout/arbiter", "SignPayout/buyer", "SubmitPayout/buyer"}, s.payoutCalls())
}

func (s *tradeSuite) TestDepositTimeoutWithoutDepositExpires() {
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeExpired, st.State)
	s.Equal(escrow.TypeDepositExpired, st.ReasonType)
	s.Empty(s.payoutCalls())
	s.Zero(s.fake.count("ExportMultisig"))
	// A check at once, one every ScanInterval, and one at the deadline.
	s.Equal(1+24*6, s.fake.count("CheckDeposit"))
	for _, c := range s.fake.checks {
		s.True(c.Scan)
	}
}

func (s *tradeSuite) TestPartialDepositExpiresAndIsRefunded() {
	s.deposit(time.Hour, 400)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeExpired, st.State)
	s.Equal(escrow.TypeDepositExpired, st.ReasonType)
	s.Equal(escrow.PayoutExpired, st.Payout.Kind)
	s.Equal("payout-hash", st.Payout.TxHash)
	s.Equal([]escrow.PayoutOutput{{Address: "escrow.Buyer", AmountAtomic: 400 - 12}}, st.Payout.Outputs)
	s.Equal([]string{"CreatePayout/arbiter", "SignPayout/buyer", "SubmitPayout/buyer"}, s.payoutCalls())
}

func (s *tradeSuite) TestExpiredRefundWaitsForALockedPart() {
	s.at(23*time.Hour, func(f *fakeChain) { f.received, f.confs = 400, 1 })
	s.at(25*time.Hour, func(f *fakeChain) { f.unlocked, f.confs = 400, 10 })
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeExpired, st.State)
	s.Require().Len(s.fake.plans, 1)
	s.Equal(uint64(400), s.fake.plans[0].TotalAtomic)
}

func (s *tradeSuite) TestDustDepositExpiresWithoutPayout() {
	s.deposit(time.Hour, feeBudget)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradeExpired, st.State)
	s.Empty(s.payoutCalls())
	s.Contains(st.Reason, "stays in the multisig address")
}

func (s *tradeSuite) TestSufficientDepositAtTheDeadlineIsFollowed() {
	s.at(23*time.Hour+59*time.Minute, func(f *fakeChain) { f.received, f.confs = tradeAmount, 1 })
	s.at(25*time.Hour, func(f *fakeChain) { f.unlocked, f.confs = tradeAmount, 10 })
	s.update(26*time.Hour, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
}

func (s *tradeSuite) TestAnnouncedDepositIsCheckedAtOnce() {
	// The payment lands at 1m; the next scan would come at 10m.
	s.at(time.Minute, func(f *fakeChain) { f.received, f.unlocked, f.confs = tradeAmount, tradeAmount, 10 })
	dep := s.update(time.Minute+time.Second, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: txKey})
	var st escrow.TradeStatus
	s.env.RegisterDelayedCallback(func() { st = s.query() }, 2*time.Minute)
	s.update(3*time.Minute, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.True(dep.done)
	s.NoError(dep.err)
	s.Equal(uint64(tradeAmount), dep.status.Deposit.ReceivedAtomic)
	s.Equal(escrow.TradeFunded, st.State)
	s.Require().GreaterOrEqual(len(s.fake.checks), 2)
	s.Equal(&escrow.DepositAnnouncement{TxID: txid, TxKey: txKey}, s.fake.checks[1].Announced)
	s.False(s.fake.checks[1].Scan)
}

func (s *tradeSuite) TestDepositConfirmationsAreFollowed() {
	s.at(time.Hour, func(f *fakeChain) { f.received, f.confs = tradeAmount, 2 })
	s.at(time.Hour+20*time.Minute, func(f *fakeChain) { f.unlocked, f.confs = tradeAmount, 10 })
	var at20, at21 escrow.TradeStatus
	s.env.RegisterDelayedCallback(func() { at20 = s.query() }, time.Hour+20*time.Minute-time.Second)
	s.env.RegisterDelayedCallback(func() { at21 = s.query() }, time.Hour+21*time.Minute)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal(escrow.TradeAwaitingDeposit, at20.State)
	s.Equal(uint64(2), at20.Deposit.Confirmations)
	s.Equal(escrow.TradeFunded, at21.State, "followed every FollowInterval, not every ScanInterval")
}

func (s *tradeSuite) TestBadAnnouncementFailsTheUpdateAndTheTradeWaits() {
	s.fake.announcedValid = false
	dep := s.update(time.Minute, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: txKey})
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Require().Error(dep.err)
	s.Contains(dep.err.Error(), "does not prove a payment")
	last := s.fake.checks[len(s.fake.checks)-1]
	s.Nil(last.Announced, "a disproved announcement is not checked again")
}

func (s *tradeSuite) TestPayoutWaitsForConfirmations() {
	s.fake.payoutFoundAfter = 1
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(3, s.fake.count("CheckPayoutTx"))
	s.Equal(2, s.fake.count("SubmitPayout"), "a payout nobody knows is submitted again")
}

func (s *tradeSuite) TestNoncesSpentRedoesTheExchange() {
	s.fake.createErrs = []error{activityErr(escrow.TypeNoncesSpent)}
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal(2, s.fake.count("ExportMultisig/buyer"))
	s.Equal(2, s.fake.count("ExportMultisig/vendor"))
	s.Equal(2, s.fake.count("ImportMultisig/vendor"))
	s.Equal(2, s.fake.count("CreatePayout/buyer"))
	s.Equal(1, s.fake.count("SignPayout/vendor"))
}

func (s *tradeSuite) TestNoncesSpentOnSignatureRedoesTheExchange() {
	s.fake.signErrs = []error{activityErr(escrow.TypeNoncesSpent)}
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal(2, s.fake.count("ExportMultisig/vendor"))
	s.Equal(2, s.fake.count("ImportMultisig/buyer"))
	s.Equal(2, s.fake.count("CreatePayout/vendor"))
	s.Equal(2, s.fake.count("SignPayout/buyer"))
	s.Equal(1, s.fake.count("SubmitPayout"))
}

func (s *tradeSuite) TestNoncesSpentIsBounded() {
	for range MaxNonceRetries + 1 {
		s.fake.createErrs = append(s.fake.createErrs, activityErr(escrow.TypeNoncesSpent))
	}
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TypeNoncesSpent, s.failure().Type())
	s.Equal(MaxNonceRetries+1, s.fake.count("CreatePayout"))
	s.Zero(s.fake.count("SignPayout"))
}

func (s *tradeSuite) TestPayoutMismatchFailsUnsigned() {
	for _, typ := range []string{escrow.TypePayoutMismatch, escrow.TypeSecondPayout, escrow.TypeUnsafeWalletRpc} {
		s.Run(typ, func() {
			s.SetupTest()
			s.fake.signErrs = []error{activityErr(typ)}
			s.deposit(time.Hour, tradeAmount)
			s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
			s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

			s.Equal(typ, s.failure().Type())
			st := s.query()
			s.Equal(escrow.TradeFailed, st.State)
			s.Equal(typ, st.ReasonType)
			s.Equal(1, s.fake.count("SignPayout"), "not retried")
			s.Zero(s.fake.count("SubmitPayout"))
		})
	}
}

func (s *tradeSuite) TestInvalidInputCreatesNothing() {
	for name, edit := range map[string]func(*escrow.TradeInput){
		"bad id":          func(in *escrow.TradeInput) { in.EscrowID = "../x" },
		"zero amount":     func(in *escrow.TradeInput) { in.AmountAtomic = 0 },
		"no vendor":       func(in *escrow.TradeInput) { in.VendorAddress = "" },
		"bad timeout":     func(in *escrow.TradeInput) { in.DepositTimeout = "3 days" },
		"bad scan":        func(in *escrow.TradeInput) { in.ScanInterval = "-1s" },
		"no buyer refund": func(in *escrow.TradeInput) { in.BuyerRefundAddress = "" },
	} {
		s.Run(name, func() {
			s.SetupTest()
			in := s.input()
			edit(&in)
			s.env.ExecuteWorkflow(escrow.TradeWorkflowName, in)

			s.Equal(escrow.TypeInvalidInput, s.failure().Type())
			s.Zero(s.fake.count("CheckTradeTerms"))
			s.Zero(s.fake.setupStarted)
			s.Equal(escrow.TradeFailed, s.query().State)
		})
	}
}

func (s *tradeSuite) TestMalformedInputFailsInvalidInput() {
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, []int{1})

	s.Equal(escrow.TypeInvalidInput, s.failure().Type())
	s.Zero(s.fake.setupStarted)
}

func (s *tradeSuite) TestTermsRefusedCreateNothing() {
	for _, typ := range []string{escrow.TypeNoDaemon, escrow.TypeInvalidInput, escrow.TypeUnsafeWalletRpc} {
		s.Run(typ, func() {
			s.SetupTest()
			s.fake.termsErr = activityErr(typ)
			s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

			s.Equal(typ, s.failure().Type())
			s.Equal(1, s.fake.count("CheckTradeTerms"), "not retried")
			s.Zero(s.fake.setupStarted)
		})
	}
}

func (s *tradeSuite) TestSetupFailureFailsTheTrade() {
	s.fake.setupErr = activityErr(escrow.TypeVerificationFailed)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TypeVerificationFailed, s.failure().Type())
	s.Zero(s.fake.count("CheckDeposit"))
}

func (s *tradeSuite) TestCancelWhileAwaitingDeposit() {
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.True(s.env.IsWorkflowCompleted())
	s.Error(s.env.GetWorkflowError())
	st := s.query()
	s.Equal(escrow.TradeFailed, st.State)
	s.Equal(escrow.TypeCancelled, st.ReasonType)
	s.Empty(s.payoutCalls())
}

func (s *tradeSuite) TestUnconfirmedPayoutFailsBounded() {
	s.fake.payoutStuck = true
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TypePayoutUnconfirmed, s.failure().Type())
	s.Equal(MaxPayoutChecks, s.fake.count("CheckPayoutTx"))
	st := s.query()
	s.Equal(escrow.TradeFailed, st.State)
	s.Equal("payout-hash", st.Payout.TxHash, "the status keeps the hash for the operator")
}
