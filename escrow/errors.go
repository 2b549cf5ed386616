package escrow

import (
	"errors"
	"fmt"
)

/*
Failures of an escrow, in one place.

An escrow's workflow that ends without a result carries a failure type: the
Type of the *temporal.ApplicationError the workflow failed with (the activity
types below, and TypeWorkerLost, set by the workflow), or one of
TypeCancelled, TypeTerminated, TypeTimeout and TypeUnknown for runs that
ended otherwise. The strings are stable: workflows, starters, the status
query's reasonType, the EscrowState search attribute's users and operators
match on them.

Inside the worker, activities return the typed Go errors below and translate
them once, at the activity boundary, into application errors of the matching
type; every type but TypeWalletUnavailable and TypeWorkerBusy is
non-retryable (NonRetryableTypes). Workflow code branches on the type:

	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case escrow.TypeDuplicateEscrow:
			// the escrow id was used before: pick a new one
		case escrow.TypeInvalidMultisigMessage, escrow.TypeVerificationFailed:
			// a peer or a wallet misbehaved: the escrow cannot complete
		}
	}

A backend using the starter package gets Go errors instead:

	run, err := sc.Start(ctx, id)
	var invalid *escrow.InvalidEscrowIDError
	switch {
	case errors.As(err, &invalid):
		// bad input: nothing was started
	case errors.Is(err, escrow.ErrDuplicateEscrow):
		// *DuplicateEscrowError: the id was used before, by this or another run
	}

	res, err := sc.Wait(ctx, id)
	var failed *escrow.EscrowFailedError
	switch {
	case errors.Is(err, escrow.ErrEscrowNotFound):
		// no escrow of that id
	case errors.As(err, &failed):
		// failed.Type is one of the Type* constants
	}
*/

// Failure types of application errors, set by the activities (and
// TypeWorkerLost by the workflow). Every type but TypeWalletUnavailable and
// TypeWorkerBusy is non-retryable.
const (
	// TypeInvalidInput: a malformed escrow id, role or round input.
	TypeInvalidInput = "InvalidInput"
	// TypeDuplicateEscrow: the escrow id already has wallets or a claim
	// from another workflow run.
	TypeDuplicateEscrow = "DuplicateEscrow"
	// TypeInvalidMultisigMessage: a peer message that is not a valid
	// multisig message for this round (garbage, truncated, replayed, wrong
	// round).
	TypeInvalidMultisigMessage = "InvalidMultisigMessage"
	// TypeWalletRejected: monero-wallet-rpc refused the call for a reason a
	// retry cannot change (wrong password, already multisig, …).
	TypeWalletRejected = "WalletRejected"
	// TypeCorruptSnapshot: a committed snapshot no longer matches its
	// checksums, or is missing.
	TypeCorruptSnapshot = "CorruptSnapshot"
	// TypeDiskFull: the wallet dir's file system is full.
	TypeDiskFull = "DiskFull"
	// TypeWalletDirUnwritable: the wallet dir is read-only or not ours.
	TypeWalletDirUnwritable = "WalletDirUnwritable"
	// TypeVerificationFailed: the roles disagree on the multisig address or
	// a wallet is not a ready 2-of-3 multisig wallet.
	TypeVerificationFailed = "VerificationFailed"
	// TypeWalletUnavailable: wallet-rpc did not answer or died (retryable).
	TypeWalletUnavailable = "WalletUnavailable"
	// TypeWorkerBusy: the worker holds as many escrows as it may; another
	// worker or a later retry claims the escrow (retryable).
	TypeWorkerBusy = "WorkerBusy"
	// TypeWorkerLost: the worker holding the escrow's wallet files stopped
	// polling its task queue for longer than the escrow allows (set by the
	// workflow, not an activity). Retry the order under a new escrow id.
	TypeWorkerLost = "WorkerLost"
)

// Failure types of runs that ended without an application error.
const (
	// TypeCancelled: the escrow's workflow was cancelled.
	TypeCancelled = "Cancelled"
	// TypeTerminated: the escrow's workflow was terminated (by an operator);
	// it ran no clean-up.
	TypeTerminated = "Terminated"
	// TypeTimeout: the escrow's workflow hit an execution or run timeout.
	TypeTimeout = "Timeout"
	// TypeUnknown: the workflow failed without an application error type.
	TypeUnknown = "Unknown"
)

