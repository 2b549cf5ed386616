package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// This file holds the test doubles of the activity tests: an in-memory
// stand-in for monero-wallet-rpc that keeps its wallets as real files in the
// store dir (so snapshots and restores work on them), a sticky leaser like
// pool's, and helpers that run activities in Temporal's test
// activity environment.

// fakeMultisigAddress is the address every fake wallet reports once the
// key exchange is complete: the three roles agree, as real ones do.
const fakeMultisigAddress = "5FakeMultisigAddress2of3"

// walletCall is one call a fake wallet received.
type walletCall struct {
	Proc   int    // the fake process (lease slot) that got it
	Method string // JSON-RPC method name
	Arg    string // the wallet name for create/open, "true"/"false" for prepare
}

func (c walletCall) String() string {
	if c.Arg == "" {
		return c.Method
	}
	return c.Method + " " + c.Arg
}

// fakeWorld is what every fake process of a test shares: the wallet dir,
// the call log and the knobs tests turn.
type fakeWorld struct {
	dir string

	mu        sync.Mutex
	calls     []walletCall
	active    int // wallet calls running right now
	maxActive int
	fail      map[string][]error // per method, errors returned by the next calls
	// createGate, when set, makes CreateWallet block until it can receive
	// from it (or its context ends); createEntered then receives the
	// wallet name as the call starts.
	createGate    chan struct{}
	createEntered chan string
}

func newFakeWorld(dir string) *fakeWorld {
	return &fakeWorld{dir: dir, fail: map[string][]error{}}
}

// failNext makes the next call of method fail with err.
func (w *fakeWorld) failNext(method string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail[method] = append(w.fail[method], err)
}

// Calls returns a copy of the call log.
func (w *fakeWorld) Calls() []walletCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]walletCall(nil), w.calls...)
}

// CallStrings returns the call log as "method arg" strings.
func (w *fakeWorld) CallStrings() []string {
	var out []string
	for _, c := range w.Calls() {
		out = append(out, c.String())
	}
	return out
}

// Methods returns the methods of the calls logged since call number from.
func (w *fakeWorld) Methods(from int) []string {
	var out []string
	for _, c := range w.Calls()[from:] {
		out = append(out, c.Method)
	}
	return out
}

func (w *fakeWorld) MaxActive() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxActive
}

// enter logs a call, counts it as running and returns the injected error
// for it, if any. The caller must call leave when the call ends.
func (w *fakeWorld) enter(proc int, method, arg string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, walletCall{Proc: proc, Method: method, Arg: arg})
	w.active++
	if w.active > w.maxActive {
		w.maxActive = w.active
	}
	if errs := w.fail[method]; len(errs) > 0 {
		w.fail[method] = errs[1:]
		return errs[0]
	}
	return nil
}

func (w *fakeWorld) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active--
}

// fakeState is what a fake wallet keeps in its cache file.
type fakeState struct {
	Address  string `json:"address"`
	Multisig bool   `json:"multisig"`
	Kex      int    `json:"kex"` // 1 after make_multisig, 3 when ready
	// experimental is enable_multisig_experimental; like the real flag it
	// is not kept across close and open.
	experimental bool
}

// fakeWallet is one fake monero-wallet-rpc process with at most one open
// wallet. Its wallet files are NAME (the cache, a JSON fakeState),
// NAME.keys and NAME.address.txt in the world's dir.
type fakeWallet struct {
	world *fakeWorld
	id    int

	mu   sync.Mutex
	open string
	st   fakeState
}

var _ Wallet = (*fakeWallet)(nil)

func (f *fakeWallet) path(name, suffix string) string {
	return filepath.Join(f.world.dir, name+suffix)
}

func rpcErr(method string, code int, msg string) error {
	return &rpcclient.RPCError{Method: method, Code: code, Message: msg}
}

func notOpen(method string) error {
	return rpcErr(method, rpcclient.CodeNotOpen, "No wallet file")
}

// storeLocked writes the open wallet's cache and address files.
func (f *fakeWallet) storeLocked() error {
	b, err := json.Marshal(f.st)
	if err != nil {
		return err
	}
	if err := os.WriteFile(f.path(f.open, ""), b, 0o600); err != nil {
		return err
	}
	return os.WriteFile(f.path(f.open, ".address.txt"), []byte(f.st.Address), 0o600)
}

