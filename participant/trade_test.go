package participant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/regtest"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/internal/workertest"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/walletstore"
	"github.com/escrowflow/escrowflow/worker"
)

const xmr = 1_000_000_000_000

// tradeEnv is a Temporal dev server, a regtest chain with its faucet, an
// in-process worker on that chain whose history is encrypted by the
// payload codec, and clients with and without the codec.
type tradeEnv struct {
	chain  *regtest.Chain
	faucet *regtest.Faucet
	c      client.Client // with the codec: the participants' and the backend's
	raw    client.Client // without: history as stored
	sc     *starter.Client
}

func startTradeEnv(t *testing.T) *tradeEnv {
	t.Helper()
	keys, err := codec.NewKey("k1")
	require.NoError(t, err)
	cd, err := codec.ParseKeys(keys)
	require.NoError(t, err)
	dc := cd.DataConverter()
	if recording() {
		keys, dc = "", codec.Plain() // replay reads the recorded payloads as they are
	}
	tp := testenv.StartTemporal(t)
	chain := regtest.Shared(t)
	e := &tradeEnv{chain: chain, faucet: chain.Faucet(t), raw: tp.Client(t)}

	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = tp.HostPort
	cfg.WalletDir = t.TempDir()
	cfg.PoolSize = 4
	cfg.WalletStock = 0
	cfg.WalletRPCBinary = testenv.RequireBinary(t, "monero-wallet-rpc")
	cfg.MasterSecret = []byte("participant-trade-master-secret-0123456789abcdef")
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Network = "regtest"
	cfg.DaemonAddress = chain.Address
	cfg.TrustedDaemon = true
	cfg.Codec.Keys = keys
	cfg.Codec.InsecurePlaintextHistory = keys == ""
	workertest.Run(t, cfg, testenv.FileLogger(t, "worker", 300))

	e.c, err = client.Dial(client.Options{HostPort: tp.HostPort, Namespace: tp.Namespace, DataConverter: dc})
	require.NoError(t, err)
	t.Cleanup(e.c.Close)
	e.sc = starter.New(e.c)
	return e
}

// extTrade is one trade whose roles in dirs are external participants.
type extTrade struct {
	id            string
	in            escrow.TradeInput
	dirs          map[escrow.Role]string
	vendor, buyer *regtest.Wallet
	done          map[escrow.Role]chan tradeRun
}

type tradeRun struct {
	st       escrow.TradeStatus
	err      error
	restarts int
}

var errCrash = errors.New("test: crashed between a payout's wallet step and its record")

// crashAfter makes a participant crash once right after round's wallet
// step, before the message is recorded.
func crashAfter(round string) func(*TradeConfig) {
	return func(c *TradeConfig) {
		c.afterPayoutStep = func(r string) error {
			if r == round {
				return errCrash
			}
			return nil
		}
	}
}

// loseAnswer makes a participant's wallet answer of its first step of
// kind in the payout get lost, after the wallet took the step (a transport
// error: the participant takes the attempt again without a restart); n
// counts the faults that landed.
func loseAnswer(kind escrow.PayoutStep, n *atomic.Int32) func(*TradeConfig) {
	return func(c *TradeConfig) {
		c.afterPayoutStep = func(r string) error {
			if step, _, _ := escrow.ParsePayoutRound(r); step == kind && n.Load() == 0 {
				n.Add(1)
				return &rpcclient.TransportError{Method: "test", Err: context.DeadlineExceeded}
			}
			return nil
		}
	}
}

