// Package workflows holds the EscrowSetup and EscrowTrade workflows:
// deterministic code only, plus the setup's input, result and status types
// that the worker, the starter and users (through the Temporal CLI and Web
// UI) rely on (the trade's are in package escrow).
package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/activities"
)

const (
	// TaskQueue is the task queue the worker polls and starters use.
	TaskQueue = "escrow-setup"
	// WorkflowName is the registered workflow type.
	WorkflowName = "EscrowSetup"
	// StatusQuery is the name of the query that answers a Status.
	StatusQuery = "status"
	// WorkflowIDPrefix prefixes the escrow id to form the workflow id.
	WorkflowIDPrefix = "escrow-"
)

// EscrowStateKey is the Keyword search attribute that mirrors Status.State,
// so that `temporal workflow list --query 'EscrowState="COMPLETED"'` and the
// Web UI can filter escrows. The Temporal namespace must have it registered.
var EscrowStateKey = temporal.NewSearchAttributeKeyKeyword("EscrowState")

// HostTaskQueuePrefix prefixes a worker id to form that worker's own task
// queue, where the wallet activities of the escrows it holds run.
const HostTaskQueuePrefix = TaskQueue + "-host-"

// HostTaskQueue returns the task queue of the worker workerID.
func HostTaskQueue(workerID string) string { return HostTaskQueuePrefix + workerID }

// DefaultWorkerLostAfter is how long wallet activities wait for their
// worker to poll (Temporal's ScheduleToStart timeout) before the escrow
// fails with WorkerLost. A worker restart takes seconds; this covers a
// host reboot.
const DefaultWorkerLostAfter = 2 * time.Minute

// WorkflowID returns the workflow id of the escrow escrowID.
func WorkflowID(escrowID string) string { return WorkflowIDPrefix + escrowID }

// InvalidEscrowIDError reports an escrow id that does not match
// ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ (escrow ids become parts of file names).
type InvalidEscrowIDError = activities.InvalidEscrowIDError

// ValidateEscrowID returns an *InvalidEscrowIDError unless id is a valid
// escrow id.
func ValidateEscrowID(id string) error { return activities.ValidateEscrowID(id) }

// Role is one of the three participants of an escrow.
type Role string

// The three roles, in the fixed order workflow code iterates them.
const (
	Buyer   Role = "buyer"
	Vendor  Role = "vendor"
	Arbiter Role = "arbiter"
)

// Roles lists the roles in a fixed order (never iterate a map in workflow code).
var Roles = []Role{Buyer, Vendor, Arbiter}

// State is the state of an escrow setup.
type State string

// The states of an escrow setup, in order.
const (
	StateCreating   State = "CREATING"
	StatePreparing  State = "PREPARING"
	StateMaking     State = "MAKING"
	StateExchanging State = "EXCHANGING"
	StateVerifying  State = "VERIFYING"
	StateCompleted  State = "COMPLETED"
	StateFailed     State = "FAILED"
)

// Round names one step of the setup as it appears in Status and in
// SetupResult.Rounds.
type Round string

// The rounds of an escrow setup, in order.
const (
	RoundCreate    Round = "CREATING"
	RoundPrepare   Round = "PREPARING"
	RoundMake      Round = "MAKING"
	RoundExchange1 Round = "EXCHANGING_1"
	RoundExchange2 Round = "EXCHANGING_2"
	RoundVerify    Round = "VERIFYING"
)

// SetupInput is the workflow input: JSON {"escrowId":"…"}. Fields added later
// are optional; unknown fields are ignored.
type SetupInput struct {
	EscrowID string `json:"escrowId"`
	// WorkerLostAfter is how long the escrow's wallet activities may wait
	// for the worker that holds its files to poll before the escrow fails
	// with WorkerLost; 0 means DefaultWorkerLostAfter.
	WorkerLostAfter time.Duration `json:"workerLostAfter,omitempty"`

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
	var p plain
	err := json.Unmarshal(b, &p)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		*in = SetupInput(p)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		*in = SetupInput{malformed: fmt.Sprintf(`got a JSON %s, want {"escrowId":"…"}`, typeErr.Value)}
	case errors.As(err, &typeErr):
		*in = SetupInput{malformed: fmt.Sprintf("%s is a JSON %s, want a string", typeErr.Field, typeErr.Value)}
	default:
		*in = SetupInput{malformed: err.Error()}
	}
	return nil
}

// WalletResult is one role's final wallet: the committed snapshot name (in
// the worker's wallet dir) and the address that wallet reports.
type WalletResult struct {
	Wallet  string `json:"wallet"`
	Address string `json:"address"`
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

// RoleStatus is one role's progress.
type RoleStatus struct {
	Round Round  `json:"round"`
	Step  string `json:"step"` // "running", "done" or "failed"
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