// closeLocked stores and closes the open wallet, as wallet-rpc does before
// it creates or opens another one.
func (f *fakeWallet) closeLocked() error {
	if f.open == "" {
		return nil
	}
	err := f.storeLocked()
	f.open, f.st = "", fakeState{}
	return err
}

func (f *fakeWallet) CreateWallet(ctx context.Context, filename, password string) error {
	if err := f.world.enter(f.id, "create_wallet", filename); err != nil {
		f.world.leave()
		return err
	}
	defer f.world.leave()
	if gate := f.world.createGate; gate != nil {
		if f.world.createEntered != nil {
			f.world.createEntered <- filename
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return &rpcclient.TransportError{Method: "create_wallet", Err: ctx.Err()}
		}
	}
	if len(password) != 64 {
		return rpcErr("create_wallet", rpcclient.CodeUnknown, "test: unexpected password length")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(f.path(filename, ".keys")); err == nil {
		return rpcErr("create_wallet", rpcclient.CodeUnknown, "Cannot create wallet. Already exists.")
	}
	if err := f.closeLocked(); err != nil {
		return err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	keys := "fake keys " + hex.EncodeToString(secret) + " pw " + password[:8]
	if err := os.WriteFile(f.path(filename, ".keys"), []byte(keys), 0o600); err != nil {
		return err
	}
	f.open = filename
	f.st = fakeState{Address: "9Fake" + hex.EncodeToString(secret[:8])}
	return f.storeLocked()
}

func (f *fakeWallet) OpenWallet(ctx context.Context, filename, password string) error {
	if err := f.world.enter(f.id, "open_wallet", filename); err != nil {
		f.world.leave()
		return err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(f.path(filename, ".keys")); err != nil {
		return rpcErr("open_wallet", rpcclient.CodeUnknown, "Failed to open wallet")
	}
	keys, err := os.ReadFile(f.path(filename, ".keys"))
	if err != nil {
		return err
	}
	if !strings.HasSuffix(string(keys), " pw "+password[:min(8, len(password))]) {
		return rpcErr("open_wallet", rpcclient.CodeInvalidPassword, "Invalid password")
	}
	if err := f.closeLocked(); err != nil {
		return err
	}
	b, err := os.ReadFile(f.path(filename, ""))
	if err != nil {
		return rpcErr("open_wallet", rpcclient.CodeUnknown, "Failed to open wallet")
	}
	var st fakeState
	if err := json.Unmarshal(b, &st); err != nil {
		return rpcErr("open_wallet", rpcclient.CodeUnknown, "Failed to open wallet")
	}
	f.open, f.st = filename, st
	return nil
}

func (f *fakeWallet) ChangeWalletPassword(ctx context.Context, oldPassword, newPassword string) error {
	if err := f.world.enter(f.id, "change_wallet_password", ""); err != nil {
		f.world.leave()
		return err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return notOpen("change_wallet_password")
	}
	keys, err := os.ReadFile(f.path(f.open, ".keys"))
	if err != nil {
		return err
	}
	before, ok := strings.CutSuffix(string(keys), " pw "+oldPassword[:min(8, len(oldPassword))])
	if !ok || len(newPassword) != 64 {
		return rpcErr("change_wallet_password", rpcclient.CodeInvalidPassword, "Invalid original password.")
	}
	return os.WriteFile(f.path(f.open, ".keys"), []byte(before+" pw "+newPassword[:8]), 0o600)
}

func (f *fakeWallet) CloseWallet(ctx context.Context) error {
	if err := f.world.enter(f.id, "close_wallet", ""); err != nil {
		f.world.leave()
		return err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return notOpen("close_wallet")
	}
	return f.closeLocked()
}

func (f *fakeWallet) Store(ctx context.Context) error {
	if err := f.world.enter(f.id, "store", ""); err != nil {
		f.world.leave()
		return err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return notOpen("store")
	}
	return f.storeLocked()
}

func (f *fakeWallet) GetAddress(ctx context.Context) (string, error) {
	if err := f.world.enter(f.id, "get_address", ""); err != nil {
		f.world.leave()
		return "", err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return "", notOpen("get_address")
	}
	return f.st.Address, nil
}

func (f *fakeWallet) IsMultisig(ctx context.Context) (rpcclient.MultisigStatus, error) {
	if err := f.world.enter(f.id, "is_multisig", ""); err != nil {
		f.world.leave()
		return rpcclient.MultisigStatus{}, err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return rpcclient.MultisigStatus{}, notOpen("is_multisig")
	}
	if !f.st.Multisig {
		return rpcclient.MultisigStatus{}, nil
	}
	return rpcclient.MultisigStatus{Multisig: true, Ready: f.st.Kex >= 3, Threshold: escrow.Threshold, Total: escrow.Total}, nil
}

func (f *fakeWallet) PrepareMultisig(ctx context.Context, enableExperimental bool) (string, error) {
	if err := f.world.enter(f.id, "prepare_multisig", fmt.Sprint(enableExperimental)); err != nil {
		f.world.leave()
		return "", err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == "" {
		return "", notOpen("prepare_multisig")
	}
	if enableExperimental {
		f.st.experimental = true
	}
	if !f.st.experimental {
		return "", rpcErr("prepare_multisig", rpcclient.CodeMultisigDisabled, "This wallet is multisig, and multisig is disabled")
	}
	if f.st.Multisig {
		return "", rpcErr("prepare_multisig", rpcclient.CodeAlreadyMultisig, "This wallet is already multisig")
	}
	return "MultisigxV2R1" + f.st.Address, nil
}

func (f *fakeWallet) MakeMultisig(ctx context.Context, infos []string, threshold uint32, password string) (rpcclient.MultisigRound, error) {
	if err := f.world.enter(f.id, "make_multisig", ""); err != nil {
		f.world.leave()
		return rpcclient.MultisigRound{}, err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.open == "":
		return rpcclient.MultisigRound{}, notOpen("make_multisig")
	case !f.st.experimental:
		return rpcclient.MultisigRound{}, rpcErr("make_multisig", rpcclient.CodeMultisigDisabled, "multisig is disabled")
	case f.st.Multisig:
		return rpcclient.MultisigRound{}, rpcErr("make_multisig", rpcclient.CodeAlreadyMultisig, "This wallet is already multisig")
	case len(infos) != 2 || threshold != escrow.Threshold:
		return rpcclient.MultisigRound{}, rpcErr("make_multisig", rpcclient.CodeUnknown, "test: bad make_multisig params")
	}
	f.st.Multisig, f.st.Kex = true, 1
	return rpcclient.MultisigRound{Address: f.st.Address, MultisigInfo: "MultisigxV2Rn1" + f.st.Address}, nil
}

func (f *fakeWallet) ExchangeMultisigKeys(ctx context.Context, infos []string, password string) (rpcclient.MultisigRound, error) {
	if err := f.world.enter(f.id, "exchange_multisig_keys", ""); err != nil {
		f.world.leave()
		return rpcclient.MultisigRound{}, err
	}
	defer f.world.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.open == "":
		return rpcclient.MultisigRound{}, notOpen("exchange_multisig_keys")
	case !f.st.experimental:
		return rpcclient.MultisigRound{}, rpcErr("exchange_multisig_keys", rpcclient.CodeMultisigDisabled, "multisig is disabled")
	case !f.st.Multisig:
		return rpcclient.MultisigRound{}, rpcErr("exchange_multisig_keys", rpcclient.CodeNotMultisig, "This wallet is not multisig")
	case f.st.Kex >= 3:
		return rpcclient.MultisigRound{}, rpcErr("exchange_multisig_keys", rpcclient.CodeUnknown, "Multisig wallet is already finalized")
	}
	f.st.Kex++
	if f.st.Kex == 3 {
		f.st.Address = fakeMultisigAddress
		return rpcclient.MultisigRound{Address: fakeMultisigAddress}, nil
	}
	return rpcclient.MultisigRound{MultisigInfo: fmt.Sprintf("MultisigxV2Rn%d%s", f.st.Kex, f.st.Address)}, nil
}

// fakeLeaser is a sticky leaser over fake processes: a key gets its
// process back, with the state it released, until it discards or forgets
// it. A new fakeLeaser over the same world is a restarted worker: same
// files, fresh processes, no state.
type fakeLeaser struct {
	world *fakeWorld
	// spare is how many more idle processes TryAcquireIdle may hand out.
	spare int

	mu     sync.Mutex
	procs  map[string]*fakeProc // by key
	nextID int
	events []string
}

type fakeProc struct {
	w     *fakeWallet
	state string
	busy  bool
}

var _ Leaser = (*fakeLeaser)(nil)

// procIDBase keeps the process ids of leasers distinct within a test.
var procIDBase struct {
	sync.Mutex
	n int
}

func newFakeLeaser(w *fakeWorld) *fakeLeaser {
	procIDBase.Lock()
	procIDBase.n += 1000
	base := procIDBase.n
	procIDBase.Unlock()
	return &fakeLeaser{world: w, procs: map[string]*fakeProc{}, nextID: base}
}

func (l *fakeLeaser) event(format string, args ...any) {
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

// Events returns the lease events: "acquire KEY", "acquireOwned KEY",
// "release KEY STATE", "discard KEY", "forget KEY", "double KEY" (a
// second Release or Discard of one lease).
func (l *fakeLeaser) Events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

func (l *fakeLeaser) Acquire(ctx context.Context, key string) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.event("acquire %s", key)
	p := l.procs[key]
	if p == nil {
		l.nextID++
		p = &fakeProc{w: &fakeWallet{world: l.world, id: l.nextID}}
		l.procs[key] = p
	}
	if p.busy {
		return nil, fmt.Errorf("test: key %s leased twice at once", key)
	}
	p.busy = true
	return &fakeLease{l: l, key: key, p: p, state: p.state}, nil
}

func (l *fakeLeaser) AcquireOwned(ctx context.Context, key string) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.event("acquireOwned %s", key)
	p := l.procs[key]
	if p == nil {
		return nil, nil
	}
	if p.busy {
		return nil, fmt.Errorf("test: key %s leased twice at once", key)
	}
	p.busy = true
	return &fakeLease{l: l, key: key, p: p, state: p.state}, nil
}

func (l *fakeLeaser) Transfer(ctx context.Context, from, to string) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.event("transfer %s %s", from, to)
	p := l.procs[from]
	if p == nil {
		return nil, nil
	}
	if p.busy {
		return nil, fmt.Errorf("test: key %s leased twice at once", from)
	}
	delete(l.procs, from)
	l.procs[to] = p
	p.busy = true
	return &fakeLease{l: l, key: to, p: p, state: p.state}, nil
}

func (l *fakeLeaser) TryAcquireIdle(key string) Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare == 0 {
		return nil
	}
	l.spare--
	l.event("tryAcquireIdle %s", key)
	l.nextID++
	p := &fakeProc{w: &fakeWallet{world: l.world, id: l.nextID}, busy: true}
	l.procs[key] = p
	return &fakeLease{l: l, key: key, p: p}
}