// Failure types of the trade (ApplicationError.Type of a failed trade or of
// its activities).
const (
	// TypeNoDaemon: the worker runs without --daemon-address, so it cannot
	// see or move funds; the trade fails at start, nothing created.
	TypeNoDaemon = "NoDaemon"
	// TypeUnsafeWalletRpc: the worker's monero-wallet-rpc is older than
	// v0.18.5.1 (it does not persist the erasure of used multisig nonces)
	// and the daemon is on mainnet: nothing is signed.
	TypeUnsafeWalletRpc = "UnsafeWalletRpc"
	// TypePayoutMismatch: a co-signer's describe_transfer of the unsigned
	// payout does not match the decision (another address, another amount,
	// a lock time, change elsewhere, a fee out of bounds): nothing signed.
	TypePayoutMismatch = "PayoutMismatch"
	// TypeSecondPayout: the escrow already has a signed payout and a
	// different transaction was presented for signing: refused.
	TypeSecondPayout = "SecondPayout"
	// TypeNoncesSpent: a payout creation's outcome is unknown (the attempt
	// died after transfer); the signers must export and import fresh
	// multisig info before another transaction is created. The trade
	// workflow handles it by redoing the exchange; it never reaches users.
	TypeNoncesSpent = "NoncesSpent"
	// TypeDepositExpired: no sufficient deposit arrived within the trade's
	// deposit timeout (the trade ends EXPIRED, what arrived is refunded).
	TypeDepositExpired = "DepositExpired"
)

// NonRetryableTypes lists the error types a retry cannot fix.
var NonRetryableTypes = []string{
	TypeInvalidInput, TypeDuplicateEscrow, TypeInvalidMultisigMessage, TypeWalletRejected,
	TypeCorruptSnapshot, TypeDiskFull, TypeWalletDirUnwritable, TypeVerificationFailed,
}

// NonRetryableTradeTypes lists the trade's failure types that no activity
// retry can fix (NoncesSpent is retried by the workflow, with a fresh
// multisig info exchange).
var NonRetryableTradeTypes = []string{
	TypeNoDaemon, TypeUnsafeWalletRpc, TypePayoutMismatch, TypeSecondPayout, TypeNoncesSpent,
}

// NoDaemonError: the worker has no daemon, or one on another network.
type NoDaemonError struct{ Reason string }

func (e *NoDaemonError) Error() string { return "no usable daemon: " + e.Reason }

// UnsafeWalletRPCError: a mainnet daemon and a wallet-rpc that does not
// store the erasure of used multisig nonces.
type UnsafeWalletRPCError struct{ Version string }

func (e *UnsafeWalletRPCError) Error() string {
	return "monero-wallet-rpc " + e.Version + " does not store the erasure of used multisig nonces " +
		"(fixed in v0.18.5.1); it may not sign against a mainnet daemon"
}

// PayoutMismatchError: a payout transaction differs from its plan.
type PayoutMismatchError struct{ Reason string }

func (e *PayoutMismatchError) Error() string {
	return "payout does not match the decision: " + e.Reason
}

// SecondPayoutError: a different payout than the one signed (or being
// signed) for the escrow.
type SecondPayoutError struct{ Reason string }

func (e *SecondPayoutError) Error() string { return "second payout refused: " + e.Reason }

// NoncesSpentError: the signer's multisig nonces are, or may be, used up;
// the signers must export and import fresh multisig info first.
type NoncesSpentError struct{ Reason string }

func (e *NoncesSpentError) Error() string {
	return "fresh multisig info needed (export and import again): " + e.Reason
}

var (
	// ErrDuplicateEscrow matches, with errors.Is, every error that reports an
	// escrow id that was already used: a *DuplicateEscrowError, and an
	// *EscrowFailedError of type DuplicateEscrow (a run started outside the
	// starter package, e.g. with `temporal workflow start`, whose escrow id
	// was already claimed).
	ErrDuplicateEscrow = errors.New("escrow already exists")

	// ErrEscrowNotFound is wrapped by the errors of the starter's Status,
	// Describe, Result and Wait when no workflow exists for the escrow id.
	ErrEscrowNotFound = errors.New("escrow not found")
)

