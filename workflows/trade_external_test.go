package workflows

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// The participants' keys in these tests.
var (
	buyerKey  = ed25519.NewKeyFromSeed([]byte(strings.Repeat("b", 32)))
	vendorKey = ed25519.NewKeyFromSeed([]byte(strings.Repeat("v", 32)))
)

func pubHex(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }

// externalInput is s.input() with the given roles external.
func (s *tradeSuite) externalInput(roles ...escrow.Role) escrow.TradeInput {
	in := s.input()
	in.Custody, in.Participants = map[escrow.Role]escrow.Custody{}, map[escrow.Role]escrow.Participant{}
	keys := map[escrow.Role]ed25519.PrivateKey{escrow.Buyer: buyerKey, escrow.Vendor: vendorKey}
	for _, r := range roles {
		in.Custody[r] = escrow.CustodyExternal
		in.Participants[r] = escrow.Participant{PublicKey: pubHex(keys[r])}
	}
	return in
}

// mockVerify makes VerifyPayout accept any set but "forged…" ones.
func (s *tradeSuite) mockVerify() {
	f := s.fake
	s.env.OnActivity(a.VerifyPayout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SignPayoutInput) (activities.VerifyPayoutOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.call("VerifyPayout", in.Role)
			if strings.HasPrefix(in.TxSet, "f0f0") {
				return activities.VerifyPayoutOutput{}, temporal.NewNonRetryableApplicationError("pays another address", escrow.TypePayoutMismatch, nil)
			}
			f.txset = in.TxSet
			return activities.VerifyPayoutOutput{FeeAtomic: 12, Outputs: in.Plan.Outputs}, nil
		})
}

// payoutResult is what one payoutRound update produced.
type payoutResult struct {
	rejected error
	err      error
	res      escrow.PayoutRoundResult
	done     bool
}

// payoutMsg is a signed payoutRound message of role (key signs it).
func payoutMsg(key ed25519.PrivateKey, role escrow.Role, step escrow.PayoutStep, attempt int, message string, hashes ...string) escrow.PayoutMessage {
	m := escrow.PayoutMessage{Role: string(role), Round: escrow.PayoutRoundName(step, attempt), Message: message, TxHashes: hashes}
	escrow.SignPayoutMessage(key, "e1", &m)
	return m
}

// send sends m at d; before runs first (to tell the fake chain about it).
func (s *tradeSuite) send(d time.Duration, m escrow.PayoutMessage, before func(f *fakeChain)) *payoutResult {
	r := &payoutResult{}
	s.sent++
	id := fmt.Sprintf("%s-%s-%d", m.Role, m.Round, s.sent)
	s.env.RegisterDelayedCallback(func() {
		if before != nil {
			s.fake.mu.Lock()
			before(s.fake)
			s.fake.mu.Unlock()
		}
		s.env.UpdateWorkflow(escrow.PayoutRoundUpdate, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { r.rejected, r.done = err, true },
			OnComplete: func(v any, err error) {
				r.err, r.done = err, true
				if res, ok := v.(escrow.PayoutRoundResult); ok {
					r.res = res
				}
			},
		}, m)
	}, d)
	return r
}

var (
	buyerInfo  = strings.Repeat("b1", 20)
	vendorInfo = strings.Repeat("c1", 20)
	extTxSet   = strings.Repeat("d1", 20)
	extSigned  = strings.Repeat("e1", 20)
	payoutHash = strings.Repeat("ab", 32)
)