// steal gives key's process to another key, as the pool lends an idle
// process to a new key: key holds nothing afterwards.
func (l *fakeLeaser) steal(key, thief string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.procs[key]; p != nil && !p.busy {
		delete(l.procs, key)
		l.procs[thief] = p
		p.state = ""
	}
}

func (l *fakeLeaser) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.event("forget %s", key)
	if p := l.procs[key]; p != nil && !p.busy {
		delete(l.procs, key)
	}
}

// Keys returns the keys that hold a process.
func (l *fakeLeaser) Keys() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.procs {
		keys = append(keys, k)
	}
	return keys
}

// State returns what key left in its process, or "" if it holds none.
func (l *fakeLeaser) State(key string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.procs[key]; p != nil {
		return p.state
	}
	return ""
}

type fakeLease struct {
	l     *fakeLeaser
	key   string
	p     *fakeProc
	state string
	done  bool
}

func (f *fakeLease) Wallet() Wallet      { return f.p.w }
func (f *fakeLease) Wait() time.Duration { return 3 * time.Millisecond }
func (f *fakeLease) Slot() int           { return f.p.w.id }
func (f *fakeLease) State() string       { return f.state }

func (f *fakeLease) Release(state string) {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if f.done {
		f.l.event("double %s", f.key)
		return
	}
	f.done = true
	f.l.event("release %s %s", f.key, state)
	f.p.busy, f.p.state = false, state
}

