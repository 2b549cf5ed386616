package workflows

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/escrowflow/escrowflow/escrow"
)

// addr95 is the fake multisig address every role reports in the custody
// tests: 95 base58 characters, like a standard Monero address.
var addr95 = "9" + strings.Repeat("a", 94)

// simParticipant plays an external participant in the workflow test
// environment: it sends each message round's message once the previous
// round's answer is in, and records the answers.
type simParticipant struct {
	s       *setupSuite
	role    escrow.Role
	key     ed25519.PrivateKey
	escrow  string
	answers map[escrow.Round]escrow.SubmitRoundResult
	errs    []error
	// stopAfter, if set, is the last round it sends (it disappears after).
	stopAfter escrow.Round
}

func newSim(s *setupSuite, escrowID string, role escrow.Role) *simParticipant {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	s.Require().NoError(err)
	return &simParticipant{s: s, role: role, key: key, escrow: escrowID, answers: map[escrow.Round]escrow.SubmitRoundResult{}}
}

func (p *simParticipant) publicKey() string {
	return hex.EncodeToString(p.key.Public().(ed25519.PublicKey))
}

func (p *simParticipant) message(r escrow.Round) string {
	if r == escrow.RoundExchange2 {
		return addr95
	}
	return msg(string(r), string(p.role))
}

func (p *simParticipant) signed(r escrow.Round, message string) escrow.SubmitRound {
	m := escrow.SubmitRound{Role: string(p.role), Round: string(r), Message: message}
	escrow.Sign(p.key, p.escrow, &m)
	return m
}

// send sends round ri of messageRounds and, on its answer, the next one.
func (p *simParticipant) send(ri int) {
	r := messageRounds[ri]
	p.s.env.UpdateWorkflow(escrow.SubmitRoundUpdate, string(p.role)+"-"+string(r), &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { p.errs = append(p.errs, err) },
		OnComplete: func(v any, err error) {
			if err != nil {
				p.errs = append(p.errs, err)
				return
			}
			p.answers[r] = v.(escrow.SubmitRoundResult)
			if ri+1 < len(messageRounds) && r != p.stopAfter {
				p.s.env.RegisterDelayedCallback(func() { p.send(ri + 1) }, time.Second)
			}
		},
	}, p.signed(r, p.message(r)))
}

func (s *setupSuite) custodyInput(id string, sims ...*simParticipant) escrow.SetupInput {
	in := escrow.SetupInput{EscrowID: id, Custody: map[escrow.Role]escrow.Custody{}, Participants: map[escrow.Role]escrow.Participant{}}
	for _, p := range sims {
		in.Custody[p.role] = escrow.CustodyExternal
		in.Participants[p.role] = escrow.Participant{PublicKey: p.publicKey()}
	}
	return in
}

func (s *setupSuite) useAddr95() {
	for _, role := range escrow.Roles {
		s.fake.address[string(role)] = addr95
	}
}

