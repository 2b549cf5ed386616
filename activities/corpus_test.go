package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// This file is the activity-level part of the bad-input corpus: bad peer
// messages for MakeMultisig and ExchangeMultisigKeys. Each must end in a
// non-retryable typed error, either from checkPeers (before any lease or
// wallet call) or from the wallet, and must leave every committed snapshot
// as it was.
//
// The fakes accept any message that passes checkPeers. Where real
// monero-wallet-rpc v0.18 refuses a message (measured on the Debian package;
// pool's TestBadInput covers the same kinds on real processes), the
// case injects the wallet's verbatim answer, so what is tested here is the
// activities' handling of it: classification, the discarded lease, and no
// snapshot committed or changed.
//
// What the activities cannot catch is a role's OWN message in place of a
// peer's: it is a well-formed message of the right round, and real
// wallet-rpc accepts it (docs/DESIGN.md). Only the workflow can guarantee
// that each role gets exactly its two peers' messages — EscrowSetup.peers,
// checked for every round by workflows TestHappyPath (fakeProtocol refuses
// any other messages). TestCorpusOwnMessageIsTheWorkflowsJob pins that.

// Verbatim monero-wallet-rpc v0.18.0.0 answers to bad kex messages (all
// code -1, WALLET_RPC_ERROR_CODE_UNKNOWN_ERROR).
const (
	msgMakeDecoding      = "Multisig kex msg decoding error."
	msgMakeWrongRound    = "Trying to make multisig with message that has invalid multisig kex round (should be '1')."
	msgExchangeDecoding  = "Error calling exchange_multisig_info: Multisig kex msg decoding error."
	msgExchangeTruncated = "Error calling exchange_multisig_info: Deserializing kex msg failed."
	msgExchangeRound     = "Error calling exchange_multisig_info: Messages don't have the expected kex round number."
)

// corpusStages are one escrow's committed snapshots and messages after each
// round, for the three roles (index as in roles).
type corpusStages struct {
	f                      *fixture
	created, made, ex1     [3]string // snapshots
	ex2                    [3]string
	prep, madeMsg, ex1Msgs [3]string // messages
}

// newCorpusStages runs escrow "e1" through EXCHANGING_2 on fakes.
func newCorpusStages(t *testing.T) *corpusStages {
	t.Helper()
	f := newFixture(t)
	s := &corpusStages{f: f}
	run := func(round string, fn func(context.Context, StepInput) (StepOutput, error), from [3]string, msgs *[3]string) [3]StepOutput {
		return forRoles(t, func(i int) (StepOutput, error) {
			in := StepInput{EscrowID: "e1", Role: roles[i], Round: round, Snapshot: from[i]}
			if msgs != nil {
				in.PeerInfos = peersOf(msgs[:], i)
			}
			return execute(f.acts, runInfo{}, fn, in)
		})
	}
	var none [3]string
	for i, o := range run("CREATING", f.acts.CreateWallet, none, nil) {
		s.created[i] = o.Snapshot
	}
	for i, o := range run("PREPARING", f.acts.PrepareMultisig, s.created, nil) {
		s.prep[i] = o.MultisigInfo
	}
	for i, o := range run("MAKING", f.acts.MakeMultisig, s.created, &s.prep) {
		s.made[i], s.madeMsg[i] = o.Snapshot, o.MultisigInfo
	}
	for i, o := range run("EXCHANGING_1", f.acts.ExchangeMultisigKeys, s.made, &s.madeMsg) {
		s.ex1[i], s.ex1Msgs[i] = o.Snapshot, o.MultisigInfo
	}
	for i, o := range run("EXCHANGING_2", f.acts.ExchangeMultisigKeys, s.ex1, &s.ex1Msgs) {
		s.ex2[i] = o.Snapshot
		require.Equal(t, fakeMultisigAddress, o.Address)
	}
	return s
}

// clone returns the stages over a copy of the wallet dir in a new fixture:
// same files, fresh fake processes holding nothing (every step takes the
// recovery path).
func (s *corpusStages) clone(t *testing.T) *corpusStages {
	t.Helper()
	c := *s
	c.f = newFixture(t)
	for name, content := range dirFiles(t, s.f.dir) {
		require.NoError(t, os.WriteFile(filepath.Join(c.f.dir, name), []byte(content), 0o600))
	}
	return &c
}