func (f *fakeLease) Discard() {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if f.done {
		f.l.event("double %s", f.key)
		return
	}
	f.done = true
	f.l.event("discard %s", f.key)
	f.p.busy, f.p.state = false, ""
	if f.l.procs[f.key] == f.p {
		delete(f.l.procs, f.key) // like the pool: the key loses the process
	}
}

// fixture is a wallet dir with a store, fake processes and Activities.
type fixture struct {
	t      *testing.T
	dir    string
	store  *walletstore.Store
	world  *fakeWorld
	leaser *fakeLeaser
	acts   *Activities
	cfg    Config
}

func newFixture(t *testing.T, tweak ...func(*Config)) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wallets")
	store, err := walletstore.Open(dir)
	require.NoError(t, err)
	f := &fixture{t: t, dir: dir, store: store, world: newFakeWorld(dir)}
	f.cfg = Config{Store: store, Passwords: mustPasswords(t, testMaster)}
	for _, fn := range tweak {
		fn(&f.cfg)
	}
	f.restart()
	return f
}

// restart replaces the leaser and the Activities, as a worker restart
// does: the wallet dir stays, every process and its state is new.
func (f *fixture) restart() {
	f.leaser = newFakeLeaser(f.world)
	cfg := f.cfg
	cfg.Leases = f.leaser
	f.acts = New(cfg)
}