func (s *setupSuite) TestExternalBuyerAndVendor() {
	s.mockActivities(0)
	s.useAddr95()
	buyer, vendor := newSim(s, "ext-1", escrow.Buyer), newSim(s, "ext-1", escrow.Vendor)
	s.env.RegisterDelayedCallback(func() { buyer.send(0) }, time.Second)
	s.env.RegisterDelayedCallback(func() { vendor.send(0) }, 3*time.Second)
	s.env.ExecuteWorkflow(EscrowSetup, s.custodyInput("ext-1", buyer, vendor))
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	s.Empty(buyer.errs)
	s.Empty(vendor.errs)

	var res escrow.SetupResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(addr95, res.MultisigAddress)
	s.Equal(escrow.WalletResult{Address: addr95, Custody: escrow.CustodyExternal}, res.Wallets[escrow.Buyer])
	s.Equal(escrow.WalletResult{Address: addr95, Custody: escrow.CustodyExternal}, res.Wallets[escrow.Vendor])
	s.Equal(escrow.WalletResult{Wallet: "snap-arbiter-final", Address: addr95}, res.Wallets[escrow.Arbiter])
	// Every answer holds exactly the two peers' messages of that round.
	for _, p := range []*simParticipant{buyer, vendor} {
		s.Require().Len(p.answers, 4, "%s", p.role)
		for _, r := range messageRounds {
			want := map[string]string{}
			for _, role := range escrow.Roles {
				if role != p.role {
					want[string(role)] = msg(string(r), string(role))
					if r == escrow.RoundExchange2 {
						want[string(role)] = addr95
					}
				}
			}
			got := p.answers[r]
			s.Equal(string(r), got.Round)
			s.Equal(want, got.Peers, "%s %s", p.role, r)
			// The other participant's message comes with its signature.
			peer := map[escrow.Role]*simParticipant{escrow.Buyer: vendor, escrow.Vendor: buyer}[p.role]
			s.Len(got.Signatures, 1, "only the external peer signs")
			s.True(escrow.Verify(peer.key.Public().(ed25519.PublicKey), peer.escrow, escrow.SubmitRound{
				Role: string(peer.role), Round: string(r), Message: got.Peers[string(peer.role)],
				Signature: got.Signatures[string(peer.role)]}), "%s %s: the peer's signature", p.role, r)
		}
	}
	// Only the arbiter's wallet ran on the worker; only its files are kept.
	for key, n := range s.fake.calls {
		s.True(strings.HasSuffix(key, "/arbiter"), "%s ran %d times on the worker", key, n)
	}
	s.Len(s.fake.calls, 6)
	s.Require().Len(s.fake.finishes, 1)
	s.Equal([]string{"snap-arbiter-final"}, s.fake.finishes[0].Keep)
	external := 0
	for _, r := range res.Rounds {
		if r.External {
			external++
		}
	}
	s.Equal(8, external, "4 message rounds × 2 participants")
	st := s.status()
	s.Equal(escrow.StateCompleted, st.State)
	s.Equal(escrow.CustodyExternal, st.Roles[escrow.Buyer].Custody)
}

func (s *setupSuite) TestMixedCustodyVendorHosted() {
	s.mockActivities(0)
	s.useAddr95()
	buyer := newSim(s, "mix-1", escrow.Buyer)
	s.env.RegisterDelayedCallback(func() { buyer.send(0) }, time.Second)
	s.env.ExecuteWorkflow(EscrowSetup, s.custodyInput("mix-1", buyer))
	s.Require().NoError(s.env.GetWorkflowError())
	s.Empty(buyer.errs)
	s.Len(buyer.answers, 4)
	s.Equal(map[string]string{"vendor": addr95, "arbiter": addr95}, buyer.answers[escrow.RoundExchange2].Peers)
	s.Equal(1, s.fake.calls[string(escrow.RoundMake)+"/vendor"])
	s.Zero(s.fake.calls[string(escrow.RoundMake)+"/buyer"])
	s.Require().Len(s.fake.finishes, 1)
	s.ElementsMatch([]string{"snap-vendor-final", "snap-arbiter-final"}, s.fake.finishes[0].Keep)
}

