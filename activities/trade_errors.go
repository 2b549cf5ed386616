package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

// The trade's failures (types in escrow/trade.go). Each is non-retryable
// for the activity: a retry of the same input cannot change it. NoncesSpent
// is retryable by the workflow (it redoes the multisig info exchange).

// NoDaemonError: the worker has no daemon, or one on another network.
type NoDaemonError struct{ Reason string }

func (e *NoDaemonError) Error() string { return "no usable daemon: " + e.Reason }

// UnsafeWalletRPCError: a mainnet daemon and a wallet-rpc that does not
// persist the erasure of used multisig nonces.
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

// NonRetryableTradeTypes lists the trade's failure types that no activity
// retry can fix (for the trade workflow's retry policies).
var NonRetryableTradeTypes = []string{
	escrow.TypeNoDaemon, escrow.TypeUnsafeWalletRpc, escrow.TypePayoutMismatch,
	escrow.TypeSecondPayout, escrow.TypeNoncesSpent,
}

// classifyTrade types the trade's own errors, or returns nil.
func classifyTrade(err error) error {
	var (
		noDaemon *NoDaemonError
		unsafe   *UnsafeWalletRPCError
		mismatch *PayoutMismatchError
		second   *SecondPayoutError
		nonces   *NoncesSpentError
		addr     *AddressError
	)
	typ := ""
	switch {
	case errors.As(err, &noDaemon):
		typ = escrow.TypeNoDaemon
	case errors.As(err, &unsafe):
		typ = escrow.TypeUnsafeWalletRpc
	case errors.As(err, &mismatch):
		typ = escrow.TypePayoutMismatch
	case errors.As(err, &second):
		typ = escrow.TypeSecondPayout
	case errors.As(err, &nonces):
		typ = escrow.TypeNoncesSpent
	case errors.As(err, &addr):
		typ = TypeInvalidInput
	default:
		return nil
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
}