func (s *tradeSuite) TestExternalReleaseIsSignedByTheParticipants() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	var during escrow.TradeStatus
	s.env.RegisterDelayedCallback(func() { during = s.query() }, 150*time.Minute)
	bExp := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	vExp := s.send(4*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, vendorInfo), nil)
	bSet := s.send(5*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, extTxSet), nil)
	vSig := s.send(6*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutSigned, 1, extSigned, payoutHash),
		func(f *fakeChain) { f.signedExternal = extSigned })
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.externalInput(escrow.Buyer, escrow.Vendor))

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(escrow.TradeReleasing, during.State)
	s.Equal(escrow.PayoutStatus{Kind: escrow.PayoutRelease, Creator: escrow.Buyer, Cosigner: escrow.Vendor, Attempt: 1}, during.Payout)
	s.Equal(payoutHash, st.Payout.TxHash)
	s.Equal([]string{"SubmitPayout/arbiter"}, s.payoutCalls(), "the arbiter relays, and signs nothing")
	s.Equal(1, s.fake.count("VerifyPayout/arbiter"), "the arbiter's wallet checks the buyer's set")
	s.Zero(s.fake.count("ExportMultisig"))
	for _, r := range []*payoutResult{bExp, vExp, bSet, vSig} {
		s.True(r.done)
		s.NoError(r.rejected)
		s.NoError(r.err)
	}
	s.Equal(vendorInfo, bExp.res.PeerInfo, "the creator gets the co-signer's info")
	s.Empty(bExp.res.TxSet)
	s.Equal(buyerInfo, vExp.res.PeerInfo)
	s.Equal(extTxSet, vExp.res.TxSet, "the co-signer gets the checked set")
	s.Equal("escrow.Vendor", vExp.res.Plan.SweepTo)
	s.Equal(payoutHash, vSig.res.TxHash)
}

func (s *tradeSuite) TestStaleSignerStartsAnotherAttempt() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	staleFirst := s.send(3*time.Hour+time.Minute, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutStale, 1, "too early"), nil)
	vExp := s.send(4*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, vendorInfo), nil)
	s.send(5*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, extTxSet), nil)
	buyerLate := s.send(5*time.Hour+time.Minute, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutStale, 1, "after its set"), nil)
	// The vendor's wallet says stale data on the checked set: nothing signed.
	stale := s.send(6*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutStale, 1,
		"wallet rpc sign_multisig: This signature was made with stale data (code -35)"), nil)
	lateSig := s.send(6*time.Hour+time.Minute, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutSigned, 1, extSigned, payoutHash), nil)
	var during escrow.TradeStatus
	s.env.RegisterDelayedCallback(func() { during = s.query() }, 6*time.Hour+2*time.Minute)
	// Attempt 2 with fresh infos.
	b2, v2, set2, sig2 := strings.Repeat("b2", 20), strings.Repeat("c2", 20), strings.Repeat("d2", 20), strings.Repeat("e2", 20)
	s.send(7*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 2, b2), nil)
	s.send(7*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 2, v2), nil)
	s.send(8*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 2, set2), nil)
	vSig := s.send(9*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutSigned, 2, sig2, payoutHash),
		func(f *fakeChain) { f.signedExternal = sig2 })
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.externalInput(escrow.Buyer, escrow.Vendor))

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(2, st.Payout.Attempt)
	s.Equal(2, during.Payout.Attempt, "the STALE message ended attempt 1 at once")
	s.requireRejected(staleFirst.rejected, escrow.TypeWrongRound)
	s.requireRejected(buyerLate.rejected, escrow.TypeWrongRound)
	s.NoError(vExp.err)
	s.NoError(stale.rejected)
	s.NoError(stale.err)
	s.Equal(escrow.PayoutRoundName(escrow.PayoutStale, 1), stale.res.Round)
	s.requireRejected(lateSig.rejected, escrow.TypeWrongRound)
	s.NoError(vSig.err)
	s.Equal([]string{"SubmitPayout/arbiter"}, s.payoutCalls(), "one payout, signed in attempt 2")
	s.Equal(2, s.fake.count("VerifyPayout/arbiter"))
}

func (s *tradeSuite) TestStaleCreatorEndsTheCosignersWait() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	bExp := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	vExp := s.send(3*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, vendorInfo), nil)
	// The buyer's transfer finds nothing to spend after its import.
	stale := s.send(4*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutStale, 1, "transfer: No transaction created (code -16)"), nil)
	lateSet := s.send(4*time.Hour+time.Minute, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, extTxSet), nil)
	in := s.externalInput(escrow.Buyer, escrow.Vendor)
	in.PayoutDeadline = "10h"
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, in)

	s.NoError(bExp.err)
	s.NoError(stale.err)
	s.requireFailed(vExp.err, escrow.TypeNoncesSpent, "the co-signer waiting for the set learns the attempt ended")
	s.Contains(vExp.err.Error(), "No transaction created")
	s.requireRejected(lateSet.rejected, escrow.TypeWrongRound)
	s.Zero(s.fake.count("VerifyPayout/arbiter"), "no set was checked")
	s.Equal(escrow.TypeParticipantTimeout, s.failure().Type(), "nobody sent attempt 2's infos")
	s.Contains(s.failure().Message(), "multisig info")
}

