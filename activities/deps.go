package activities

import (
	"context"
	"time"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// The small interfaces the activities consume: what the worker wires in
// (package pool, its metrics, Temporal visibility) and what the tests fake.

// Wallet is the part of the monero-wallet-rpc client the activities use.
// *rpcclient.Client implements it.
type Wallet interface {
	CreateWallet(ctx context.Context, filename, password string) error
	OpenWallet(ctx context.Context, filename, password string) error
	CloseWallet(ctx context.Context) error
	DropWallet(ctx context.Context) error
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

// RunHistory reports runs of a workflow id (Temporal visibility).
type RunHistory interface {
	// OtherRuns returns how many runs of workflowID other than runID exist.
	OtherRuns(ctx context.Context, workflowID, runID string) (int, error)
	// Running reports whether the run is still open.
	Running(ctx context.Context, workflowID, runID string) (bool, error)
}

// FinishEvent describes an escrow FinishEscrow has handled.
type FinishEvent struct {
	EscrowID, WorkflowID, RunID, Outcome string
}

type noMetrics struct{}

func (noMetrics) LeaseWait(time.Duration)              {}
func (noMetrics) RPCCall(string, time.Duration, error) {}
func (noMetrics) EscrowFinished(string)                {}
