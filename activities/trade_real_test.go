package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/regtest"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/walletstore"
)

func TestMain(m *testing.M) {
	code := m.Run()
	regtest.StopShared()
	os.Exit(code)
}

// tradeWorld is a worker on a regtest chain: a pool of wallet-rpc
// processes connected to the chain's daemon and Activities over it.
type tradeWorld struct {
	chain *regtest.Chain
	acts  *Activities
	store *walletstore.Store
	dir   string
	pool  *pool.Pool
}

func newTradeWorld(t *testing.T) *tradeWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("starts monerod and monero-wallet-rpc processes")
	}
	chain := regtest.Shared(t)
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := t.TempDir()
	store, err := walletstore.Open(dir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := pool.Start(ctx, pool.Config{Binary: bin, Size: 3, WalletDir: dir, Network: "regtest",
		DaemonAddress: chain.Address, TrustedDaemon: true, HealthInterval: time.Second, HealthTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	acts := New(Config{Leases: PoolLeaser(p), Store: store, Passwords: mustPasswords(t, testMaster),
		HeartbeatEvery: 500 * time.Millisecond, Daemon: chain.Daemon, Network: "regtest", WalletRPCVersion: "0.18.0.0"})
	return &tradeWorld{chain: chain, acts: acts, store: store, dir: dir, pool: p}
}

// setup runs an escrow's 2-of-3 setup and returns each role's final
// snapshot and the multisig address.
func (w *tradeWorld) setup(t *testing.T, id string) (snaps [3]string, address string) {
	t.Helper()
	info := runInfo{WorkflowID: "escrow-" + id, RunID: "run-" + id}
	mustExecute(t, w.acts, info, w.acts.ClaimEscrow, ClaimInput{EscrowID: id})
	var infos [3]string
	round := func(name string, fn func(context.Context, StepInput) (StepOutput, error), peers bool) [3]StepOutput {
		outs := forRoles(t, func(i int) (StepOutput, error) {
			in := StepInput{EscrowID: id, Role: roles[i], Round: name, Snapshot: snaps[i]}
			if peers {
				in.PeerInfos = peersOf(infos[:], i)
			}
			return execute(w.acts, info, fn, in)
		})
		for i, o := range outs {
			snaps[i] = o.Snapshot
			if o.MultisigInfo != "" {
				infos[i] = o.MultisigInfo
			}
		}
		return outs
	}
	round("CREATING", w.acts.CreateWallet, false)
	round("PREPARING", w.acts.PrepareMultisig, false)
	round("MAKING", w.acts.MakeMultisig, true)
	round("EXCHANGING_1", w.acts.ExchangeMultisigKeys, true)
	final := round("EXCHANGING_2", w.acts.ExchangeMultisigKeys, true)
	require.NotEmpty(t, final[0].Address)
	return snaps, final[0].Address
}

// exchange exports every role's multisig info and imports the others'
// into each, as the workflow does before a payout.
func (w *tradeWorld) exchange(t *testing.T, id string, snaps *[3]string) {
	t.Helper()
	var infos [3]string
	for i := range roles {
		out := mustExecute(t, w.acts, runInfo{}, w.acts.ExportMultisig, PayoutStepInput{EscrowID: id, Role: roles[i], Snapshot: snaps[i]})
		snaps[i], infos[i] = out.Snapshot, out.Info
	}
	for i := range roles {
		out := mustExecute(t, w.acts, runInfo{}, w.acts.ImportMultisig,
			PayoutStepInput{EscrowID: id, Role: roles[i], Snapshot: snaps[i], PeerInfos: peersOf(infos[:], i)})
		snaps[i] = out.Snapshot
		require.Equal(t, 1, out.Outputs, roles[i])
		require.NotZero(t, out.UnlockedAtomic, roles[i])
	}
}

// TestTradePayoutOnRegtest funds an escrow on a real chain and pays it out
// through the activities, with the refusals and retries of the money flow:
// a forged txset to another address is refused unsigned, a retried
// CreatePayout and SignPayout return their stored results, a different
// txset is refused, and a SubmitPayout retried after success succeeds. The
// recipients' own wallets receive the exact amounts.
func TestTradePayoutOnRegtest(t *testing.T) {
	w := newTradeWorld(t)
	faucet := w.chain.Faucet(t)
	vendor, buyer, thief := w.chain.NewWallet(t, "vendor"), w.chain.NewWallet(t, "buyer"), w.chain.NewWallet(t, "thief")
	defer vendor.Close()
	defer buyer.Close()
	defer thief.Close()
	const id, price, paid = "pay1", uint64(1_500_000_000_000), uint64(2_000_000_000_000)
	snaps, msig := w.setup(t, id)

	terms, err := execute(w.acts, runInfo{}, w.acts.CheckTradeTerms, TermsInput{EscrowID: id, AmountAtomic: price,
		VendorAddress: vendor.Address, BuyerRefundAddress: buyer.Address})
	require.NoError(t, err)
	assert.Equal(t, TermsOutput{Network: "mainnet", Regtest: true, WalletRPCVersion: "0.18.0.0"}, terms)

	scan := DepositCheckInput{EscrowID: id, MultisigAddress: msig, Role: "arbiter", Wallet: snaps[2], Scan: true}
	dep := mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, scan)
	assert.Zero(t, dep.Deposit.ReceivedAtomic, "nothing paid yet")

	txid, key := faucet.Pay(t, msig, paid)
	announced := scan
	announced.Scan, announced.Announced = false, &escrow.DepositAnnouncement{TxID: txid, TxKey: key}
	dep = mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, announced)
	assert.Equal(t, DepositCheckOutput{AnnouncedValid: true, Deposit: escrow.DepositStatus{ReceivedAtomic: paid, TxIDs: []string{txid}}}, dep,
		"in the pool: proven, unconfirmed, locked")
	forged := announced
	forged.Announced = &escrow.DepositAnnouncement{TxID: txid, TxKey: strings.Repeat("11", 32)}
	dep = mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, forged)
	assert.False(t, dep.AnnouncedValid, "not a reduced scalar (it crashed wallet-rpc): never sent, proves nothing")
	forged.Announced.TxKey = "01" + strings.Repeat("00", 31)
	dep = mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, forged)
	assert.False(t, dep.AnnouncedValid, "a wrong tx key proves nothing")
	assert.Zero(t, dep.Deposit.ReceivedAtomic)

	w.chain.Mine(t, 10)
	dep = mustExecute(t, w.acts, runInfo{}, w.acts.CheckDeposit, scan)
	assert.Equal(t, DepositCheckOutput{UnlockedAtomic: paid, Deposit: escrow.DepositStatus{ReceivedAtomic: paid, Confirmations: 10, TxIDs: []string{txid}}}, dep)
	names, err := w.store.List(id + ".")
	require.NoError(t, err)
	for _, n := range names {
		assert.NotContains(t, n, ".work.check-", "CheckDeposit leaves no working copy")
	}

	// After the first scan, checks need no wallet-rpc process at all: a
	// worker whose every lease fails checks both ways from the daemon.
	noWallets := New(Config{Leases: noLeases{}, Store: w.store, Passwords: mustPasswords(t, testMaster),
		Daemon: w.chain.Daemon, Network: "regtest", WalletRPCVersion: "0.18.0.0"})
	both := scan
	both.Announced = &escrow.DepositAnnouncement{TxID: txid, TxKey: key}
	dep = mustExecute(t, noWallets, runInfo{}, noWallets.CheckDeposit, both)
	assert.Equal(t, DepositCheckOutput{AnnouncedValid: true, UnlockedAtomic: paid,
		Deposit: escrow.DepositStatus{ReceivedAtomic: paid, Confirmations: 10, TxIDs: []string{txid}}}, dep)
	vk, err := os.ReadFile(filepath.Join(w.dir, id+".arbiter.viewkey"))
	require.NoError(t, err)
	assert.Len(t, vk, 12+32+16, "the view key is stored sealed (nonce, key, tag)")
	// A fresh escrow's first scan does lease a process: the failure shows.
	_, err = execute(noWallets, runInfo{}, noWallets.CheckDeposit, DepositCheckInput{EscrowID: "other", MultisigAddress: msig,
		Role: "arbiter", Wallet: "other.arbiter.final", Scan: true})
	require.ErrorContains(t, err, errNoLeases.Error())

	w.exchange(t, id, &snaps)
	fee := mustExecute(t, w.acts, runInfo{}, w.acts.EstimatePayoutFee, FeeInput{Outputs: 2, Inputs: 1})
	require.Equal(t, FeeMargin*fee.EstimateAtomic, fee.BudgetAtomic)
	plan := escrow.PayoutPlan{Kind: escrow.PayoutRelease, MultisigAddress: msig, TotalAtomic: paid, FeeBudgetAtomic: fee.BudgetAtomic,
		Outputs: []escrow.PayoutOutput{{Address: vendor.Address, AmountAtomic: price - fee.BudgetAtomic}, {Address: buyer.Address, AmountAtomic: paid - price}}}

	// The arbiter's wallet makes a set that pays a thief: the vendor's
	// check refuses it and signs nothing.
	bad := plan
	bad.Outputs = []escrow.PayoutOutput{{Address: thief.Address, AmountAtomic: price - fee.BudgetAtomic}, plan.Outputs[1]}
	forgedSet := mustExecute(t, w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "arbiter", Snapshot: snaps[2], Plan: bad})
	_, err = execute(w.acts, runInfo{}, w.acts.SignPayout, SignPayoutInput{EscrowID: id, Role: "vendor", Snapshot: snaps[1], TxSet: forgedSet.TxSet, Plan: plan})
	requireAppError(t, err, escrow.TypePayoutMismatch, true)
	assert.NoFileExists(t, filepath.Join(w.dir, id+".payout-sign-intent"), "nothing was about to be signed")
	_, err = execute(w.acts, runInfo{}, w.acts.VerifyPayout, SignPayoutInput{EscrowID: id, Role: "arbiter", Snapshot: snaps[2], TxSet: forgedSet.TxSet, Plan: plan})
	requireAppError(t, err, escrow.TypePayoutMismatch, true)

	created := mustExecute(t, w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "buyer", Snapshot: snaps[0], Plan: plan})
	require.LessOrEqual(t, created.FeeAtomic, fee.BudgetAtomic)
	again := mustExecute(t, w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "buyer", Snapshot: snaps[0], Plan: plan})
	assert.Equal(t, created.TxSet, again.TxSet, "a retried CreatePayout returns the stored txset")
	assert.Equal(t, created.Snapshot, again.Snapshot)
	_, err = execute(w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "buyer", Snapshot: snaps[0], Plan: bad})
	requireAppError(t, err, escrow.TypeSecondPayout, true)

	verified := mustExecute(t, w.acts, runInfo{}, w.acts.VerifyPayout, SignPayoutInput{EscrowID: id, Role: "arbiter", Snapshot: snaps[2], TxSet: created.TxSet, Plan: plan})
	assert.Equal(t, created.Outputs, verified.Outputs)

	signIn := SignPayoutInput{EscrowID: id, Role: "vendor", Snapshot: snaps[1], TxSet: created.TxSet, Plan: plan}
	signed := mustExecute(t, w.acts, runInfo{}, w.acts.SignPayout, signIn)
	require.Len(t, signed.TxHashes, 1)
	require.NotEqual(t, snaps[1], signed.Snapshot, "the signature is committed")
	resigned := mustExecute(t, w.acts, runInfo{}, w.acts.SignPayout, signIn)
	assert.Equal(t, signed.SignedTxSet, resigned.SignedTxSet, "a retried SignPayout returns the stored signature")
	assert.Equal(t, signed.Snapshot, resigned.Snapshot)
	other := signIn
	other.TxSet = forgedSet.TxSet
	_, err = execute(w.acts, runInfo{}, w.acts.SignPayout, other)
	requireAppError(t, err, escrow.TypeSecondPayout, true)

	submitIn := SubmitPayoutInput{EscrowID: id, Role: "buyer", Snapshot: created.Snapshot, SignedTxSet: signed.SignedTxSet, TxHashes: signed.TxHashes}
	sub := mustExecute(t, w.acts, runInfo{}, w.acts.SubmitPayout, submitIn)
	require.Equal(t, signed.TxHashes[0], sub.TxHash)
	sub = mustExecute(t, w.acts, runInfo{}, w.acts.SubmitPayout, submitIn)
	require.Equal(t, signed.TxHashes[0], sub.TxHash, "a SubmitPayout retried after success finds the tx")
	st := mustExecute(t, w.acts, runInfo{}, w.acts.CheckPayoutTx, TxCheckInput{TxHash: sub.TxHash})
	assert.Equal(t, TxCheckOutput{Found: true, InPool: true}, st)

	w.chain.Mine(t, 1)
	st = mustExecute(t, w.acts, runInfo{}, w.acts.CheckPayoutTx, TxCheckInput{TxHash: sub.TxHash})
	assert.Equal(t, TxCheckOutput{Found: true, Confirmations: 1}, st)
	got, _ := vendor.Received(t, 1)
	assert.Equal(t, price-fee.BudgetAtomic, got, "the vendor's own wallet")
	got, _ = buyer.Received(t, 1)
	assert.Equal(t, paid-price, got, "the buyer's own wallet")
	got, _ = thief.Received(t, 0)
	assert.Zero(t, got)
}

