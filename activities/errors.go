package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"syscall"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Error types of the application errors the activities return. They are
// stable: workflows, starters and users match on them. Every type but
// TypeWalletUnavailable and TypeWorkerBusy is non-retryable.
//
// A workflow branches on them with errors.As:
//
//	var appErr *temporal.ApplicationError
//	if errors.As(err, &appErr) && appErr.Type() == activities.TypeDuplicateEscrow { … }
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

// NonRetryableTypes lists the error types a retry cannot fix.
var NonRetryableTypes = []string{
	TypeInvalidInput, TypeDuplicateEscrow, TypeInvalidMultisigMessage, TypeWalletRejected,
	TypeCorruptSnapshot, TypeDiskFull, TypeWalletDirUnwritable, TypeVerificationFailed,
}

var escrowIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// InvalidEscrowIDError reports an escrow id that does not match
// ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$. Escrow ids become parts of file names,
// so nothing else is accepted.
type InvalidEscrowIDError struct{ ID string }

func (e *InvalidEscrowIDError) Error() string {
	return fmt.Sprintf("invalid escrow id %q: want 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit", e.ID)
}

// ValidateEscrowID returns an *InvalidEscrowIDError unless id is a valid
// escrow id.
func ValidateEscrowID(id string) error {
	if !escrowIDPattern.MatchString(id) {
		return &InvalidEscrowIDError{ID: id}
	}
	return nil
}

// InvalidInputError reports a malformed activity input field.
type InvalidInputError struct{ Field, Value string }

func (e *InvalidInputError) Error() string {
	return fmt.Sprintf("invalid %s %q", e.Field, e.Value)
}

// InvalidMultisigMessageError reports a peer message rejected before it
// reached a wallet. It never quotes the message: kex messages carry key
// material.
type InvalidMultisigMessageError struct{ Reason string }

func (e *InvalidMultisigMessageError) Error() string {
	return "invalid multisig message: " + e.Reason
}

// DuplicateEscrowError reports an escrow id that another workflow run
// already claimed.
type DuplicateEscrowError struct {
	EscrowID string
	Detail   string
}

func (e *DuplicateEscrowError) Error() string {
	return fmt.Sprintf("escrow %q already exists: %s", e.EscrowID, e.Detail)
}

// VerificationError reports roles that disagree or are not ready.
type VerificationError struct{ Reason string }

func (e *VerificationError) Error() string { return "multisig verification failed: " + e.Reason }

// classify translates an error into the application error Temporal acts
// on, once, at the activity boundary.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	if typed := classifyTrade(err); typed != nil {
		return typed
	}
	nonRetryable := func(typ string) error {
		return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
	}
	var (
		badID    *InvalidEscrowIDError
		badInput *InvalidInputError
		badMsg   *InvalidMultisigMessageError
		dup      *DuplicateEscrowError
		verify   *VerificationError
		rpcErr   *rpcclient.RPCError
		httpErr  *rpcclient.HTTPError
	)
	switch {
	case errors.As(err, &badID), errors.As(err, &badInput), errors.Is(err, walletstore.ErrInvalidName):
		return nonRetryable(TypeInvalidInput)
	case errors.As(err, &badMsg):
		return nonRetryable(TypeInvalidMultisigMessage)
	case errors.As(err, &dup):
		return nonRetryable(TypeDuplicateEscrow)
	case errors.As(err, &verify):
		return nonRetryable(TypeVerificationFailed)
	case errors.Is(err, walletstore.ErrCorrupt), errors.Is(err, walletstore.ErrNotFound):
		return nonRetryable(TypeCorruptSnapshot)
	case walletstore.IsDiskFull(err):
		return nonRetryable(TypeDiskFull)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return nonRetryable(TypeWalletDirUnwritable)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &rpcErr) && !rpcclient.IsRetryable(err):
		if rpcErr.Code == rpcclient.CodeUnknown && isMultisigMethod(rpcErr.Method) {
			return nonRetryable(TypeInvalidMultisigMessage)
		}
		return nonRetryable(TypeWalletRejected)
	case errors.As(err, &httpErr) && !rpcclient.IsRetryable(err):
		return nonRetryable(TypeWalletRejected) // e.g. 401: wrong --rpc-login credentials
	case rpcclient.IsRetryable(err), errors.As(err, &rpcErr):
		return temporal.NewApplicationErrorWithCause(err.Error(), TypeWalletUnavailable, err)
	}
	return err
}

func isMultisigMethod(m string) bool {
	return m == "make_multisig" || m == "exchange_multisig_keys"
}
