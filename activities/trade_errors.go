package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

// classifyTrade types the trade's own errors (escrow/errors.go), or returns
// nil. Each is non-retryable for the activity: a retry of the same input
// cannot change it; NoncesSpent is retried by the workflow after a fresh
// multisig info exchange.
func classifyTrade(err error) error {
	var (
		noDaemon *escrow.NoDaemonError
		unsafe   *escrow.UnsafeWalletRPCError
		mismatch *escrow.PayoutMismatchError
		second   *escrow.SecondPayoutError
		nonces   *escrow.NoncesSpentError
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
		typ = escrow.TypeInvalidInput
	default:
		return nil
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
}