func (s *tradeSuite) TestMixedCustodyReleaseIsCoSignedByTheHostedVendor() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	bExp := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo),
		func(f *fakeChain) { f.info["buyer"] = buyerInfo })
	bSet := s.send(4*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, extTxSet), nil)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.externalInput(escrow.Buyer))

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.NoError(bExp.err)
	s.NoError(bSet.err)
	s.Equal("info-vendor-1", bExp.res.PeerInfo)
	s.Equal([]string{"ExportMultisig/vendor", "ImportMultisig/vendor", "VerifyPayout/arbiter", "SignPayout/vendor", "SubmitPayout/vendor"},
		s.fake.callsOf("ExportMultisig", "ImportMultisig", "VerifyPayout", "SignPayout", "SubmitPayout", "CreatePayout"))
}

func (s *tradeSuite) TestDisputeWithExternalCosignerIsCreatedByTheArbiter() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount+feeBudget)
	s.update(2*time.Hour, escrow.UpdateDispute, escrow.Decision{By: "buyer"})
	s.update(3*time.Hour, escrow.UpdateResolve, escrow.Decision{By: "arbiter", VendorShareBps: share(7000)})
	vExp := s.send(4*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, vendorInfo),
		func(f *fakeChain) { f.info["vendor"] = vendorInfo })
	// The buyer is no signer of a 70/30 resolve.
	bExp := s.send(4*time.Hour+time.Minute, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	s.env.RegisterDelayedCallback(func() {
		s.fake.mu.Lock()
		s.fake.signedExternal = extSigned
		s.fake.mu.Unlock()
	}, 5*time.Hour-time.Minute)
	var vSig *payoutResult
	s.env.RegisterDelayedCallback(func() {
		// The co-signer signs the arbiter's set it was given.
		vSig = &payoutResult{}
		m := payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutSigned, 1, extSigned, payoutHash)
		s.env.UpdateWorkflow(escrow.PayoutRoundUpdate, "vsig", &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject:   func(err error) { vSig.rejected = err },
			OnComplete: func(v any, err error) { vSig.err, vSig.done = err, true }}, m)
	}, 5*time.Hour)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.externalInput(escrow.Buyer, escrow.Vendor))

	st := s.result()
	s.Equal(escrow.TradePaidOut, st.State)
	s.Equal(escrow.Arbiter, st.Payout.Creator)
	s.Equal(escrow.Vendor, st.Payout.Cosigner)
	s.NoError(vExp.err)
	s.Equal("info-arbiter-1", vExp.res.PeerInfo)
	s.Equal(s.fake.txset, vExp.res.TxSet, "the arbiter's own set")
	s.requireRejected(bExp.rejected, escrow.TypeWrongRound)
	s.NoError(vSig.rejected)
	s.NoError(vSig.err)
	s.Equal([]string{"ExportMultisig/arbiter", "ImportMultisig/arbiter", "CreatePayout/arbiter", "SubmitPayout/arbiter"},
		s.fake.callsOf("ExportMultisig", "ImportMultisig", "VerifyPayout", "SignPayout", "SubmitPayout", "CreatePayout"))
}

func (s *tradeSuite) TestForgedSetFromAParticipantFailsThePayoutUnsigned() {
	s.mockVerify()
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	vExp := s.send(3*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, vendorInfo), nil)
	bSet := s.send(4*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, strings.Repeat("f0", 20)), nil)
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, s.externalInput(escrow.Buyer, escrow.Vendor))

	s.Equal(escrow.TypePayoutMismatch, s.failure().Type())
	s.Empty(s.payoutCalls(), "nothing signed, nothing submitted")
	s.requireFailed(vExp.err, escrow.TypePayoutMismatch, "the co-signer never sees the set")
	s.requireFailed(bSet.err, escrow.TypePayoutMismatch, "the creator learns why")
}