// committed returns every committed snapshot of e1 (one with a manifest
// that verifies) with its files, by name.
func (s *corpusStages) committed(t *testing.T) map[string]map[string]string {
	t.Helper()
	names, err := s.f.store.List("e1.")
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for _, n := range names {
		if strings.Contains(n, ".work.") {
			continue
		}
		_, err := s.f.store.Verify(n)
		require.NoError(t, err, "committed snapshot %s verifies", n)
		out[n] = walletFiles(t, s.f.dir, n)
	}
	require.Len(t, out, 4*3, "4 committing rounds × 3 roles")
	return out
}

// corpusCase is one bad input of a per-role step, run for the buyer.
type corpusCase struct {
	name  string
	step  string // "make" or "exchange"
	round string
	// from picks the buyer's input snapshot, peers the peer messages.
	from  func(s *corpusStages) string
	peers func(s *corpusStages) []string
	// walletErr is the wallet's answer, injected into the fake because
	// the fake accepts anything (nil: checkPeers refuses the input, or
	// the fake answers by itself).
	walletErr error
	wantType  string
	// wantWallet: the message reached the wallet call (false: refused
	// before any lease was taken).
	wantWallet bool
}

const oneMiB = 1 << 20

func TestCorpusBadPeerMessages(t *testing.T) {
	created := func(s *corpusStages) string { return s.created[0] }
	made := func(s *corpusStages) string { return s.made[0] }
	ex1 := func(s *corpusStages) string { return s.ex1[0] }
	ex2 := func(s *corpusStages) string { return s.ex2[0] }
	peers := func(msgs func(s *corpusStages) [3]string, edit func(a, b string) []string) func(s *corpusStages) []string {
		return func(s *corpusStages) []string {
			m := msgs(s)
			return edit(m[1], m[2])
		}
	}
	prep := func(s *corpusStages) [3]string { return s.prep }
	madeMsg := func(s *corpusStages) [3]string { return s.madeMsg }
	ex1Msg := func(s *corpusStages) [3]string { return s.ex1Msgs }
	fixed := func(p ...string) func(*corpusStages) []string { return func(*corpusStages) []string { return p } }
	makeErr := func(msg string) error {
		return &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeUnknown, Message: msg}
	}
	exErr := func(msg string) error {
		return &rpcclient.RPCError{Method: "exchange_multisig_keys", Code: rpcclient.CodeUnknown, Message: msg}
	}
	garbage := string([]byte{0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0xff, 0xfe, '{', '"', '}', '\n', 0x7f, 0x80})

	var tests []corpusCase
	// Inputs both steps refuse in checkPeers, before any wallet call.
	for _, st := range []struct {
		step, round string
		from        func(*corpusStages) string
		msgs        func(*corpusStages) [3]string
	}{
		{"make", "MAKING", created, prep},
		{"exchange", "EXCHANGING_1", made, madeMsg},
	} {
		p := func(edit func(a, b string) []string) func(*corpusStages) []string { return peers(st.msgs, edit) }
		for _, c := range []struct {
			name  string
			peers func(*corpusStages) []string
		}{
			{"garbage text", fixed("not a multisig message", "neither is this")},
			{"garbage bytes", p(func(a, b string) []string { return []string{garbage, b} })},
			{"truncated to 6 bytes", p(func(a, b string) []string { return []string{a[:6], b} })},
			{"replayed: one peer's message twice", p(func(a, b string) []string { return []string{a, a} })},
			{"empty", p(func(a, b string) []string { return []string{a, ""} })},
			{"both empty", fixed("", "")},
			{"none", fixed()},
			{"one message (wallet-rpc would make a 2-of-2 wallet)", p(func(a, b string) []string { return []string{a} })},
			{"three messages", p(func(a, b string) []string { return []string{a, b, "MultisigxV2R1third"} })},
			{"oversized: 1 MiB", p(func(a, b string) []string { return []string{a, b[:13] + strings.Repeat("A", oneMiB)} })},
			{"oversized: 64 KiB + 1", p(func(a, b string) []string { return []string{a, b[:13] + strings.Repeat("A", 64<<10+1-13)} })},
			{"non-ASCII prefix", p(func(a, b string) []string { return []string{"Мультисиг" + a[8:], b} })},
			{"NUL inside the prefix", p(func(a, b string) []string { return []string{"Multi\x00sig" + a[8:], b} })},
			{"lower-case prefix", p(func(a, b string) []string { return []string{"multisig" + a[8:], b} })},
			{"leading space", p(func(a, b string) []string { return []string{" " + a, b} })},
		} {
			tests = append(tests, corpusCase{name: c.name, step: st.step, round: st.round, from: st.from, peers: c.peers,
				wantType: escrow.TypeInvalidMultisigMessage})
		}
	}
	// Inputs that pass checkPeers: the wallet refuses them.
	tests = append(tests,
		corpusCase{name: "truncated to half", step: "make", round: "MAKING", from: created,
			peers:     peers(prep, func(a, b string) []string { return []string{a[:len(a)/2], b} }),
			walletErr: makeErr(msgMakeDecoding), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "non-ASCII after the prefix", step: "make", round: "MAKING", from: created,
			peers:     peers(prep, func(a, b string) []string { return []string{"Multisigñ€" + a[10:], b} }),
			walletErr: makeErr(msgMakeDecoding), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "NUL after the prefix", step: "make", round: "MAKING", from: created,
			peers:     peers(prep, func(a, b string) []string { return []string{a[:12] + "\x00" + a[13:], b} }),
			walletErr: makeErr(msgMakeDecoding), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "wrong round: the peers' MAKING messages", step: "make", round: "MAKING", from: created,
			peers:     peers(madeMsg, func(a, b string) []string { return []string{a, b} }),
			walletErr: makeErr(msgMakeWrongRound), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		// Replaying MAKING on the wallet it made multisig: the fake
		// answers ALREADY_MULTISIG by itself, as wallet-rpc does.
		corpusCase{name: "replayed step: MAKING again on the multisig wallet", step: "make", round: "MAKING", from: made,
			peers: peers(prep, func(a, b string) []string { return []string{a, b} }), wantType: escrow.TypeWalletRejected, wantWallet: true},

		corpusCase{name: "truncated to half", step: "exchange", round: "EXCHANGING_1", from: made,
			peers:     peers(madeMsg, func(a, b string) []string { return []string{a[:len(a)/2], b} }),
			walletErr: exErr(msgExchangeTruncated), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "non-ASCII after the prefix", step: "exchange", round: "EXCHANGING_1", from: made,
			peers:     peers(madeMsg, func(a, b string) []string { return []string{"Multisigñ€" + a[10:], b} }),
			walletErr: exErr(msgExchangeDecoding), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "NUL after the prefix", step: "exchange", round: "EXCHANGING_1", from: made,
			peers:     peers(madeMsg, func(a, b string) []string { return []string{a[:12] + "\x00" + a[13:], b} }),
			walletErr: exErr(msgExchangeDecoding), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "replayed: the peers' PREPARING messages", step: "exchange", round: "EXCHANGING_1", from: made,
			peers:     peers(prep, func(a, b string) []string { return []string{a, b} }),
			walletErr: exErr(msgExchangeRound), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "replayed: MAKING messages in round 2", step: "exchange", round: "EXCHANGING_2", from: ex1,
			peers:     peers(madeMsg, func(a, b string) []string { return []string{a, b} }),
			walletErr: exErr(msgExchangeRound), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		corpusCase{name: "wrong round: round-2 messages in round 1", step: "exchange", round: "EXCHANGING_1", from: made,
			peers:     peers(ex1Msg, func(a, b string) []string { return []string{a, b} }),
			walletErr: exErr(msgExchangeRound), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
		// The fake answers these by itself, as wallet-rpc does.
		corpusCase{name: "wrong round: exchange on a wallet that is not multisig", step: "exchange", round: "EXCHANGING_1", from: created,
			peers: peers(madeMsg, func(a, b string) []string { return []string{a, b} }), wantType: escrow.TypeWalletRejected, wantWallet: true},
		corpusCase{name: "replayed step: exchange on the finished wallet", step: "exchange", round: "EXCHANGING_2", from: ex2,
			peers: peers(ex1Msg, func(a, b string) []string { return []string{a, b} }), wantType: escrow.TypeInvalidMultisigMessage, wantWallet: true},
	)

	base := newCorpusStages(t)
	for _, tt := range tests {
		t.Run(tt.step+"/"+tt.name, func(t *testing.T) {
			s := base.clone(t)
			f := s.f
			before := s.committed(t)
			parent := filepath.Dir(f.dir)
			method, fn := "make_multisig", f.acts.MakeMultisig
			if tt.step == "exchange" {
				method, fn = "exchange_multisig_keys", f.acts.ExchangeMultisigKeys
			}
			if tt.walletErr != nil {
				f.world.failNext(method, tt.walletErr)
			}
			calls, events := len(f.world.Calls()), len(f.leaser.Events())
			in := StepInput{EscrowID: "e1", Role: "buyer", Round: tt.round, Snapshot: tt.from(s), PeerInfos: tt.peers(s)}

			_, err := execute(f.acts, runInfo{}, fn, in)

			requireAppError(t, err, tt.wantType, true)
			for _, m := range in.PeerInfos {
				if len(m) >= 12 {
					assert.NotContains(t, err.Error(), m, "the error never quotes a message")
				}
			}
			if tt.wantWallet {
				assert.Contains(t, f.world.Methods(calls), method, "the message reached the wallet")
				assert.Contains(t, f.leaser.Events()[events:], "discard e1/buyer", "the lease is discarded after a wallet error")
			} else {
				assert.Empty(t, f.world.Methods(calls), "no wallet call")
				assert.Empty(t, f.leaser.Events()[events:], "no lease taken")
			}
			f.world.mu.Lock()
			assert.Empty(t, f.world.fail[method], "the injected wallet answer was used")
			f.world.mu.Unlock()

			after := s.committed(t)
			require.Len(t, after, len(before), "no snapshot committed or lost")
			for name, files := range before {
				assertSameFiles(t, files, after[name], "committed snapshot "+name+" unchanged")
			}
			assert.Equal(t, []string{filepath.Base(f.dir)}, dirNames(t, parent), "nothing written beside the wallet dir")
		})
	}
	t.Logf("%d bad peer-message cases", len(tests))
}

// TestCorpusOwnMessageIsTheWorkflowsJob pins the limit of the activity
// checks: a role's own PREPARING message in place of a peer's is distinct
// and well-formed, so it passes checkPeers and reaches the wallet, and real
// wallet-rpc v0.18 accepts it (docs/DESIGN.md, "Measured"). The fakes
// accept it too. The guarantee that it never happens is EscrowSetup's: each
// role gets exactly its two peers' messages (see the file comment).
func TestCorpusOwnMessageIsTheWorkflowsJob(t *testing.T) {
	f := newFixture(t)
	var snaps, prep [3]string
	for i, o := range forRoles(t, func(i int) (StepOutput, error) {
		return execute(f.acts, runInfo{}, f.acts.CreateWallet, StepInput{EscrowID: "e1", Role: roles[i], Round: "CREATING"})
	}) {
		snaps[i] = o.Snapshot
	}
	for i, o := range forRoles(t, func(i int) (StepOutput, error) {
		return execute(f.acts, runInfo{}, f.acts.PrepareMultisig, StepInput{EscrowID: "e1", Role: roles[i], Round: "PREPARING", Snapshot: snaps[i]})
	}) {
		prep[i] = o.MultisigInfo
	}
	own := StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING", Snapshot: snaps[0], PeerInfos: []string{prep[0], prep[1]}}
	require.NoError(t, checkPeers(own), "checkPeers cannot tell a role's own message from a peer's")
	calls := len(f.world.Calls())
	_, err := execute(f.acts, runInfo{}, f.acts.MakeMultisig, own)
	require.NoError(t, err, "accepted, as real wallet-rpc accepts it")
	assert.Contains(t, f.world.Methods(calls), "make_multisig")
}
