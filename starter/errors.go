package starter

import (
	"errors"
	"fmt"

	"github.com/escrowflow/escrowflow/escrow"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
)

// The errors of this package are the contract's (package escrow); these
// names keep them reachable from here.
type (
	// DuplicateEscrowError is escrow.DuplicateEscrowError: Start returns it
	// when the escrow's workflow id was already used.
	DuplicateEscrowError = escrow.DuplicateEscrowError
	// EscrowFailedError is escrow.EscrowFailedError: Result and Wait return
	// it for an escrow whose workflow ended without a result.
	EscrowFailedError = escrow.EscrowFailedError
	// NotFinishedError is escrow.NotFinishedError: Result returns it for an
	// escrow whose workflow is still running.
	NotFinishedError = escrow.NotFinishedError
)

var (
	// ErrDuplicateEscrow is escrow.ErrDuplicateEscrow.
	ErrDuplicateEscrow = escrow.ErrDuplicateEscrow
	// ErrEscrowNotFound is escrow.ErrEscrowNotFound.
	ErrEscrowNotFound = escrow.ErrEscrowNotFound
)

// rpcError gives an error of a Temporal service call its escrow context,
// mapping an unknown workflow to ErrEscrowNotFound.
func rpcError(escrowID, op string, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("escrow %q: %w", escrowID, ErrEscrowNotFound)
	}
	return fmt.Errorf("%s escrow %q: %w", op, escrowID, err)
}

// startError maps the error of ExecuteWorkflow.
func startError(escrowID string, err error) error {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return &DuplicateEscrowError{EscrowID: escrowID, RunID: started.RunId, Err: err}
	}
	return fmt.Errorf("start escrow %q: %w", escrowID, err)
}

// resultError maps the error of WorkflowRun.Get: a workflow that ended
// without a result becomes an *EscrowFailedError; everything else (context
// expiry, connection errors) is an error of the call.
func resultError(escrowID string, err error) error {
	if typ, msg, ok := failure(err); ok {
		return &EscrowFailedError{EscrowID: escrowID, Type: typ, Message: msg, Err: err}
	}
	return rpcError(escrowID, "wait for", err)
}

// failure returns the failure type and message of a workflow run's error
// (a *temporal.WorkflowExecutionError from the SDK): the outermost
// application error's type, else the kind of cancellation, termination or
// timeout. ok is false for errors of the call itself.
func failure(err error) (typ, msg string, ok bool) {
	var (
		appErr     *temporal.ApplicationError
		canceled   *temporal.CanceledError
		terminated *temporal.TerminatedError
		timeout    *temporal.TimeoutError
		execErr    *temporal.WorkflowExecutionError
	)
	switch {
	case errors.As(err, &appErr):
		typ = appErr.Type()
		if typ == "" {
			typ = escrow.TypeUnknown
		}
		return typ, appErr.Message(), true
	case errors.As(err, &canceled):
		return escrow.TypeCancelled, "the workflow was cancelled", true
	case errors.As(err, &terminated):
		return escrow.TypeTerminated, "the workflow was terminated", true
	case errors.As(err, &timeout):
		return escrow.TypeTimeout, "the workflow timed out", true
	case errors.As(err, &execErr):
		return escrow.TypeUnknown, err.Error(), true
	}
	return "", "", false
}