// TestSubmitRoundRejections sends each bad update while the escrow waits
// for the buyer's first message; each is rejected with its type, and the
// buyer's good messages that follow are still accepted (nothing changed).
func (s *setupSuite) TestSubmitRoundRejections() {
	s.mockActivities(0)
	s.useAddr95()
	buyer, vendor := newSim(s, "rej-1", escrow.Buyer), newSim(s, "rej-1", escrow.Vendor)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged := buyer.signed(escrow.RoundPrepare, buyer.message(escrow.RoundPrepare))
	escrow.Sign(other, "rej-1", &forged)
	otherEscrow := buyer.signed(escrow.RoundPrepare, buyer.message(escrow.RoundPrepare))
	escrow.Sign(buyer.key, "rej-2", &otherEscrow)
	tampered := buyer.signed(escrow.RoundPrepare, buyer.message(escrow.RoundPrepare))
	tampered.Message += "a"

	tests := []struct {
		name string
		give escrow.SubmitRound
		want string
	}{
		{"unknown role", escrow.SubmitRound{Role: "mallory", Round: string(escrow.RoundPrepare), Message: buyer.message(escrow.RoundPrepare)}, escrow.TypeNotExternalRole},
		{"hosted role", escrow.SubmitRound{Role: "arbiter", Round: string(escrow.RoundPrepare), Message: buyer.message(escrow.RoundPrepare)}, escrow.TypeNotExternalRole},
		{"future round", buyer.signed(escrow.RoundMake, buyer.message(escrow.RoundMake)), escrow.TypeWrongRound},
		{"unknown round", buyer.signed("CREATING", buyer.message(escrow.RoundPrepare)), escrow.TypeWrongRound},
		{"forged signature", forged, escrow.TypeBadSignature},
		{"signature for another escrow", otherEscrow, escrow.TypeBadSignature},
		{"message changed after signing", tampered, escrow.TypeBadSignature},
		{"no signature", escrow.SubmitRound{Role: "buyer", Round: string(escrow.RoundPrepare), Message: buyer.message(escrow.RoundPrepare)}, escrow.TypeBadSignature},
		{"not a multisig message", buyer.signed(escrow.RoundPrepare, "hello world, a message"), escrow.TypeMalformedMessage},
		{"oversized", buyer.signed(escrow.RoundPrepare, "Multisig"+strings.Repeat("a", escrow.MaxRoundMessageBytes)), escrow.TypeMalformedMessage},
	}
	got := map[string]string{}
	send := func(id string, m escrow.SubmitRound, done func()) {
		s.env.UpdateWorkflow(escrow.SubmitRoundUpdate, id, &testsuite.TestUpdateCallback{
			OnAccept: func() { got[id] = "accepted" },
			OnReject: func(err error) {
				var appErr *temporal.ApplicationError
				if errors.As(err, &appErr) {
					got[id] = appErr.Type()
				} else {
					got[id] = err.Error()
				}
			},
			OnComplete: func(any, error) {
				if done != nil {
					done()
				}
			},
		}, m)
	}
	s.env.RegisterDelayedCallback(func() {
		vendor.send(0)
		for _, tt := range tests {
			send(tt.name, tt.give, nil)
		}
		// The vendor's message sent as the buyer's (a copy of a peer's).
		send("copy of a peer", buyer.signed(escrow.RoundPrepare, vendor.message(escrow.RoundPrepare)), nil)
		// Now the buyer's good first message, then a replay of it.
		send("good", buyer.signed(escrow.RoundPrepare, buyer.message(escrow.RoundPrepare)), nil)
		send("replay", buyer.signed(escrow.RoundPrepare, buyer.message(escrow.RoundPrepare)), nil)
	}, time.Second)
	s.env.RegisterDelayedCallback(func() {
		// The arbiter's PREPARING message, now known to the workflow, as
		// the buyer's MAKING message.
		send("copy of the arbiter's", buyer.signed(escrow.RoundMake, msg(string(escrow.RoundPrepare), "arbiter")), nil)
		// The buyer goes on with its real rounds.
		buyer.send(1)
	}, time.Minute)
	s.env.ExecuteWorkflow(EscrowSetup, s.custodyInput("rej-1", buyer, vendor))
	s.Require().NoError(s.env.GetWorkflowError(), "buyer %v, vendor %v, got %v", buyer.errs, vendor.errs, got)
	for _, tt := range tests {
		s.Equal(tt.want, got[tt.name], tt.name)
	}
	s.Equal("accepted", got["good"])
	s.Equal(escrow.TypeReplayedMessage, got["replay"])
	s.Equal(escrow.TypeReplayedMessage, got["copy of a peer"])
	s.Equal(escrow.TypeReplayedMessage, got["copy of the arbiter's"])
	s.Empty(buyer.errs)
	s.Empty(vendor.errs)
}

func (s *setupSuite) TestParticipantTimeout() {
	s.mockActivities(0)
	s.useAddr95()
	buyer, vendor := newSim(s, "gone-1", escrow.Buyer), newSim(s, "gone-1", escrow.Vendor)
	vendor.stopAfter = escrow.RoundMake // then it disappears
	s.env.RegisterDelayedCallback(func() { buyer.send(0); vendor.send(0) }, time.Second)
	in := s.custodyInput("gone-1", buyer, vendor)
	in.ParticipantDeadline = "5m"
	s.env.ExecuteWorkflow(EscrowSetup, in)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr), "%v", s.env.GetWorkflowError())
	s.Equal(escrow.TypeParticipantTimeout, appErr.Type())
	s.Contains(appErr.Error(), "no EXCHANGING_1 message from vendor within 5m0s")
	st := s.status()
	s.Equal(escrow.StateFailed, st.State)
	s.Equal(escrow.TypeParticipantTimeout, st.ReasonType)
	s.Equal("failed", st.Roles[escrow.Vendor].Step)
	// The buyer's waiting EXCHANGING_1 update answered with the failure.
	s.Require().Len(buyer.errs, 1)
	s.Require().True(errors.As(buyer.errs[0], &appErr))
	s.Equal(escrow.TypeParticipantTimeout, appErr.Type())
	s.Len(buyer.answers, 2)
	s.Require().Len(s.fake.finishes, 1)
	s.Equal(escrow.OutcomeFailed, s.fake.finishes[0].Outcome)
	s.Equal(escrow.TypeParticipantTimeout, s.fake.finishes[0].ReasonType)
}

