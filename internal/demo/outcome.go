package demo

import (
	"errors"
	"fmt"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/starter"
)

// ErrorInfo is an error as the JSON output shows it.
type ErrorInfo struct {
	// Type is the kind of error: an escrow failure type (DuplicateEscrow,
	// InvalidMultisigMessage, Cancelled, …), InvalidEscrowID, NotFound,
	// NotFinished, or Error for anything else.
	Type    string `json:"type"`
	Message string `json:"message"`
}

// DescribeError is err as the JSON output shows it (nil for nil).
func DescribeError(err error) *ErrorInfo {
	if err == nil {
		return nil
	}
	var (
		invalid  *escrow.InvalidEscrowIDError
		dup      *starter.DuplicateEscrowError
		failed   *starter.EscrowFailedError
		notDone  *starter.NotFinishedError
		typ, msg = "Error", err.Error()
	)
	switch {
	case errors.As(err, &invalid):
		typ = "InvalidEscrowID"
	case errors.As(err, &dup):
		typ = escrow.TypeDuplicateEscrow
	case errors.As(err, &failed):
		typ, msg = failed.Type, failed.Message
	case errors.As(err, &notDone):
		typ = "NotFinished"
	case errors.Is(err, starter.ErrEscrowNotFound):
		typ = "NotFound"
	}
	return &ErrorInfo{Type: typ, Message: msg}
}

// Outcome is one escrow's outcome of escrowctl's start or demo.
type Outcome struct {
	EscrowID   string              `json:"escrowId"`
	WorkflowID string              `json:"workflowId,omitempty"`
	RunID      string              `json:"runId,omitempty"`
	Error      *ErrorInfo          `json:"error,omitempty"`
	Result     *escrow.SetupResult `json:"result,omitempty"`
	// Confirmed reports whether all three roles' wallets report the
	// multisig address (only with a result).
	Confirmed *bool `json:"confirmed,omitempty"`

	err error
}

// SetErr records that the escrow failed with err.
func (o *Outcome) SetErr(err error) {
	o.err, o.Error = err, DescribeError(err)
}

// SetResult records Wait's answer.
func (o *Outcome) SetResult(res *escrow.SetupResult, err error) {
	if err != nil {
		o.SetErr(err)
		return
	}
	o.Result = res
	ok := res.Confirmed()
	o.Confirmed = &ok
}

// Failed reports whether the escrow failed or is not confirmed.
func (o *Outcome) Failed() bool {
	return o.err != nil || (o.Confirmed != nil && !*o.Confirmed)
}

// Mark is ✓ for ok, ✗ otherwise.
func Mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// Err is the error the escrow failed with (nil: none).
func (o *Outcome) Err() error { return o.err }

// CountFailed returns an error naming how many escrows failed.
func CountFailed(outs []Outcome) error {
	n := 0
	for i := range outs {
		if outs[i].Failed() {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d escrows failed or are not confirmed", n, len(outs))
}
