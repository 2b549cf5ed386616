package escrow

import (
	"errors"
	"fmt"
)

// UpdateRejectedError is returned by the starter's trade update calls
// (Release, Refund, Dispute, Resolve, AnnounceDeposit) when the trade's
// validator refused the update: a decision before FUNDED, a second decision, resolve
// without a dispute, a bad share, a wrong role, a malformed announcement.
// Nothing was recorded. errors.Is(err, ErrUpdateRejected) is true.
type UpdateRejectedError struct {
	EscrowID string
	Update   string
	Reason   string

	Err error
}

// ErrUpdateRejected matches every *UpdateRejectedError with errors.Is.
var ErrUpdateRejected = errors.New("update rejected")

func (e *UpdateRejectedError) Error() string {
	return fmt.Sprintf("trade %q: %s rejected: %s", e.EscrowID, e.Update, e.Reason)
}

// Is reports whether target is ErrUpdateRejected.
func (e *UpdateRejectedError) Is(target error) bool { return target == ErrUpdateRejected }

// Unwrap returns Err, the Temporal error.
func (e *UpdateRejectedError) Unwrap() error { return e.Err }

// TradeUpdateError is returned by an update the trade accepted but whose
// handler failed: Type is the application error type (for example
// InvalidInput for an announced deposit whose tx key does not prove a
// payment to the multisig address).
type TradeUpdateError struct {
	EscrowID string
	Update   string
	Type     string
	Message  string

	Err error
}

func (e *TradeUpdateError) Error() string {
	return fmt.Sprintf("trade %q: %s failed (%s): %s", e.EscrowID, e.Update, e.Type, e.Message)
}

// Unwrap returns Err, the Temporal error.
func (e *TradeUpdateError) Unwrap() error { return e.Err }
