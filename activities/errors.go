package activities

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

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
		badID    *escrow.InvalidEscrowIDError
		badInput *escrow.InvalidInputError
		badMsg   *escrow.InvalidMultisigMessageError
		dup      *escrow.DuplicateEscrowError
		verify   *escrow.VerificationError
		rpcErr   *rpcclient.RPCError
		httpErr  *rpcclient.HTTPError
	)
	switch {
	case errors.As(err, &badID), errors.As(err, &badInput), errors.Is(err, walletstore.ErrInvalidName):
		return nonRetryable(escrow.TypeInvalidInput)
	case errors.As(err, &badMsg):
		return nonRetryable(escrow.TypeInvalidMultisigMessage)
	case errors.As(err, &dup):
		return nonRetryable(escrow.TypeDuplicateEscrow)
	case errors.As(err, &verify):
		return nonRetryable(escrow.TypeVerificationFailed)
	case errors.Is(err, walletstore.ErrCorrupt), errors.Is(err, walletstore.ErrNotFound):
		return nonRetryable(escrow.TypeCorruptSnapshot)
	case walletstore.IsDiskFull(err):
		return nonRetryable(escrow.TypeDiskFull)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return nonRetryable(escrow.TypeWalletDirUnwritable)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &rpcErr) && !rpcclient.IsRetryable(err):
		if rpcErr.Code == rpcclient.CodeUnknown && isMultisigMethod(rpcErr.Method) {
			return nonRetryable(escrow.TypeInvalidMultisigMessage)
		}
		return nonRetryable(escrow.TypeWalletRejected)
	case errors.As(err, &httpErr) && !rpcclient.IsRetryable(err):
		return nonRetryable(escrow.TypeWalletRejected) // e.g. 401: wrong --rpc-login credentials
	case rpcclient.IsRetryable(err), errors.As(err, &rpcErr):
		return temporal.NewApplicationErrorWithCause(err.Error(), escrow.TypeWalletUnavailable, err)
	}
	return err
}

func isMultisigMethod(m string) bool {
	return m == "make_multisig" || m == "exchange_multisig_keys"
}
