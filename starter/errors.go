package starter

import (
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/workflows"
)

// Failure types that EscrowFailedError.Type takes besides the workflow's own
// application error types (the activities.Type* constants, and "Cancelled",
// "Timeout" and "Unknown" from the workflow).
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

var (
	// ErrDuplicateEscrow matches, with errors.Is, every error that reports an
	// escrow id that was already used: a *DuplicateEscrowError from Start,
	// and an *EscrowFailedError of type DuplicateEscrow from Result or Wait
	// (a run started outside this package, e.g. with `temporal workflow
	// start`, whose escrow id was already claimed).
	ErrDuplicateEscrow = errors.New("escrow already exists")

	// ErrEscrowNotFound is wrapped by the errors of Status, Describe, Result
	// and Wait when no workflow exists for the escrow id.
	ErrEscrowNotFound = errors.New("escrow not found")
)

// DuplicateEscrowError is returned by Start when the escrow's workflow id was
// already used, by a running or by a closed run: an escrow id can be set up
// only once. errors.Is(err, ErrDuplicateEscrow) is true.
type DuplicateEscrowError struct {
	EscrowID string
	// RunID is the run id of the existing run when Temporal reported it.
	RunID string

	cause error
}

func (e *DuplicateEscrowError) Error() string {
	if e.RunID == "" {
		return fmt.Sprintf("escrow %q already exists (workflow %s)", e.EscrowID, workflows.WorkflowID(e.EscrowID))
	}
	return fmt.Sprintf("escrow %q already exists (workflow %s, run %s)", e.EscrowID, workflows.WorkflowID(e.EscrowID), e.RunID)
}

// Is reports whether target is ErrDuplicateEscrow.
func (e *DuplicateEscrowError) Is(target error) bool { return target == ErrDuplicateEscrow }

// Unwrap returns the Temporal error, a *serviceerror.WorkflowExecutionAlreadyStarted.
func (e *DuplicateEscrowError) Unwrap() error { return e.cause }

// EscrowFailedError is returned by Result and Wait for an escrow whose
// workflow ended without a result. Type says why: the application error type
// the workflow failed with (activities.TypeDuplicateEscrow,
// activities.TypeInvalidMultisigMessage, …), TypeCancelled, TypeTerminated,
// TypeTimeout or TypeUnknown. When Type is activities.TypeDuplicateEscrow,
// errors.Is(err, ErrDuplicateEscrow) is true. The Temporal error
// (*temporal.WorkflowExecutionError and its causes) stays reachable with
// errors.As.
type EscrowFailedError struct {
	EscrowID string
	Type     string
	Message  string

	cause error
}

func (e *EscrowFailedError) Error() string {
	return fmt.Sprintf("escrow %q failed (%s): %s", e.EscrowID, e.Type, e.Message)
}

// Is reports whether target is ErrDuplicateEscrow and the escrow failed
// because its id was already claimed.
func (e *EscrowFailedError) Is(target error) bool {
	return target == ErrDuplicateEscrow && e.Type == activities.TypeDuplicateEscrow
}

// Unwrap returns the Temporal error the workflow run ended with.
func (e *EscrowFailedError) Unwrap() error { return e.cause }

// NotFinishedError is returned by Result for an escrow whose workflow is
// still running. State is the escrow's last state as its EscrowState search
// attribute reports it (empty if not yet indexed).
type NotFinishedError struct {
	EscrowID string
	State    workflows.State
}

func (e *NotFinishedError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("escrow %q is not finished yet", e.EscrowID)
	}
	return fmt.Sprintf("escrow %q is not finished yet (state %s)", e.EscrowID, e.State)
}

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
		return &DuplicateEscrowError{EscrowID: escrowID, RunID: started.RunId, cause: err}
	}
	return fmt.Errorf("start escrow %q: %w", escrowID, err)
}

// resultError maps the error of WorkflowRun.Get: a workflow that ended
// without a result becomes an *EscrowFailedError; everything else (context
// expiry, connection errors) is an error of the call.
func resultError(escrowID string, err error) error {
	if typ, msg, ok := failure(err); ok {
		return &EscrowFailedError{EscrowID: escrowID, Type: typ, Message: msg, cause: err}
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
			typ = TypeUnknown
		}
		return typ, appErr.Message(), true
	case errors.As(err, &canceled):
		return TypeCancelled, "the workflow was cancelled", true
	case errors.As(err, &terminated):
		return TypeTerminated, "the workflow was terminated", true
	case errors.As(err, &timeout):
		return TypeTimeout, "the workflow timed out", true
	case errors.As(err, &execErr):
		return TypeUnknown, err.Error(), true
	}
	return "", "", false
}
