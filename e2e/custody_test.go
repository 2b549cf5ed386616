package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/participant"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

// custodyEnv is a Temporal dev server, an in-process worker whose history
// is encrypted by the payload codec, and a client with the same codec (the
// participants' and the starter's).
type custodyEnv struct {
	tp        *testenv.Temporal
	walletDir string
	c         client.Client // with the codec
	raw       client.Client // without: sees history as stored
	sc        *starter.Client
}

func startCustodyEnv(t *testing.T) *custodyEnv {
	t.Helper()
	keys, err := codec.NewKey("k1")
	require.NoError(t, err)
	cd, err := codec.ParseKeys(keys)
	require.NoError(t, err)
	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	inProcessWorker(t, tp.HostPort, walletDir, 3, func(cfg *worker.Config) { cfg.Codec.Keys = keys })
	c, err := client.Dial(client.Options{HostPort: tp.HostPort, Namespace: tp.Namespace, DataConverter: cd.DataConverter()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return &custodyEnv{tp: tp, walletDir: walletDir, c: c, raw: tp.Client(t), sc: starter.New(c)}
}

// external returns the setup input of escrowID with the roles of dirs
// external, each with the public key of the participant in its dir.
func external(t *testing.T, escrowID string, dirs map[escrow.Role]string) escrow.SetupInput {
	t.Helper()
	in := escrow.SetupInput{EscrowID: escrowID, Custody: map[escrow.Role]escrow.Custody{},
		Participants: map[escrow.Role]escrow.Participant{}}
	for role, dir := range dirs {
		pub, err := participant.PublicKey(dir)
		require.NoError(t, err)
		in.Custody[role] = escrow.CustodyExternal
		in.Participants[role] = escrow.Participant{PublicKey: pub}
	}
	return in
}

type participantRun struct {
	res participant.Result
	err error
}

// runParticipant runs a participant in the background; the returned
// channel yields its outcome.
func (e *custodyEnv) runParticipant(ctx context.Context, t *testing.T, escrowID string, role escrow.Role, dir string,
	tweak ...func(*participant.Config)) <-chan participantRun {
	t.Helper()
	done := make(chan participantRun, 1)
	cfg := participant.Config{EscrowID: escrowID, Role: string(role), Dir: dir, Temporal: e.c,
		WalletRPCBinary: testenv.RequireBinary(t, "monero-wallet-rpc")}
	for _, f := range tweak {
		f(&cfg)
	}
	go func() {
		res, err := participant.Run(ctx, cfg)
		done <- participantRun{res, err}
	}()
	return done
}

// knowing gives a participant its peer's public key (the peer's dir).
func knowing(t *testing.T, peer escrow.Role, dir string) func(*participant.Config) {
	pub, err := participant.PublicKey(dir)
	require.NoError(t, err)
	return func(c *participant.Config) { c.PeerKeys = map[string]string{string(peer): pub} }
}

func wait(t *testing.T, ch <-chan participantRun, what string) participantRun {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s did not end within 5 minutes", what)
		return participantRun{}
	}
}

// history returns escrowID's history as stored by the server.
func (e *custodyEnv) history(t *testing.T, escrowID string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := e.raw.GetWorkflowHistory(context.Background(), escrow.WorkflowID(escrowID), "", false,
		enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events = append(events, ev)
	}
	return events
}

func countEvents(events []*historypb.HistoryEvent, typ enumspb.EventType) int {
	n := 0
	for _, ev := range events {
		if ev.GetEventType() == typ {
			n++
		}
	}
	return n
}

// TestExternalCustody sets up escrows whose buyer and vendor keep their
// own wallets (participant.Run, each with its own dir and wallet-rpc) on
// the real Temporal dev server and real wallet-rpc processes.
func TestExternalCustody(t *testing.T) {
	e := startCustodyEnv(t)
	ctx := context.Background()

	t.Run("buyer and vendor external", func(t *testing.T) {
		dirs := map[escrow.Role]string{escrow.Buyer: t.TempDir(), escrow.Vendor: t.TempDir()}
		started := time.Now()
		_, err := e.sc.StartSetup(ctx, external(t, "ext-1", dirs))
		require.NoError(t, err)
		// Each knows the other's key: it accepts only messages the other signed.
		buyer := e.runParticipant(ctx, t, "ext-1", escrow.Buyer, dirs[escrow.Buyer], knowing(t, escrow.Vendor, dirs[escrow.Vendor]))
		vendor := e.runParticipant(ctx, t, "ext-1", escrow.Vendor, dirs[escrow.Vendor], knowing(t, escrow.Buyer, dirs[escrow.Buyer]))
		res, err := e.sc.Wait(ctx, "ext-1")
		require.NoError(t, err)
		externalTook := time.Since(started)
		b, v := wait(t, buyer, "buyer"), wait(t, vendor, "vendor")
		require.NoError(t, b.err)
		require.NoError(t, v.err)

		// All three report the same address: the result (from the
		// arbiter's wallet and the participants' reports) and each
		// participant's own wallet.
		require.NotEmpty(t, res.MultisigAddress)
		require.Equal(t, res.MultisigAddress, res.Wallets[escrow.Arbiter].Address)
		require.Equal(t, res.MultisigAddress, b.res.Address)
		require.Equal(t, res.MultisigAddress, v.res.Address)
		require.Equal(t, escrow.WalletResult{Address: res.MultisigAddress, Custody: escrow.CustodyExternal}, res.Wallets[escrow.Buyer])
		require.FileExists(t, b.res.Wallet+".keys")

		// The worker's wallet dir holds the arbiter's files only.
		files := walletFiles(t, e.walletDir, "ext-1")
		require.NotEmpty(t, files)
		for _, f := range files {
			require.True(t, strings.HasPrefix(f, "ext-1.arbiter.") || f == "ext-1.claim", "worker-side file %s", f)
		}
		// No participant password or key exists on the worker's side: not
		// in its wallet dir, not in the history.
		secrets := map[string][]byte{}
		for role, dir := range dirs {
			for _, name := range []string{participant.PasswordFile, participant.KeyFile} {
				s, err := os.ReadFile(filepath.Join(dir, name))
				require.NoError(t, err)
				secrets[string(role)+"/"+name] = []byte(strings.TrimSpace(string(s)))
			}
		}
		require.NoError(t, filepath.Walk(e.walletDir, func(path string, info os.FileInfo, err error) error {
			require.NoError(t, err)
			if info.IsDir() {
				return nil
			}
			content, err := os.ReadFile(path)
			require.NoError(t, err)
			for name, s := range secrets {
				require.NotContains(t, string(content), string(s), "%s found in %s", name, path)
			}
			return nil
		}))
		events := e.history(t, "ext-1")
		raw, err := json.Marshal(events)
		require.NoError(t, err)
		for name, s := range secrets {
			require.False(t, strings.Contains(string(raw), string(s)), "%s in history", name)
		}
		// The round messages are in history only encrypted.
		require.Equal(t, 8, countEvents(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
		for role, dir := range dirs {
			b, err := os.ReadFile(filepath.Join(dir, participant.StateFile))
			require.NoError(t, err)
			var st struct {
				Sent map[string]escrow.SubmitRound `json:"sent"`
			}
			require.NoError(t, json.Unmarshal(b, &st))
			require.Len(t, st.Sent, 4, "%s's messages", role)
			for round, m := range st.Sent {
				if round != string(escrow.RoundExchange2) { // the address is public
					require.False(t, strings.Contains(string(raw), m.Message), "%s's %s message in plaintext in history", role, round)
				}
			}
		}
		for _, ev := range events {
			if a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
				for _, p := range a.GetAcceptedRequest().GetInput().GetArgs().GetPayloads() {
					require.Equal(t, codec.Encoding, string(p.GetMetadata()["encoding"]))
				}
			}
		}

		// The same on hosted wallets, for the latency comparison.
		started = time.Now()
		_, err = e.sc.Start(ctx, "hosted-1")
		require.NoError(t, err)
		_, err = e.sc.Wait(ctx, "hosted-1")
		require.NoError(t, err)
		t.Logf("setup took %s with external buyer and vendor, %s hosted (same server, worker and machine)",
			externalTook.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	})

	t.Run("mixed custody: vendor hosted, buyer external", func(t *testing.T) {
		dir := t.TempDir()
		_, err := e.sc.StartSetup(ctx, external(t, "mix-1", map[escrow.Role]string{escrow.Buyer: dir}))
		require.NoError(t, err)
		buyer := e.runParticipant(ctx, t, "mix-1", escrow.Buyer, dir)
		res, err := e.sc.Wait(ctx, "mix-1")
		require.NoError(t, err)
		b := wait(t, buyer, "buyer")
		require.NoError(t, b.err)
		require.Equal(t, res.MultisigAddress, b.res.Address)
		require.Equal(t, res.MultisigAddress, res.Wallets[escrow.Vendor].Address)
		require.NotEmpty(t, res.Wallets[escrow.Vendor].Wallet, "the vendor's wallet is hosted")
		for _, f := range walletFiles(t, e.walletDir, "mix-1") {
			require.False(t, strings.HasPrefix(f, "mix-1.buyer."), "worker-side buyer file %s", f)
		}
	})

	t.Run("participant restarted mid-round", func(t *testing.T) {
		dirs := map[escrow.Role]string{escrow.Buyer: t.TempDir(), escrow.Vendor: t.TempDir()}
		_, err := e.sc.StartSetup(ctx, external(t, "restart-1", dirs))
		require.NoError(t, err)
		// The vendor holds back its MAKING message until the buyer, which
		// sent its own and waits for the answer, has been restarted.
		release := make(chan struct{})
		vendor := e.runParticipant(ctx, t, "restart-1", escrow.Vendor, dirs[escrow.Vendor], func(c *participant.Config) {
			c.BeforeRound = func(ctx context.Context, round string) error {
				if round == string(escrow.RoundMake) {
					select {
					case <-release:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}
		})
		bctx, stopBuyer := context.WithCancel(ctx)
		first := e.runParticipant(bctx, t, "restart-1", escrow.Buyer, dirs[escrow.Buyer])
		testenv.WaitFor(t, 3*time.Minute, "the buyer's MAKING message sent", func() bool {
			b, _ := os.ReadFile(filepath.Join(dirs[escrow.Buyer], participant.StateFile))
			return strings.Contains(string(b), `"MAKING": {`)
		})
		stopBuyer()
		r := wait(t, first, "stopped buyer")
		require.ErrorIs(t, r.err, context.Canceled)

		second := e.runParticipant(ctx, t, "restart-1", escrow.Buyer, dirs[escrow.Buyer])
		close(release)
		res, err := e.sc.Wait(ctx, "restart-1")
		require.NoError(t, err)
		b, v := wait(t, second, "restarted buyer"), wait(t, vendor, "vendor")
		require.NoError(t, b.err)
		require.NoError(t, v.err)
		require.Equal(t, res.MultisigAddress, b.res.Address)
		require.Equal(t, res.MultisigAddress, v.res.Address)
		// The buyer's MAKING message was accepted once: the resend was the
		// same update.
		require.Equal(t, 8, countEvents(e.history(t, "restart-1"), enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
	})

	t.Run("rejections leave no trace; a participant that disappears times out", func(t *testing.T) {
		const id = "rej-1"
		_, buyerKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		_, forger, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		_, vendorKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		in := escrow.SetupInput{EscrowID: id,
			Custody: map[escrow.Role]escrow.Custody{escrow.Buyer: escrow.CustodyExternal, escrow.Vendor: escrow.CustodyExternal},
			Participants: map[escrow.Role]escrow.Participant{
				escrow.Buyer:  {PublicKey: hexKey(buyerKey)},
				escrow.Vendor: {PublicKey: hexKey(vendorKey)},
			},
			ParticipantDeadline: "40s",
		}
		_, err = e.sc.StartSetup(ctx, in)
		require.NoError(t, err)
		good := "MultisigxV2R1" + strings.Repeat("abc", 20)
		sign := func(key ed25519.PrivateKey, role, round, message string) escrow.SubmitRound {
			m := escrow.SubmitRound{Role: role, Round: round, Message: message}
			escrow.Sign(key, id, &m)
			return m
		}
		forged := sign(forger, "buyer", "PREPARING", good)
		tests := []struct {
			name string
			give escrow.SubmitRound
			want string
		}{
			{"unknown role", sign(buyerKey, "mallory", "PREPARING", good), escrow.TypeNotExternalRole},
			{"hosted role", sign(buyerKey, "arbiter", "PREPARING", good), escrow.TypeNotExternalRole},
			{"not the current round", sign(buyerKey, "buyer", "MAKING", good), escrow.TypeWrongRound},
			{"forged signature", forged, escrow.TypeBadSignature},
			{"malformed", sign(buyerKey, "buyer", "PREPARING", "not a multisig message"), escrow.TypeMalformedMessage},
			{"oversized", sign(buyerKey, "buyer", "PREPARING", "Multisig"+strings.Repeat("a", escrow.MaxRoundMessageBytes)), escrow.TypeMalformedMessage},
		}
		send := func(updateID string, m escrow.SubmitRound, stage client.WorkflowUpdateStage) error {
			h, err := e.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{UpdateID: updateID,
				WorkflowID: escrow.WorkflowID(id), UpdateName: escrow.SubmitRoundUpdate, Args: []any{m}, WaitForStage: stage})
			if err != nil {
				return err
			}
			if stage == client.WorkflowUpdateStageCompleted {
				return h.Get(ctx, nil)
			}
			return nil
		}
		for _, tt := range tests {
			err := send(tt.name, tt.give, client.WorkflowUpdateStageCompleted)
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%s: %v", tt.name, err)
			require.Equal(t, tt.want, appErr.Type(), "%s: %v", tt.name, err)
		}
		// The buyer's good first message is accepted (it then waits for the
		// vendor), a replay of it under another update id is not.
		require.NoError(t, send("good", sign(buyerKey, "buyer", "PREPARING", good), client.WorkflowUpdateStageAccepted))
		err = send("replay", sign(buyerKey, "buyer", "PREPARING", good), client.WorkflowUpdateStageCompleted)
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), "%v", err)
		require.Equal(t, escrow.TypeReplayedMessage, appErr.Type())

		// The vendor never sends: the escrow fails ParticipantTimeout.
		_, err = e.sc.Wait(ctx, id)
		var failed *starter.EscrowFailedError
		require.True(t, errors.As(err, &failed), "%v", err)
		require.Equal(t, escrow.TypeParticipantTimeout, failed.Type)
		st, err := e.sc.Status(ctx, id)
		require.NoError(t, err)
		require.Equal(t, escrow.StateFailed, st.State)
		require.Equal(t, escrow.TypeParticipantTimeout, st.ReasonType)
		_, err = os.Stat(filepath.Join(e.walletDir, id+".parked.json"))
		require.NoError(t, err, "the hosted arbiter's files are parked")

		// Nothing of the rejected updates is in history: one accepted
		// update (the good one), no rejection.
		events := e.history(t, id)
		require.Equal(t, 1, countEvents(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
		require.Equal(t, 0, countEvents(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED))
		require.Equal(t, 1, countEvents(events, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED),
			"the good update answered with the failure")
	})
}

func hexKey(k ed25519.PrivateKey) string { return hex.EncodeToString(k.Public().(ed25519.PublicKey)) }