// InvalidEscrowIDError reports an escrow id that does not match
// EscrowIDPattern. Escrow ids become parts of file names, so nothing else is
// accepted. Activities report it as TypeInvalidInput.
type InvalidEscrowIDError struct{ ID string }

func (e *InvalidEscrowIDError) Error() string {
	return fmt.Sprintf("invalid escrow id %q: want 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", e.ID)
}

// InvalidInputError reports a malformed activity input field
// (TypeInvalidInput).
type InvalidInputError struct{ Field, Value string }

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("invalid %s %q", e.Field, e.Value)
}

// InvalidMultisigMessageError reports a peer message rejected before it
// reached a wallet (TypeInvalidMultisigMessage). It never quotes the
// message: kex messages carry key material.
type InvalidMultisigMessageError struct{ Reason string }

func (e *InvalidMultisigMessageError) Error() string {
	return "invalid multisig message: " + e.Reason
}

// DuplicateEscrowError reports an escrow id that was already used
// (TypeDuplicateEscrow): the starter's Start returns it when the escrow's
// workflow id was already used, by a running or by a closed run (RunID is
// that run when Temporal reported it); the ClaimEscrow activity returns it
// when another workflow run already claimed the id (Detail says how).
// errors.Is(err, ErrDuplicateEscrow) is true.
type DuplicateEscrowError struct {
	EscrowID string
	// RunID is the run id of the existing run when Temporal reported it.
	RunID string
	// Detail says what of the earlier run the worker found.
	Detail string
	// Err is the underlying error (for Start, the Temporal
	// *serviceerror.WorkflowExecutionAlreadyStarted), or nil.
	Err error
}

func (e *DuplicateEscrowError) Error() string {
	switch {
	case e.Detail != "":
		return fmt.Sprintf("escrow %q already exists: %s", e.EscrowID, e.Detail)
	case e.RunID == "":
		return fmt.Sprintf("escrow %q already exists (workflow %s)", e.EscrowID, WorkflowID(e.EscrowID))
	}
	return fmt.Sprintf("escrow %q already exists (workflow %s, run %s)", e.EscrowID, WorkflowID(e.EscrowID), e.RunID)
}

// Is reports whether target is ErrDuplicateEscrow.
func (e *DuplicateEscrowError) Is(target error) bool { return target == ErrDuplicateEscrow }

// Unwrap returns Err.
func (e *DuplicateEscrowError) Unwrap() error { return e.Err }

// VerificationError reports roles that disagree or are not ready
// (TypeVerificationFailed).
type VerificationError struct{ Reason string }

func (e *VerificationError) Error() string { return "multisig verification failed: " + e.Reason }

// EscrowFailedError is returned by the starter's Result and Wait for an
// escrow whose workflow ended without a result. Type says why: the
// application error type the workflow failed with (TypeDuplicateEscrow,
// TypeInvalidMultisigMessage, …), TypeCancelled, TypeTerminated, TypeTimeout
// or TypeUnknown. When Type is TypeDuplicateEscrow, errors.Is(err,
// ErrDuplicateEscrow) is true. The Temporal error
// (*temporal.WorkflowExecutionError and its causes) stays reachable with
// errors.As.
type EscrowFailedError struct {
	EscrowID string
	Type     string
	Message  string
	// Err is the Temporal error the workflow run ended with.
	Err error
}

func (e *EscrowFailedError) Error() string {
	return fmt.Sprintf("escrow %q failed (%s): %s", e.EscrowID, e.Type, e.Message)
}

// Is reports whether target is ErrDuplicateEscrow and the escrow failed
// because its id was already claimed.
func (e *EscrowFailedError) Is(target error) bool {
	return target == ErrDuplicateEscrow && e.Type == TypeDuplicateEscrow
}

// Unwrap returns Err.
func (e *EscrowFailedError) Unwrap() error { return e.Err }

// NotFinishedError is returned by the starter's Result for an escrow whose
// workflow is still running. State is the escrow's last state as its
// EscrowState search attribute reports it (empty if not yet indexed).
type NotFinishedError struct {
	EscrowID string
	State    State
}

func (e *NotFinishedError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("escrow %q is not finished yet", e.EscrowID)
	}
	return fmt.Sprintf("escrow %q is not finished yet (state %s)", e.EscrowID, e.State)
}