// startExtTrade starts a trade of price with fresh vendor and buyer wallets
// on the chain, the roles external, and runs each external participant
// (setup, then the trade) in the background.
func (e *tradeEnv) startExtTrade(t *testing.T, id string, price uint64, roles []escrow.Role, tweak map[escrow.Role]func(*TradeConfig)) *extTrade {
	t.Helper()
	x := &extTrade{id: id, dirs: map[escrow.Role]string{}, done: map[escrow.Role]chan tradeRun{},
		vendor: e.chain.NewWallet(t, id+"-vendor"), buyer: e.chain.NewWallet(t, id+"-buyer")}
	t.Cleanup(x.vendor.Close)
	t.Cleanup(x.buyer.Close)
	x.in = escrow.TradeInput{EscrowID: id, AmountAtomic: price, VendorAddress: x.vendor.Address,
		BuyerRefundAddress: x.buyer.Address, Confirmations: 1, ScanInterval: "3s", DepositTimeout: "30m",
		Custody: map[escrow.Role]escrow.Custody{}, Participants: map[escrow.Role]escrow.Participant{}}
	for _, role := range roles {
		x.dirs[role] = t.TempDir()
		pub, err := PublicKey(x.dirs[role])
		require.NoError(t, err)
		x.in.Custody[role] = escrow.CustodyExternal
		x.in.Participants[role] = escrow.Participant{PublicKey: pub}
	}
	_, err := e.sc.StartTrade(context.Background(), x.in)
	require.NoError(t, err)
	for _, role := range roles {
		pc := e.participantConfig(t, id, role, x.dirs[role])
		pc.Logger = testenv.FileLogger(t, id+"-"+string(role), 100)
		cfg := TradeConfig{Config: pc, PollEvery: time.Second,
			Terms: escrow.PayoutTerms{AmountAtomic: price, VendorAddress: x.vendor.Address, BuyerRefundAddress: x.buyer.Address}}
		if f := tweak[role]; f != nil {
			f(&cfg)
		}
		ch := make(chan tradeRun, 1)
		x.done[role] = ch
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
			defer cancel()
			if _, err := Run(ctx, cfg.Config); err != nil {
				ch <- tradeRun{err: fmt.Errorf("setup: %w", err)}
				return
			}
			st, err := Trade(ctx, cfg)
			restarts := 0
			for errors.Is(err, errCrash) && restarts < 3 {
				// Restarted after a crash mid-payout: the same directory.
				restarts++
				cfg.afterPayoutStep = nil
				st, err = Trade(ctx, cfg)
			}
			ch <- tradeRun{st, err, restarts}
		}()
	}
	return x
}

func (e *tradeEnv) participantConfig(t *testing.T, id string, role escrow.Role, dir string) Config {
	return Config{EscrowID: id, Role: string(role), Dir: dir, Temporal: e.c, Network: "regtest",
		DaemonAddress: e.chain.Address, WalletRPCBinary: testenv.RequireBinary(t, "monero-wallet-rpc"),
		Logger: zap.NewNop()}
}

// waitState polls the trade's status until it is in state (or FAILED).
func (e *tradeEnv) waitState(t *testing.T, id string, state escrow.TradeState) escrow.TradeStatus {
	t.Helper()
	var st escrow.TradeStatus
	testenv.WaitFor(t, 10*time.Minute, fmt.Sprintf("trade %s %s", id, state), func() bool {
		var err error
		st, err = e.sc.TradeStatus(context.Background(), id)
		return err == nil && (st.State == state || st.State == escrow.TradeFailed)
	})
	require.Equal(t, state, st.State, "trade %s: %s (%s)", id, st.Reason, st.ReasonType)
	return st
}

func (x *extTrade) participant(t *testing.T, role escrow.Role) tradeRun {
	t.Helper()
	select {
	case r := <-x.done[role]:
		return r
	case <-time.After(10 * time.Minute):
		t.Fatalf("the %s participant of %s did not end", role, x.id)
		return tradeRun{}
	}
}

// received waits until w shows n confirmed incoming transfers and returns
// their sum.
func received(t *testing.T, w *regtest.Wallet, n int) uint64 {
	t.Helper()
	var sum uint64
	var got int
	testenv.WaitFor(t, 2*time.Minute, "transfers to "+w.Address[:8], func() bool {
		var err error
		sum, got, err = w.ReceivedE(1)
		return err == nil && got >= n
	})
	return sum
}

func requireType(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want a %s application error, got %v", typ, err)
	require.Equal(t, typ, appErr.Type(), "%v", err)
}

