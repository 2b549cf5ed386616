// Package activities holds the EscrowSetup activities: the monero-wallet-rpc
// rounds of the 2-of-3 multisig protocol, run per role, and the escrow's
// claim and clean-up.
//
// Every wallet-changing step is idempotent in the sense Temporal needs
// (DESIGN.md §3): it starts from the role's last committed snapshot, named
// by the workflow, works on a copy of it under a name unique to the attempt,
// and commits its result as a new snapshot, again under a name unique to the
// attempt. A retry therefore never touches a committed snapshot, and two
// attempts running at once work on different files.
//
// The fast path keeps the role's working wallet open in its leased
// wallet-rpc process from one round to the next. The recovery path (after a
// retry, a lost lease, a restarted wallet-rpc or a restarted worker)
// restores the committed snapshot to a fresh working copy, opens it and
// re-enables experimental multisig, which monero-wallet-rpc does not keep
// across close and open.
package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Wallet is the part of the monero-wallet-rpc client the activities use.
// *rpcclient.Client implements it.
type Wallet interface {
	CreateWallet(ctx context.Context, filename, password string) error
	OpenWallet(ctx context.Context, filename, password string) error
	CloseWallet(ctx context.Context) error
	Store(ctx context.Context) error
	GetAddress(ctx context.Context) (string, error)
	IsMultisig(ctx context.Context) (rpcclient.MultisigStatus, error)
	PrepareMultisig(ctx context.Context, enableExperimental bool) (string, error)
	MakeMultisig(ctx context.Context, infos []string, threshold uint32, password string) (rpcclient.MultisigRound, error)
	ExchangeMultisigKeys(ctx context.Context, infos []string, password string) (rpcclient.MultisigRound, error)
	ChangeWalletPassword(ctx context.Context, oldPassword, newPassword string) error
}

// Lease is the exclusive use of one wallet-rpc process (see package pool).
type Lease interface {
	Wallet() Wallet
	Wait() time.Duration
	Slot() int
	// State is what this key left in the process at its last Release, or "".
	State() string
	Release(state string)
	Discard()
}

// Leaser hands out leases keyed by escrow id and role.
type Leaser interface {
	Acquire(ctx context.Context, key string) (Lease, error)
	// AcquireOwned returns (nil, nil) when key holds no process.
	AcquireOwned(ctx context.Context, key string) (Lease, error)
	// Transfer is AcquireOwned(from) with the process attached to key to
	// from then on.
	Transfer(ctx context.Context, from, to string) (Lease, error)
	// TryAcquireIdle leases an idle process no key holds, or returns nil.
	TryAcquireIdle(key string) Lease
	Forget(key string)
}

// Config holds the dependencies of Activities.
type Config struct {
	Leases    Leaser
	Store     *walletstore.Store
	Passwords *Passwords
	Logger    *zap.Logger
	// MaxConcurrentCalls bounds the slow wallet calls (create, open,
	// make, exchange) running at once across all escrows; wallet-rpc's
	// cost is CPU, and more busy processes than cores only adds contention.
	// Default: the number of CPUs.
	MaxConcurrentCalls int
	// HeartbeatEvery is the heartbeat period of running activities.
	// Default: 2 s.
	HeartbeatEvery time.Duration
	// Metrics receives measurements; nil records nothing.
	Metrics Metrics
	// HostTaskQueue is this worker's own task queue, where the wallet
	// activities of the escrows it claims must run (ClaimOutput.TaskQueue).
	HostTaskQueue string
	// MaxEscrows bounds the escrows this worker claims at once (0: no
	// bound). A claim beyond it waits up to AdmitWait for an escrow to
	// finish, then fails with the retryable WorkerBusy, so another worker
	// (or a later retry) takes the escrow.
	MaxEscrows int
	// AdmitWait is how long a claim waits for room under MaxEscrows.
	// 0: 10 s; negative: no wait (with several workers, a full worker then
	// leaves the claim to the others at once).
	AdmitWait time.Duration
	// Runs, if set, tells ClaimEscrow about earlier runs of the escrow's
	// workflow id anywhere in the cluster (another worker may hold their
	// files): an escrow id runs once.
	Runs RunHistory
	// Stock is the size of the warm stock of wallets created ahead of
	// demand, each open in an idle wallet-rpc process (see RunStock); 0
	// turns it off. More than the pool's size is pointless.
	Stock int
	// Daemon is the worker's monerod (nil: none; trades fail NoDaemon).
	Daemon Daemon
	// Network is the worker's network: mainnet, testnet, stagenet or
	// regtest. Default: testnet.
	Network string
	// WalletRPCVersion is the release of the worker's monero-wallet-rpc
	// ("0.18.0.0"; "" when unknown, which counts as too old to sign on
	// mainnet).
	WalletRPCVersion string
	// OnFinish, if set, is called after FinishEscrow has handled an escrow
	// this run owns (for example to export its instrumentation once the
	// workflow has closed). It must not block.
	OnFinish func(FinishEvent)
}

