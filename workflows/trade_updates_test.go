package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

func (s *tradeSuite) TestValidatorsRejectWithoutATrace() {
	bad := map[string]*updateResult{}
	s.deposit(time.Hour, tradeAmount+feeBudget)
	// Before FUNDED.
	bad["release before FUNDED"] = s.update(30*time.Minute, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	bad["dispute before FUNDED"] = s.update(30*time.Minute+time.Second, escrow.UpdateDispute, escrow.Decision{By: "buyer"})
	bad["bad txid"] = s.update(30*time.Minute+2*time.Second, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: "xyz", TxKey: txKey})
	bad["bad tx key"] = s.update(30*time.Minute+3*time.Second, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: "k"})
	// FUNDED.
	bad["release by vendor"] = s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "vendor"})
	bad["refund by buyer"] = s.update(2*time.Hour+time.Second, escrow.UpdateRefund, escrow.Decision{By: "buyer"})
	bad["dispute by arbiter"] = s.update(2*time.Hour+2*time.Second, escrow.UpdateDispute, escrow.Decision{By: "arbiter"})
	bad["resolve without dispute"] = s.update(2*time.Hour+3*time.Second, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(5000)})
	bad["deposit after FUNDED"] = s.update(2*time.Hour+4*time.Second, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: txKey})
	dispute := s.update(3*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "vendor", Reason: "unpaid"})
	// DISPUTED.
	bad["release after dispute"] = s.update(4*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	bad["second dispute"] = s.update(4*time.Hour+time.Second, escrow.UpdateDispute, escrow.Decision{By: "buyer", Reason: "other"})
	bad["share above 10000"] = s.update(4*time.Hour+2*time.Second, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(10001)})
	bad["negative share"] = s.update(4*time.Hour+3*time.Second, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(-1)})
	bad["no share"] = s.update(4*time.Hour+4*time.Second, escrow.UpdateResolve, escrow.Decision{By: "arbiter"})
	bad["resolve by vendor"] = s.update(4*time.Hour+5*time.Second, escrow.UpdateResolve, escrow.Decision{By: "vendor", VendorShareBps: share(10000)})
	resolve := s.update(5*time.Hour, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(6000)})
	// RESOLVING: a second decision.
	bad["second resolve"] = s.update(5*time.Hour+time.Second, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(0)})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	for name, r := range bad {
		s.False(r.accepted, name)
		var appErr *temporal.ApplicationError
		if s.ErrorAs(r.rejected, &appErr, name) {
			s.Equal(escrow.TypeUpdateRejected, appErr.Type(), name)
		}
	}
	s.NoError(dispute.err)
	s.NoError(resolve.err)
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal("unpaid", st.Dispute)
	s.Require().Len(s.fake.plans, 1)
	s.Equal(escrow.PayoutResolve, s.fake.plans[0].Kind)
	s.Equal([]escrow.PayoutOutput{{Address: "escrow.Vendor", AmountAtomic: 600}, {Address: "escrow.Buyer", AmountAtomic: 400}}, st.Payout.Outputs)
	s.Equal([]string{"CreatePayout/arbiter", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
}

func (s *tradeSuite) TestSecondDecisionIsRejected() {
	s.deposit(time.Hour, tradeAmount)
	rel := s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	ref := s.update(2*time.Hour+time.Millisecond, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.NoError(rel.err)
	s.False(ref.accepted)
	s.Error(ref.rejected)
	s.Equal(escrow.PayoutRelease, st.Payout.Kind)
}

func (s *tradeSuite) TestLongDisputeReasonIsRejected() {
	s.deposit(time.Hour, tradeAmount)
	long := make([]byte, escrow.MaxDisputeReason+1)
	for i := range long {
		long[i] = 'x'
	}
	dis := s.update(2*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "buyer", Reason: string(long)})
	s.update(3*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.False(dis.accepted)
	s.Error(dis.rejected)
}

func (s *tradeSuite) TestAnnouncementsAreBounded() {
	var last *updateResult
	for i := range escrow.MaxAnnouncements + 1 {
		last = s.update(time.Duration(i+1)*time.Minute, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: txKey})
	}
	s.deposit(2*time.Hour, tradeAmount)
	s.update(3*time.Hour, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.False(last.accepted)
	s.ErrorContains(last.rejected, "deposit announcements")
	s.Equal(1+escrow.MaxAnnouncements, countAnnounced(s.fake.checks)+1)
}

// countAnnounced counts the checks made right after an announcement.
func countAnnounced(checks []activities.DepositCheckInput) int {
	n := 0
	for _, c := range checks {
		if c.Announced != nil && !c.Scan {
			n++
		}
	}
	return n
}

func (s *tradeSuite) TestAnnouncementIsLowerCased() {
	s.deposit(time.Minute, tradeAmount)
	upper := strings.ToUpper(txKey)
	dep := s.update(2*time.Minute, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: strings.ToUpper(txid), TxKey: upper})
	s.update(time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.True(dep.accepted)
	s.Equal(1, countAnnounced(s.fake.checks))
	for _, c := range s.fake.checks {
		if c.Announced != nil {
			s.Equal(escrow.DepositAnnouncement{TxID: txid, TxKey: txKey}, *c.Announced)
		}
	}
}

func (s *tradeSuite) TestAnnouncementTheWorkerRefusesIsDropped() {
	s.fake.checkErr = activityErr(escrow.TypeInvalidInput)
	dep := s.update(time.Minute, escrow.UpdateDeposit, escrow.DepositAnnouncement{TxID: txid, TxKey: txKey})
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State, "the trade goes on")
	s.ErrorContains(dep.err, "does not prove a payment")
	s.Equal(1, countAnnounced(s.fake.checks))
}