// TestTradeSweepOnRegtest refunds a whole deposit with sweep_all: no
// change is left, the buyer receives everything less the fee, and a
// CreatePayout whose earlier attempt left only its intent fails
// NoncesSpent instead of creating another transaction.
func TestTradeSweepOnRegtest(t *testing.T) {
	w := newTradeWorld(t)
	faucet := w.chain.Faucet(t)
	buyer := w.chain.NewWallet(t, "buyer")
	defer buyer.Close()
	const id, paid = "sweep1", uint64(700_000_000_000)
	snaps, msig := w.setup(t, id)
	faucet.Pay(t, msig, paid)
	w.chain.Mine(t, 10)
	w.exchange(t, id, &snaps)
	fee := mustExecute(t, w.acts, runInfo{}, w.acts.EstimatePayoutFee, FeeInput{Outputs: 1, Inputs: 1})
	plan := escrow.PayoutPlan{Kind: escrow.PayoutRefund, MultisigAddress: msig, TotalAtomic: paid, FeeBudgetAtomic: fee.BudgetAtomic, SweepTo: buyer.Address}

	// An attempt by the vendor died after writing its intent.
	require.NoError(t, walletstore.AtomicCreateFile(filepath.Join(w.dir, snaps[1]+".create-intent"), []byte("{}"), 0o600))
	_, err := execute(w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "vendor", Snapshot: snaps[1], Plan: plan})
	requireAppError(t, err, escrow.TypeNoncesSpent, true)

	created := mustExecute(t, w.acts, runInfo{}, w.acts.CreatePayout, CreatePayoutInput{EscrowID: id, Role: "buyer", Snapshot: snaps[0], Plan: plan})
	signed := mustExecute(t, w.acts, runInfo{}, w.acts.SignPayout, SignPayoutInput{EscrowID: id, Role: "arbiter", Snapshot: snaps[2], TxSet: created.TxSet, Plan: plan})
	assert.Equal(t, []escrow.PayoutOutput{{Address: buyer.Address, AmountAtomic: paid - signed.FeeAtomic}}, signed.Outputs)
	mustExecute(t, w.acts, runInfo{}, w.acts.SubmitPayout, SubmitPayoutInput{EscrowID: id, Role: "arbiter", Snapshot: signed.Snapshot,
		SignedTxSet: signed.SignedTxSet, TxHashes: signed.TxHashes})
	w.chain.Mine(t, 1)
	got, n := buyer.Received(t, 1)
	assert.Equal(t, paid-signed.FeeAtomic, got, "the buyer's own wallet: everything less the fee")
	assert.Equal(t, 1, n)
}

var errNoLeases = errors.New("no wallet-rpc process for this test")

// noLeases is a Leaser without processes.
type noLeases struct{ Leaser }

func (noLeases) Acquire(context.Context, string) (Lease, error) { return nil, errNoLeases }
func (noLeases) Forget(string)                                  {}