// TestExternalTrades runs trades whose buyer and vendor keep their own
// wallets on the real Temporal dev server, real wallet-rpc processes and a
// real regtest chain, four at once: a release signed by the two
// participants, each crashing once mid-payout; a dispute resolved by the arbiter with the vendor; mixed
// custody (buyer external, vendor hosted) refunded; and a buyer that
// creates a set paying another address, which the arbiter's wallet
// refuses (nothing signed) and the honest vendor refuses too.
func TestExternalTrades(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, monerod and monero-wallet-rpc")
	}
	e := startTradeEnv(t)
	e.chain.MineEvery(t, 2*time.Second)
	ctx := context.Background()
	both := []escrow.Role{escrow.Buyer, escrow.Vendor}
	const price, excess = 2 * xmr, xmr / 4
	thief := e.chain.NewWallet(t, "thief")
	t.Cleanup(thief.Close)
	var forgedPlan escrow.PayoutPlan

	// The release's participants crash once each mid-payout: the buyer after
	// its transfer, the vendor after its sign_multisig, both before the
	// message was recorded; restarted, they redo the step and the trade pays
	// once.
	rel := e.startExtTrade(t, "xrel", price, both, map[escrow.Role]func(*TradeConfig){
		escrow.Buyer:  crashAfter(escrow.PayoutRoundName(escrow.PayoutTxSet, 1)),
		escrow.Vendor: crashAfter(escrow.PayoutRoundName(escrow.PayoutSigned, 1)),
	})
	// The dispute's vendor loses the answer of its sign_multisig once and
	// takes the attempt again in the same run: its wallet says stale data,
	// and the vendor asks for another attempt.
	var lost atomic.Int32
	dis := e.startExtTrade(t, "xdis", price, both, map[escrow.Role]func(*TradeConfig){
		escrow.Vendor: loseAnswer(escrow.PayoutSigned, &lost),
	})
	mix := e.startExtTrade(t, "xmix", price, []escrow.Role{escrow.Buyer}, nil)
	forge := e.startExtTrade(t, "xforge", price, both, map[escrow.Role]func(*TradeConfig){
		escrow.Buyer: func(c *TradeConfig) {
			c.tamper = func(p *escrow.PayoutPlan) {
				forgedPlan = *p
				forgedPlan.Outputs = append([]escrow.PayoutOutput(nil), p.Outputs...)
				forgedPlan.Outputs[0].Address = thief.Address
				*p = forgedPlan
			}
		},
	})
	all := []*extTrade{rel, dis, mix, forge}
	for _, x := range all {
		st := e.waitState(t, x.id, escrow.TradeAwaitingDeposit)
		e.faucet.Pay(t, st.MultisigAddress, price+excess)
	}
	for _, x := range all {
		e.waitState(t, x.id, escrow.TradeFunded)
	}
	// A payoutRound before any payout, and one with a forged signature, are
	// rejected and leave nothing in history (counted below).
	buyerKey, err := LoadOrCreateKey(rel.dirs[escrow.Buyer])
	require.NoError(t, err)
	early := escrow.PayoutMessage{Role: "buyer", Round: escrow.PayoutRoundName(escrow.PayoutExport, 1), Message: strings.Repeat("ab", 40)}
	escrow.SignPayoutMessage(buyerKey, "xrel", &early)
	forgedSig := early
	forgedSig.Signature = strings.Repeat("00", 64)
	for _, m := range []escrow.PayoutMessage{early, forgedSig} {
		h, err := e.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: escrow.TradeWorkflowID("xrel"),
			UpdateName: escrow.PayoutRoundUpdate, Args: []any{m}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err == nil {
			err = h.Get(ctx, nil)
		}
		requireType(t, err, escrow.TypeWrongRound)
	}
	_, err = e.sc.Release(ctx, "xrel")
	require.NoError(t, err)
	_, err = e.sc.Dispute(ctx, "xdis", "buyer", "never arrived")
	require.NoError(t, err)
	_, err = e.sc.Resolve(ctx, "xdis", 7000)
	require.NoError(t, err)
	_, err = e.sc.Refund(ctx, "xmix")
	require.NoError(t, err)
	_, err = e.sc.Release(ctx, "xforge")
	require.NoError(t, err)

	t.Run("release signed by the two participants", func(t *testing.T) {
		st := e.waitPaidOut(t, "xrel")
		require.Equal(t, escrow.Buyer, st.Payout.Creator)
		require.Equal(t, escrow.Vendor, st.Payout.Cosigner)
		wantVendor := outputTo(t, st, rel.vendor.Address)
		assert.Equal(t, wantVendor, received(t, rel.vendor, 1), "the vendor's own wallet receives its output")
		assert.Equal(t, uint64(excess), received(t, rel.buyer, 1), "the excess to the buyer")
		for _, role := range both {
			r := rel.participant(t, role)
			require.NoError(t, r.err, role)
			require.Equal(t, escrow.TradePaidOut, r.st.State, role)
			require.Equal(t, 1, r.restarts, "%s crashed once mid-payout and was restarted", role)
		}
		// wallet-rpc 0.18.0.0 does not keep a signature's nonce erasure
		// across close and open, so the restarted vendor signs the same
		// set again; a wallet-rpc that keeps it says stale data, and the
		// vendor's STALE message starts a second attempt.
		assert.LessOrEqual(t, st.Payout.Attempt, 2)
		// The sets and infos went through the history encrypted.
		st2, err := loadState(rel.dirs[escrow.Buyer], "xrel", "buyer")
		require.NoError(t, err)
		info := st2.Payout[escrow.PayoutRoundName(escrow.PayoutExport, 1)].Message
		require.NotEmpty(t, info)
		updates := updatePayloads(t, e, "xrel")
		if st.Payout.Attempt == 1 {
			require.Len(t, updates, 4, "two infos, the set and the signature: no rejected message is in the history")
		}
		for _, p := range updates {
			if recording() {
				break
			}
			require.Equal(t, codec.Encoding, string(p.GetMetadata()["encoding"]), "an update payload in plaintext")
			require.NotContains(t, string(p.GetData()), info[:64])
		}
	})

	t.Run("dispute resolved by the arbiter with one participant", func(t *testing.T) {
		st := e.waitPaidOut(t, "xdis")
		require.Equal(t, escrow.Arbiter, st.Payout.Creator)
		require.Equal(t, escrow.Vendor, st.Payout.Cosigner, "70% to the vendor: the vendor co-signs")
		net := price + excess - st.Payout.FeeAtomic
		gotVendor, gotBuyer := received(t, dis.vendor, 1), received(t, dis.buyer, 1)
		assert.Equal(t, outputTo(t, st, dis.vendor.Address), gotVendor)
		assert.Equal(t, outputTo(t, st, dis.buyer.Address), gotBuyer)
		assert.InDelta(t, 0.7, float64(gotVendor)/float64(gotVendor+gotBuyer), 0.001)
		assert.LessOrEqual(t, gotVendor+gotBuyer, net)
		for _, role := range both {
			r := dis.participant(t, role)
			require.NoError(t, r.err, role)
			require.Zero(t, r.restarts, role)
		}
		require.Equal(t, int32(1), lost.Load(), "the vendor lost one sign_multisig answer")
		// Signing the set again in the same wallet session says stale
		// data: the vendor's STALE message ended attempt 1 unsigned.
		assert.Equal(t, 2, st.Payout.Attempt)
	})

	t.Run("mixed custody refunded", func(t *testing.T) {
		st := e.waitPaidOut(t, "xmix")
		require.Equal(t, escrow.Vendor, st.Payout.Creator, "the hosted vendor creates the refund")
		require.Equal(t, escrow.Buyer, st.Payout.Cosigner, "the external buyer co-signs it")
		assert.Equal(t, price+excess-st.Payout.FeeAtomic, received(t, mix.buyer, 1))
		r := mix.participant(t, escrow.Buyer)
		require.NoError(t, r.err)
	})

	t.Run("a set paying another address is refused", func(t *testing.T) {
		res, err := e.sc.WaitTrade(ctx, "xforge")
		require.Error(t, err, "%+v", res)
		var failed *starter.EscrowFailedError
		require.ErrorAs(t, err, &failed)
		require.Equal(t, escrow.TypePayoutMismatch, failed.Type, failed.Message)
		require.NotEmpty(t, forgedPlan.Outputs, "the buyer's set was forged")
		// The vendor, asked directly to sign the forged set, refuses too.
		buyerState, err := loadState(forge.dirs[escrow.Buyer], "xforge", "buyer")
		require.NoError(t, err)
		forgedSet := buyerState.Payout[escrow.PayoutRoundName(escrow.PayoutTxSet, 1)].Message
		require.NotEmpty(t, forgedSet)
		honest := buyerState.PayoutAnswers[escrow.PayoutRoundName(escrow.PayoutExport, 1)].Plan
		for _, role := range both {
			r := forge.participant(t, role)
			requireType(t, r.err, escrow.TypePayoutMismatch)
		}
		vendorCfg := TradeConfig{Config: e.participantConfig(t, "xforge", escrow.Vendor, forge.dirs[escrow.Vendor]),
			Terms: escrow.PayoutTerms{AmountAtomic: price, VendorAddress: forge.vendor.Address, BuyerRefundAddress: forge.buyer.Address}}
		r, key, stop, err := open(ctx, vendorCfg.Config, false)
		require.NoError(t, err)
		defer stop()
		tr := &trader{runner: r, cfg: vendorCfg, key: key, address: r.st.Sent[string(escrow.RoundExchange2)].Message}
		_, err = tr.cosign(ctx, honest, forgedSet)
		requireType(t, err, escrow.TypePayoutMismatch)
		_, err = tr.cosign(ctx, forgedPlan, forgedSet)
		requireType(t, err, escrow.TypePayoutMismatch)
		got, _ := thief.Received(t, 0)
		assert.Zero(t, got, "nothing reached the thief")
	})
}