func (s *tradeSuite) TestMissingExternalSignerTimesOut() {
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	in := s.externalInput(escrow.Buyer, escrow.Vendor)
	in.PayoutDeadline = "6h"
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, in)

	s.Equal(escrow.TypeParticipantTimeout, s.failure().Type())
	s.Contains(s.failure().Message(), "buyer")
	s.Empty(s.payoutCalls())
}

func (s *tradeSuite) TestPayoutRoundValidator() {
	s.mockVerify()
	other := ed25519.NewKeyFromSeed([]byte(strings.Repeat("x", 32)))
	early := s.send(30*time.Minute, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	s.deposit(time.Hour, tradeAmount)
	s.update(2*time.Hour, escrow.UpdateRelease, escrow.Decision{By: "buyer"})
	forged := s.send(3*time.Hour, payoutMsg(other, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	arbiter := s.send(3*time.Hour, payoutMsg(other, escrow.Arbiter, escrow.PayoutExport, 1, buyerInfo), nil)
	attempt := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 2, buyerInfo), nil)
	notHex := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, "Multisig not hex at all"), nil)
	badRound := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, "SWEEP", 1, buyerInfo), nil)
	setFirst := s.send(3*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutTxSet, 1, extTxSet), nil)
	vendorSet := s.send(3*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutTxSet, 1, extTxSet), nil)
	ok := s.send(4*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, buyerInfo), nil)
	again := s.send(5*time.Hour, payoutMsg(buyerKey, escrow.Buyer, escrow.PayoutExport, 1, vendorInfo), nil)
	replay := s.send(5*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutExport, 1, buyerInfo), nil)
	early2 := s.send(5*time.Hour, payoutMsg(vendorKey, escrow.Vendor, escrow.PayoutSigned, 1, extSigned, payoutHash), nil)
	in := s.externalInput(escrow.Buyer, escrow.Vendor)
	in.PayoutDeadline = "10h"
	s.env.ExecuteWorkflow(escrow.TradeWorkflowName, in)

	s.Equal(escrow.TypeParticipantTimeout, s.failure().Type(), "the vendor never sent its info")
	s.requireRejected(early.rejected, escrow.TypeWrongRound)
	s.requireRejected(forged.rejected, escrow.TypeBadSignature)
	s.requireRejected(arbiter.rejected, escrow.TypeNotExternalRole)
	s.requireRejected(attempt.rejected, escrow.TypeWrongRound)
	s.requireRejected(notHex.rejected, escrow.TypeMalformedMessage)
	s.requireRejected(badRound.rejected, escrow.TypeWrongRound)
	s.requireRejected(setFirst.rejected, escrow.TypeWrongRound)
	s.requireRejected(vendorSet.rejected, escrow.TypeWrongRound)
	s.NoError(ok.rejected)
	s.requireFailed(ok.err, escrow.TypeParticipantTimeout, "the accepted message learns that the payout ended")
	s.requireRejected(again.rejected, escrow.TypeReplayedMessage)
	s.requireRejected(replay.rejected, escrow.TypeReplayedMessage)
	s.requireRejected(early2.rejected, escrow.TypeWrongRound)
}

func (s *tradeSuite) requireRejected(err error, typ string) {
	s.T().Helper()
	s.requireFailed(err, typ, "rejected by the validator")
}

func (s *tradeSuite) requireFailed(err error, typ, msg string) {
	s.T().Helper()
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "%s: want %s, got %v", msg, typ, err)
	s.Equal(typ, appErr.Type(), "%s: %v", msg, err)
}

// callsOf returns the recorded calls of the named activities, in order.
func (f *fakeChain) callsOf(names ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		for _, n := range names {
			if strings.HasPrefix(c, n+"/") {
				out = append(out, c)
			}
		}
	}
	return out
}