// Metrics receives the activities' measurements. Implementations must be
// safe for concurrent use and must not block.
type Metrics interface {
	// LeaseWait records how long a step waited for a wallet-rpc process.
	LeaseWait(d time.Duration)
	// RPCCall records one wallet call (method name only, never parameters).
	RPCCall(method string, d time.Duration, err error)
	// EscrowFinished records an escrow that ended with outcome.
	EscrowFinished(outcome string)
}

// RunHistory reports other runs of a workflow id (Temporal visibility).
type RunHistory interface {
	// OtherRuns returns how many runs of workflowID other than runID exist.
	OtherRuns(ctx context.Context, workflowID, runID string) (int, error)
}

// FinishEvent describes an escrow FinishEscrow has handled.
type FinishEvent struct {
	EscrowID, WorkflowID, RunID, Outcome string
}

type noMetrics struct{}

func (noMetrics) LeaseWait(time.Duration)              {}
func (noMetrics) RPCCall(string, time.Duration, error) {}
func (noMetrics) EscrowFinished(string)                {}

// Activities are the EscrowSetup activities. Register one value with the
// worker; workflows refer to its methods through a nil *Activities.
type Activities struct {
	leases    Leaser
	store     *walletstore.Store
	passwords *Passwords
	log       *zap.Logger
	calls     chan struct{}
	heartbeat time.Duration
	metrics   Metrics
	onFinish  func(FinishEvent)

	hostQueue  string
	maxEscrows int
	runs       RunHistory
	stock      *stock // nil: off
	mu         sync.Mutex
	held       map[string]bool // escrows claimed and not finished, by id
	freed      chan struct{}   // closed (and replaced) when an escrow leaves held
	idleSince  time.Time       // when held last became empty
	admitWait  time.Duration

	trade tradeDeps
}

