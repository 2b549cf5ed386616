package escrow

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SetupInput is the workflow input: JSON {"escrowId":"…"}. Fields added later
// are optional; unknown fields are ignored.
type SetupInput struct {
	EscrowID string `json:"escrowId"`
	// WorkerLostAfter is how long the escrow's wallet activities may wait
	// for the worker that holds its files to poll before the escrow fails
	// with WorkerLost; 0 means DefaultWorkerLostAfter.
	WorkerLostAfter time.Duration `json:"workerLostAfter,omitempty"`
	// Custody says, per role, who holds its wallet: "hosted" (the default)
	// or "external" (buyer and vendor only; see Custody).
	Custody map[Role]Custody `json:"custody,omitempty"`
	// Participants carries each external role's public key.
	Participants map[Role]Participant `json:"participants,omitempty"`
	// ParticipantDeadline is how long a round waits for an external
	// participant's message, a Go duration ("10m", the default).
	ParticipantDeadline string `json:"participantDeadline,omitempty"`

	// malformed is why the input, valid JSON of another shape ([], "x",
	// {"escrowId":5}), did not decode; EscrowSetup fails such a run with
	// InvalidInput.
	malformed string
}

// UnmarshalJSON decodes {"escrowId":"…"}. Valid JSON of another shape is
// not a decoding error, which the SDK would report as an untyped workflow
// failure before EscrowSetup runs: it is recorded, and EscrowSetup fails the
// run with InvalidInput like any other bad input.
func (in *SetupInput) UnmarshalJSON(b []byte) error {
	type plain SetupInput // without this method
	p, malformed := DecodeInput[plain](b, `{"escrowId":"…"}`, ", want a string")
	*in = SetupInput(p)
	in.malformed = malformed
	return nil
}

// DecodeInput decodes a workflow input of type T from b. Valid JSON of
// another shape is no error: it returns T's zero value and why it did not
// decode ("got a JSON <kind>, want <whole>" or "<field> is a JSON
// <kind><field suffix>"), so that the workflow records the failure and
// fails the run with InvalidInput like any other bad input.
func DecodeInput[T any](b []byte, whole, fieldSuffix string) (v T, malformed string) {
	err := json.Unmarshal(b, &v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return v, ""
	case errors.As(err, &typeErr) && typeErr.Field == "":
		malformed = fmt.Sprintf("got a JSON %s, want %s", typeErr.Value, whole)
	case errors.As(err, &typeErr):
		malformed = fmt.Sprintf("%s is a JSON %s%s", typeErr.Field, typeErr.Value, fieldSuffix)
	default:
		malformed = err.Error()
	}
	var zero T
	return zero, malformed
}

// Malformed says why the input, valid JSON of another shape, did not
// decode ("" for a well-formed input).
func (in SetupInput) Malformed() string { return in.malformed }

// WalletResult is one role's final wallet: the committed snapshot name (in
// the worker's wallet dir) and the address that wallet reports.
type WalletResult struct {
	Wallet  string `json:"wallet"`
	Address string `json:"address"`
	// Custody is "external" for a participant's own wallet (Wallet is
	// then empty: the worker has no file of it).
	Custody Custody `json:"custody,omitempty"`
}

// RoundTiming is one role's run of one round.
type RoundTiming struct {
	Round       Round     `json:"round"`
	Role        Role      `json:"role"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Attempts    int32     `json:"attempts"`
	LeaseWaitMs int64     `json:"leaseWaitMs"`
	RPCMs       int64     `json:"rpcMs"`
	Recovered   bool      `json:"recovered,omitempty"`
	// External marks an external participant's message: Finished is when
	// its update was accepted.
	External bool `json:"external,omitempty"`
}

// SetupResult is the workflow result.
type SetupResult struct {
	EscrowID        string                `json:"escrowId"`
	MultisigAddress string                `json:"multisigAddress"`
	Wallets         map[Role]WalletResult `json:"wallets"`
	Rounds          []RoundTiming         `json:"rounds"`
	// HostTaskQueue is the task queue of the worker holding the escrow's
	// wallet files, where later activities on them (the trade's) must run.
	HostTaskQueue string `json:"hostTaskQueue,omitempty"`
}

// Confirmed reports whether every role's wallet reports the multisig
// address.
func (r *SetupResult) Confirmed() bool {
	if r == nil || r.MultisigAddress == "" {
		return false
	}
	for _, role := range Roles {
		if r.Wallets[role].Address != r.MultisigAddress {
			return false
		}
	}
	return true
}

// RoleStatus is one role's progress.
type RoleStatus struct {
	Round Round  `json:"round"`
	Step  string `json:"step"` // "running", "waiting" (for a participant), "done" or "failed"
	// Custody is "external" for a role whose participant holds its wallet.
	Custody Custody `json:"custody,omitempty"`
}

// Status answers the "status" query.
type Status struct {
	EscrowID string              `json:"escrowId"`
	State    State               `json:"state"`
	Roles    map[Role]RoleStatus `json:"roles"`
	// Reason and ReasonType explain a FAILED state.
	Reason     string `json:"reason,omitempty"`
	ReasonType string `json:"reasonType,omitempty"`
}