func (e *tradeEnv) waitPaidOut(t *testing.T, id string) escrow.TradeStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := e.sc.WaitTrade(ctx, id)
	if err != nil {
		st, serr := e.sc.TradeStatus(context.Background(), id)
		t.Logf("trade %s: status %+v (%v)", id, st, serr)
	}
	require.NoError(t, err, id)
	require.Equal(t, escrow.TradePaidOut, res.State)
	e.saveHistory(t, id)
	return *res
}

// recordHistoriesEnv makes TestExternalTrades run with plain payloads and
// write the histories of its paid-out trades to
// workflows/testdata/trade/<id>.json, which the workflows package replays
// (`make trade-histories`).
const recordHistoriesEnv = "ESCROWFLOW_RECORD_HISTORIES"

func recording() bool { return os.Getenv(recordHistoriesEnv) == "1" }

// saveHistory writes the closed trade's history when recording.
func (e *tradeEnv) saveHistory(t *testing.T, id string) {
	t.Helper()
	if !recording() {
		return
	}
	hist := &historypb.History{}
	it := e.raw.GetWorkflowHistory(context.Background(), escrow.TradeWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, hist.Events[len(hist.Events)-1].GetEventType())
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	path := filepath.Join(testenv.RepoRoot(t), "workflows", "testdata", "trade", id+".json")
	require.NoError(t, walletstore.AtomicWriteFile(path, append(b, '\n'), 0o644))
	t.Logf("recorded %s (%d events)", path, len(hist.Events))
}

func outputTo(t *testing.T, st escrow.TradeStatus, address string) uint64 {
	t.Helper()
	for _, o := range st.Payout.Outputs {
		if o.Address == address {
			return o.AmountAtomic
		}
	}
	t.Fatalf("the payout has no output to %s…", address[:8])
	return 0
}

// updatePayloads returns the arguments of the trade's accepted
// payoutRound updates as the server stores them.
func updatePayloads(t *testing.T, e *tradeEnv, id string) []*commonpb.Payload {
	t.Helper()
	it := e.raw.GetWorkflowHistory(context.Background(), escrow.TradeWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*commonpb.Payload
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
		if req.GetInput().GetName() == escrow.PayoutRoundUpdate {
			out = append(out, req.GetInput().GetArgs().GetPayloads()...)
		}
	}
	return out
}