// New returns Activities over cfg.
func New(cfg Config) *Activities {
	if cfg.MaxConcurrentCalls <= 0 {
		cfg.MaxConcurrentCalls = runtime.NumCPU()
	}
	if cfg.HeartbeatEvery <= 0 {
		cfg.HeartbeatEvery = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	switch {
	case cfg.AdmitWait == 0:
		cfg.AdmitWait = 10 * time.Second
	case cfg.AdmitWait < 0:
		cfg.AdmitWait = 0
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	a := &Activities{
		hostQueue:  cfg.HostTaskQueue,
		runs:       cfg.Runs,
		maxEscrows: cfg.MaxEscrows,
		held:       map[string]bool{},
		freed:      make(chan struct{}),
		idleSince:  time.Now(),
		admitWait:  cfg.AdmitWait,
		metrics:    cfg.Metrics,
		onFinish:   cfg.OnFinish,
		leases:     cfg.Leases,
		store:      cfg.Store,
		passwords:  cfg.Passwords,
		log:        cfg.Logger,
		calls:      make(chan struct{}, cfg.MaxConcurrentCalls),
		heartbeat:  cfg.HeartbeatEvery,
	}
	if cfg.Stock > 0 {
		a.stock = newStock(cfg.Stock)
	}
	a.trade = newTradeDeps(cfg)
	return a
}

// StepInput is the input of every per-role step.
type StepInput struct {
	EscrowID string `json:"escrowId"`
	Role     string `json:"role"`
	// Round names the step in snapshot names and logs.
	Round string `json:"round"`
	// Snapshot is the role's last committed snapshot ("" for CreateWallet).
	Snapshot string `json:"snapshot,omitempty"`
	// PeerInfos are the two peers' messages of the previous round.
	PeerInfos []string `json:"peerInfos,omitempty"`
}

// StepOutput is the result of a per-role step.
type StepOutput struct {
	// Snapshot is the committed snapshot after the step; read-only steps
	// return their input snapshot.
	Snapshot string `json:"snapshot"`
	// MultisigInfo is the message for the peers' next round, if any.
	MultisigInfo string `json:"multisigInfo,omitempty"`
	// Address is the wallet's address after the step, if known.
	Address   string `json:"address,omitempty"`
	Multisig  bool   `json:"multisig,omitempty"`
	Ready     bool   `json:"ready,omitempty"`
	Threshold uint32 `json:"threshold,omitempty"`
	Total     uint32 `json:"total,omitempty"`
	// Figures of the attempt that succeeded.
	Attempt     int32 `json:"attempt"`
	LeaseWaitMs int64 `json:"leaseWaitMs"`
	RPCMs       int64 `json:"rpcMs"`
	Slot        int   `json:"slot"`
	Recovered   bool  `json:"recovered,omitempty"`
	// Stock is set when CreateWallet took a wallet of the warm stock.
	Stock bool `json:"stock,omitempty"`
}

func leaseKey(escrowID, role string) string { return escrowID + "/" + role }

// The wallet names of an escrow all start with "<escrowId>." — the dot
// cannot occur in an escrow id, so one escrow's prefix never matches
// another's.
func escrowPrefix(escrowID string) string { return escrowID + "." }

func workName(escrowID, role, tag string) string {
	return escrowPrefix(escrowID) + role + ".work." + tag
}

func snapshotName(escrowID, role, round, tag string) string {
	return escrowPrefix(escrowID) + role + "." + strings.ToLower(round) + "." + tag
}

// attemptTag is unique to one attempt: the attempt number for people, random
// bits for uniqueness across workers and restarts.
func attemptTag(ctx context.Context) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	return fmt.Sprintf("a%d-%s", attempt, hex.EncodeToString(b))
}

// leaseState is what a role leaves in its process between rounds: the open
// working wallet and the committed snapshot whose content it holds.
func leaseState(working, snapshot string) string { return working + "|" + snapshot }

func parseLeaseState(s string) (working, snapshot string) {
	working, snapshot, _ = strings.Cut(s, "|")
	return working, snapshot
}

// validate checks a step input before anything is touched: a step that
// creates the wallet has no snapshot, every other step starts from a
// snapshot of the same escrow and role.
func (a *Activities) validate(in StepInput, create bool) error {
	if err := escrow.ValidateEscrowID(in.EscrowID); err != nil {
		return err
	}
	switch {
	case !escrow.Role(in.Role).Valid():
		return &escrow.InvalidInputError{Field: "role", Value: in.Role}
	case !escrow.Round(in.Round).Valid() && !tradeRounds[in.Round], create != (escrow.Round(in.Round) == escrow.RoundCreate):
		return &escrow.InvalidInputError{Field: "round", Value: in.Round}
	case create && in.Snapshot != "":
		return &escrow.InvalidInputError{Field: "snapshot", Value: in.Snapshot}
	case !create && !strings.HasPrefix(in.Snapshot, escrowPrefix(in.EscrowID)+in.Role+"."):
		return &escrow.InvalidInputError{Field: "snapshot", Value: in.Snapshot}
	}
	return nil
}

// stepMode says what a step does to the wallet files.
type stepMode int

const (
	readOnly stepMode = iota // works on the open wallet, commits nothing
	commit                   // stores the wallet and commits a new snapshot
	create                   // creates the wallet, then commits
)

// stepFunc does a step's wallet calls on the open working wallet.
type stepFunc func(ctx context.Context, r *run, out *StepOutput) error

// run is one attempt of one step.
type run struct {
	a        *Activities
	in       StepInput
	w        Wallet
	password string
	rpc      time.Duration
	log      *zap.Logger
}

// call runs one slow wallet call under the concurrency bound, times it and
// logs it (never its parameters or result).
func (r *run) call(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	select {
	case r.a.calls <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	start := time.Now()
	err := fn(ctx)
	<-r.a.calls
	d := time.Since(start)
	r.rpc += d
	r.a.metrics.RPCCall(method, d, err)
	if err != nil {
		r.log.Warn("rpc call failed", zap.String("method", method), zap.Int64("ms", d.Milliseconds()), zap.Error(err))
		return err
	}
	r.log.Info("rpc call completed", zap.String("method", method), zap.Int64("ms", d.Milliseconds()))
	return nil
}

// step runs one attempt of a per-role step: lease, fast or recovery path,
// fn, and, unless the step is read-only, store and snapshot.
func (a *Activities) step(ctx context.Context, in StepInput, m stepMode, fn stepFunc) (out StepOutput, err error) {
	if err := a.validate(in, m == create); err != nil {
		return out, classify(err)
	}
	password, err := a.passwords.For(in.EscrowID, in.Role)
	if err != nil {
		return out, classify(err)
	}
	if activity.IsActivity(ctx) {
		out.Attempt = activity.GetInfo(ctx).Attempt
		defer a.keepAlive(ctx)()
	}
	log := a.log.With(zap.String("escrow_id", in.EscrowID), zap.String("role", in.Role),
		zap.String("round", in.Round), zap.Int32("attempt", out.Attempt))

	var lease Lease
	var stocked *stockWallet
	if m == create {
		if lease, stocked, err = a.takeStock(ctx, leaseKey(in.EscrowID, in.Role)); err != nil {
			return out, classify(err)
		}
	}
	if lease == nil {
		if lease, err = a.leases.Acquire(ctx, leaseKey(in.EscrowID, in.Role)); err != nil {
			return out, classify(err)
		}
	}
	out.LeaseWaitMs, out.Slot = lease.Wait().Milliseconds(), lease.Slot()
	a.metrics.LeaseWait(lease.Wait())
	log = log.With(zap.Int("slot", lease.Slot()))
	log.Info("lease acquired", zap.Int64("wait_ms", out.LeaseWaitMs))
	r := &run{a: a, in: in, w: lease.Wallet(), password: password, log: log}
	newState := ""
	defer func() {
		out.RPCMs = r.rpc.Milliseconds()
		if err != nil {
			lease.Discard() // the open wallet's state is unknown now
			err = classify(a.diskFault(err))
			return
		}
		lease.Release(newState)
	}()

	tag := attemptTag(ctx)
	working, at := parseLeaseState(lease.State())
	switch {
	case m == create && stocked != nil:
		working = stocked.name
		out.Stock = true
		if err := r.call(ctx, "change_wallet_password", func(ctx context.Context) error {
			return r.w.ChangeWalletPassword(ctx, stocked.password, password)
		}); err != nil {
			return out, err
		}
	case m == create:
		working = workName(in.EscrowID, in.Role, tag)
		if err := r.call(ctx, "create_wallet", func(ctx context.Context) error {
			return r.w.CreateWallet(ctx, working, password)
		}); err != nil {
			return out, err
		}
	case working == "" || at != in.Snapshot:
		working = workName(in.EscrowID, in.Role, tag)
		if err := a.reopen(ctx, r, in.Snapshot, working); err != nil {
			return out, err
		}
		out.Recovered = true
	}
	if err := fn(ctx, r, &out); err != nil {
		return out, err
	}
	out.Snapshot = in.Snapshot
	if m != readOnly {
		if err := r.call(ctx, "store", r.w.Store); err != nil {
			return out, err
		}
		snap := snapshotName(in.EscrowID, in.Role, in.Round, tag)
		if _, err := a.store.Snapshot(working, snap); err != nil {
			log.Error("atomic copy failed", zap.String("src", working), zap.String("dst", snap), zap.Error(err))
			return out, err
		}
		log.Info("atomic copy", zap.String("src", working), zap.String("dst", snap))
		out.Snapshot = snap
	}
	newState = leaseState(working, out.Snapshot)
	return out, nil
}

// diskFault attaches the wallet dir's fault to a failed wallet-rpc call.
// wallet-rpc reports a save that failed on a full or read-only disk as a
// generic error -1 ("failed to save file …"), which alone would be typed as
// a bad peer message or a wallet refusal.
func (a *Activities) diskFault(err error) error {
	var rpcErr *rpcclient.RPCError
	if !errors.As(err, &rpcErr) {
		return err
	}
	if fault := walletstore.DirFault(a.store.Dir()); fault != nil {
		return fmt.Errorf("%w (wallet-rpc %s failed: %s)", fault, rpcErr.Method, rpcErr.Message)
	}
	return err
}

// reopen is the recovery path: copy the committed snapshot to a fresh
// working name, open it, and re-enable experimental multisig (the flag is
// not kept across close and open; without it exchange_multisig_keys fails
// with -48).
func (a *Activities) reopen(ctx context.Context, r *run, snapshot, working string) error {
	if _, err := a.store.Restore(snapshot, working); err != nil {
		return err
	}
	r.log.Info("atomic copy", zap.String("src", snapshot), zap.String("dst", working))
	if err := r.call(ctx, "open_wallet", func(ctx context.Context) error {
		return r.w.OpenWallet(ctx, working, r.password)
	}); err != nil {
		return err
	}
	return r.call(ctx, "prepare_multisig", func(ctx context.Context) error {
		_, err := r.w.PrepareMultisig(ctx, true)
		if rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig) {
			return nil // expected on a multisig wallet; the flag is set anyway
		}
		return err
	})
}

// keepAlive heartbeats until the returned stop function is called, so a
// worker that died is noticed within the heartbeat timeout and a cancelled
// activity learns of it.
func (a *Activities) keepAlive(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(a.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// CreateWallet creates the role's wallet and commits its first snapshot.
func (a *Activities) CreateWallet(ctx context.Context, in StepInput) (StepOutput, error) {
	return a.step(ctx, in, create, func(ctx context.Context, r *run, out *StepOutput) error {
		return r.call(ctx, "get_address", func(ctx context.Context) (err error) {
			out.Address, err = r.w.GetAddress(ctx)
			return err
		})
	})
}

// PrepareMultisig returns the role's first multisig message. It changes no
// wallet file, so it returns its input snapshot.
func (a *Activities) PrepareMultisig(ctx context.Context, in StepInput) (StepOutput, error) {
	return a.step(ctx, in, readOnly, func(ctx context.Context, r *run, out *StepOutput) error {
		return r.call(ctx, "prepare_multisig", func(ctx context.Context) (err error) {
			out.MultisigInfo, err = r.w.PrepareMultisig(ctx, true)
			return err
		})
	})
}

// MakeMultisig turns the role's wallet into a 2-of-3 multisig wallet from
// the peers' PrepareMultisig messages and commits a snapshot.
func (a *Activities) MakeMultisig(ctx context.Context, in StepInput) (StepOutput, error) {
	if err := checkPeers(in); err != nil {
		return StepOutput{}, classify(err)
	}
	return a.step(ctx, in, commit, func(ctx context.Context, r *run, out *StepOutput) error {
		return r.call(ctx, "make_multisig", func(ctx context.Context) error {
			res, err := r.w.MakeMultisig(ctx, in.PeerInfos, escrow.Threshold, r.password)
			out.MultisigInfo, out.Address = res.MultisigInfo, res.Address
			return err
		})
	})
}

// ExchangeMultisigKeys runs one key-exchange round with the peers' previous
// messages and commits a snapshot. The last round returns the multisig
// address.
func (a *Activities) ExchangeMultisigKeys(ctx context.Context, in StepInput) (StepOutput, error) {
	if err := checkPeers(in); err != nil {
		return StepOutput{}, classify(err)
	}
	return a.step(ctx, in, commit, func(ctx context.Context, r *run, out *StepOutput) error {
		return r.call(ctx, "exchange_multisig_keys", func(ctx context.Context) error {
			res, err := r.w.ExchangeMultisigKeys(ctx, in.PeerInfos, r.password)
			out.MultisigInfo, out.Address = res.MultisigInfo, res.Address
			return err
		})
	})
}

// VerifyMultisig reports the role's multisig status and address. It
// changes no wallet file.
func (a *Activities) VerifyMultisig(ctx context.Context, in StepInput) (StepOutput, error) {
	return a.step(ctx, in, readOnly, func(ctx context.Context, r *run, out *StepOutput) error {
		if err := r.call(ctx, "is_multisig", func(ctx context.Context) error {
			st, err := r.w.IsMultisig(ctx)
			out.Multisig, out.Ready, out.Threshold, out.Total = st.Multisig, st.Ready, st.Threshold, st.Total
			return err
		}); err != nil {
			return err
		}
		return r.call(ctx, "get_address", func(ctx context.Context) (err error) {
			out.Address, err = r.w.GetAddress(ctx)
			return err
		})
	})
}

// checkPeers rejects a round input without exactly two distinct, non-empty
// peer messages before any wallet is touched.
func checkPeers(in StepInput) error {
	if len(in.PeerInfos) != escrow.Total-1 {
		return &escrow.InvalidMultisigMessageError{Reason: fmt.Sprintf("want %d peer messages, got %d", escrow.Total-1, len(in.PeerInfos))}
	}
	if in.PeerInfos[0] == in.PeerInfos[1] {
		return &escrow.InvalidMultisigMessageError{Reason: "the two peer messages are identical"}
	}
	for _, m := range in.PeerInfos {
		if len(m) < 8 || len(m) > 64<<10 || !strings.HasPrefix(m, "Multisig") {
			return &escrow.InvalidMultisigMessageError{Reason: "peer message is not a Monero multisig message"}
		}
	}
	return nil
}