// runInfo is what the test activity environment reports through
// activity.GetInfo beyond its defaults.
type runInfo struct {
	WorkflowID, RunID string
	Attempt           int32 // 0 keeps the environment's (1)
	// Heartbeats, when set, counts activity.RecordHeartbeat calls.
	Heartbeats *atomic.Int32
}

// infoInterceptor overrides activity.GetInfo's workflow execution and
// attempt, which the test activity environment does not let tests set.
type infoInterceptor struct {
	interceptor.WorkerInterceptorBase
	info runInfo
}

func (i *infoInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	in := &infoInbound{info: i.info}
	in.Next = next
	return in
}

type infoInbound struct {
	interceptor.ActivityInboundInterceptorBase
	info runInfo
}

func (i *infoInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	out := &infoOutbound{info: i.info}
	out.Next = outbound
	return i.Next.Init(out)
}

type infoOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	info runInfo
}

func (o *infoOutbound) GetInfo(ctx context.Context) activity.Info {
	info := o.Next.GetInfo(ctx)
	if o.info.WorkflowID != "" {
		info.WorkflowExecution.ID = o.info.WorkflowID
	}
	if o.info.RunID != "" {
		info.WorkflowExecution.RunID = o.info.RunID
	}
	if o.info.Attempt > 0 {
		info.Attempt = o.info.Attempt
	}
	return info
}

func (o *infoOutbound) RecordHeartbeat(ctx context.Context, details ...any) {
	if o.info.Heartbeats != nil {
		o.info.Heartbeats.Add(1)
	}
	o.Next.RecordHeartbeat(ctx, details...)
}

var quietLogger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))

// newActivityEnv returns a test activity environment with acts registered
// and, when info is set, the given workflow execution and attempt.
func newActivityEnv(acts *Activities, info runInfo) *testsuite.TestActivityEnvironment {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(quietLogger)
	env := suite.NewTestActivityEnvironment()
	if info != (runInfo{}) {
		env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&infoInterceptor{info: info}}})
	}
	env.RegisterActivity(acts)
	return env
}

// execute runs one activity in a fresh test activity environment. It is
// safe to call from any goroutine.
func execute[I, O any](acts *Activities, info runInfo, fn func(context.Context, I) (O, error), in I) (O, error) {
	var out O
	val, err := newActivityEnv(acts, info).ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	err = val.Get(&out)
	return out, err
}

// mustExecute runs one activity and fails the test on an error.
func mustExecute[I, O any](t *testing.T, acts *Activities, info runInfo, fn func(context.Context, I) (O, error), in I) O {
	t.Helper()
	out, err := execute(acts, info, fn, in)
	require.NoError(t, err)
	return out
}

// requireAppError asserts that err carries an ApplicationError of type typ
// with the given retryability, and returns it.
func requireAppError(t *testing.T, err error, typ string, nonRetryable bool) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %T: %v", err, err)
	require.Equal(t, typ, appErr.Type(), "error type of %v", err)
	require.Equal(t, nonRetryable, appErr.NonRetryable(), "NonRetryable of %v", err)
	return appErr
}
