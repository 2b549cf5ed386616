package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

// exchangeCalls returns the export and import calls made so far.
func (f *fakeChain) exchangeCalls() []string {
	var out []string
	for _, c := range f.calls {
		if c[:6] == "Export" || c[:6] == "Import" {
			out = append(out, c)
		}
	}
	return out
}

func (s *tradeSuite) TestReleaseSignsWithTheExchangePreparedAtFunded() {
	var beforeRelease []string
	s.deposit(time.Hour, tradeAmount)
	s.at(2*time.Hour-time.Minute, func(f *fakeChain) { beforeRelease = f.exchangeCalls() })
	rel := s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.ElementsMatch([]string{"ExportMultisig/buyer", "ExportMultisig/vendor", "ImportMultisig/buyer", "ImportMultisig/vendor"},
		beforeRelease, "buyer and vendor exchanged while the trade waited for its decision")
	s.ElementsMatch(beforeRelease, s.fake.exchangeCalls(), "the release exchanged nothing more")
	s.Equal([]string{"CreatePayout/buyer", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
	s.Require().True(rel.done)
	s.NoError(rel.err)
	s.Equal(escrow.TradeReleasing, rel.status.State)
}

func (s *tradeSuite) TestRefundSignsWithTheExchangePreparedAtFunded() {
	var beforeRefund []string
	s.deposit(time.Hour, tradeAmount)
	s.at(2*time.Hour-time.Minute, func(f *fakeChain) { beforeRefund = f.exchangeCalls() })
	s.update(2*time.Hour, escrow.UpdateRefund, escrow.Decision{By: "vendor"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Len(beforeRefund, 4, "one exchange, at FUNDED")
	s.Equal(beforeRefund, s.fake.exchangeCalls(), "and none after")
	s.Equal([]string{"CreatePayout/vendor", "SignPayout/buyer", "SubmitPayout/buyer"}, s.payoutCalls())
}

// A deposit that grew after the exchange (an excess the buyer gets back)
// is in outputs the exchanged infos do not cover: the payout exchanges
// afresh.
func (s *tradeSuite) TestDepositGrownAfterFundedExchangesAgain() {
	s.deposit(time.Hour, tradeAmount)
	s.at(90*time.Minute, func(f *fakeChain) { f.received, f.unlocked = tradeAmount+500, tradeAmount+500 })
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(2, s.fake.count("ExportMultisig/buyer"))
	s.Equal(2, s.fake.count("ExportMultisig/vendor"))
	s.Equal(2, s.fake.count("ImportMultisig/buyer"))
	s.Equal(2, s.fake.count("ImportMultisig/vendor"))
	s.Len(s.fake.plans, 1)
	s.Equal(uint64(tradeAmount+500), s.fake.plans[0].TotalAtomic, "the payout plans with the whole deposit")
}

// A dispute is signed by the arbiter and the larger share's party: they
// exchange when the arbiter has decided, whatever buyer and vendor did.
func (s *tradeSuite) TestResolveExchangesWithTheArbiter() {
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "buyer", Reason: "late"})
	s.update(3*time.Hour, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(7000)})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal(1, s.fake.count("ExportMultisig/buyer"))
	s.Equal(2, s.fake.count("ExportMultisig/vendor"))
	s.Equal(1, s.fake.count("ExportMultisig/arbiter"))
	s.Equal(1, s.fake.count("ImportMultisig/arbiter"))
	s.Equal([]string{"CreatePayout/arbiter", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
}

// An exchange at FUNDED that fails is not the trade's failure: the payout
// exchanges as it would have without one.
func (s *tradeSuite) TestFailedPreparedExchangeIsRedoneByThePayout() {
	s.fake.exportErrs = []error{temporal.NewNonRetryableApplicationError("test: wallet gone", "TestFault", nil)}
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.input())

	s.Equal(escrow.TradePaidOut, s.result().State)
	s.Equal(2, s.fake.count("ExportMultisig/buyer"))
	s.Equal(2, s.fake.count("ExportMultisig/vendor"))
	s.Equal([]string{"CreatePayout/buyer", "SignPayout/vendor", "SubmitPayout/vendor"}, s.payoutCalls())
}