func (s *setupSuite) TestBadCustodyInput() {
	key := strings.Repeat("ab", 32)
	ext := map[escrow.Role]escrow.Custody{escrow.Buyer: escrow.CustodyExternal}
	tests := []struct {
		name string
		give escrow.SetupInput
		want string
	}{
		{"external arbiter", escrow.SetupInput{Custody: map[escrow.Role]escrow.Custody{escrow.Arbiter: escrow.CustodyExternal},
			Participants: map[escrow.Role]escrow.Participant{escrow.Arbiter: {PublicKey: key}}}, "custody of the arbiter"},
		{"unknown role", escrow.SetupInput{Custody: map[escrow.Role]escrow.Custody{"mallory": escrow.CustodyExternal}}, `unknown role "mallory"`},
		{"unknown mode", escrow.SetupInput{Custody: map[escrow.Role]escrow.Custody{escrow.Buyer: "self"}}, `custody of buyer is "self"`},
		{"missing key", escrow.SetupInput{Custody: ext}, "participants.buyer.publicKey is missing"},
		{"short key", escrow.SetupInput{Custody: ext, Participants: map[escrow.Role]escrow.Participant{escrow.Buyer: {PublicKey: "abcd"}}}, "is not 32 hex-encoded bytes"},
		{"key not hex", escrow.SetupInput{Custody: ext, Participants: map[escrow.Role]escrow.Participant{escrow.Buyer: {PublicKey: strings.Repeat("zz", 32)}}}, "is not 32 hex-encoded bytes"},
		{"key of a hosted role", escrow.SetupInput{Custody: ext, Participants: map[escrow.Role]escrow.Participant{
			escrow.Buyer: {PublicKey: key}, escrow.Vendor: {PublicKey: key}}}, `"vendor" is not an external role`},
		{"bad deadline", escrow.SetupInput{Custody: ext, Participants: map[escrow.Role]escrow.Participant{escrow.Buyer: {PublicKey: key}},
			ParticipantDeadline: "-1m"}, "participantDeadline"},
	}
	for _, tt := range tests {
		s.Run(tt.name, func() {
			s.SetupTest()
			s.mockActivities(0)
			tt.give.EscrowID = "bad-1"
			s.env.ExecuteWorkflow(EscrowSetup, tt.give)
			var appErr *temporal.ApplicationError
			s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
			s.Equal(escrow.TypeInvalidInput, appErr.Type())
			s.Contains(appErr.Error(), tt.want)
			s.Empty(s.fake.calls, "no wallet touched")
			s.Empty(s.fake.finishes, "nothing claimed")
		})
	}
}

// TestHostedFailureEndsTheWaitForParticipants: a hosted role's failure in a
// round ends the round at once with that failure, not with a
// ParticipantTimeout after the deadline.
func (s *setupSuite) TestHostedFailureEndsTheWaitForParticipants() {
	s.fake.failOnce[string(escrow.RoundPrepare)+"/arbiter"] = temporal.NewNonRetryableApplicationError(
		"wallet refused", escrow.TypeWalletRejected, nil)
	s.mockActivities(0)
	buyer := newSim(s, "hf-1", escrow.Buyer) // never sends
	s.env.ExecuteWorkflow(EscrowSetup, s.custodyInput("hf-1", buyer))
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &appErr))
	s.Equal(escrow.TypeWalletRejected, appErr.Type())
	st := s.status()
	s.Equal(escrow.TypeWalletRejected, st.ReasonType)
	s.Equal("waiting", st.Roles[escrow.Buyer].Step, "the buyer was waited for, not timed out")
}
