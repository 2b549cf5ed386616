// Package escrow holds the protocol's contracts in one place: the task
// queues, the workflow type and id prefix, the roles, rounds and states, the
// escrow id rule, the workflow's input, result and status types, and every
// failure type (errors.go). It is a leaf: it imports nothing of ours and no
// wallet, pool or logging code, so a backend that imports `starter` links
// only this and the Temporal SDK.
package escrow

import (
	"regexp"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
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
	// HostTaskQueuePrefix prefixes a worker id to form that worker's own
	// task queue, where the wallet activities of the escrows it holds run.
	HostTaskQueuePrefix = TaskQueue + "-host-"
	// StateSearchAttribute names the Keyword search attribute that mirrors
	// Status.State.
	StateSearchAttribute = "EscrowState"
)

// EscrowStateKey is the Keyword search attribute that mirrors Status.State,
// so that `temporal workflow list --query 'EscrowState="COMPLETED"'` and the
// Web UI can filter escrows. The Temporal namespace must have it registered.
var EscrowStateKey = temporal.NewSearchAttributeKeyKeyword(StateSearchAttribute)

// HostTaskQueue returns the task queue of the worker workerID.
func HostTaskQueue(workerID string) string { return HostTaskQueuePrefix + workerID }

// WorkflowID returns the workflow id of the escrow escrowID.
func WorkflowID(escrowID string) string { return WorkflowIDPrefix + escrowID }

// DefaultWorkerLostAfter is how long wallet activities wait for their
// worker to poll (Temporal's ScheduleToStart timeout) before the escrow
// fails with WorkerLost. A worker restart takes seconds; this covers a
// host reboot.
const DefaultWorkerLostAfter = 2 * time.Minute

// Threshold and Total describe the multisig wallet: 2-of-3.
const (
	Threshold = 2
	Total     = 3
)

// EscrowIDPattern is the rule an escrow id follows (escrow ids become parts
// of file names, so nothing else is accepted).
const EscrowIDPattern = `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`

var escrowIDRE = regexp.MustCompile(EscrowIDPattern)

// ValidateEscrowID returns an *InvalidEscrowIDError unless id is a valid
// escrow id.
func ValidateEscrowID(id string) error {
	if !escrowIDRE.MatchString(id) {
		return &InvalidEscrowIDError{ID: id}
	}
	return nil
}

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

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// State is the state of an escrow setup, as the status query and the
// EscrowState search attribute report it.
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
// SetupResult.Rounds. Round and State are distinct types: the spellings of
// rounds are part of the result's JSON and of recorded histories, and four
// of them equal the name of the State the escrow is in while the round
// runs, but code never converts one into the other.
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

// Rounds lists the rounds in order.
var Rounds = []Round{RoundCreate, RoundPrepare, RoundMake, RoundExchange1, RoundExchange2, RoundVerify}

// Valid reports whether r is one of Rounds.
func (r Round) Valid() bool { return slices.Contains(Rounds, r) }

// Outcome is how an escrow's setup ended, as FinishEscrow records it and the
// `multisig setup failed` log line's `outcome` field reports it.
const (
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
	OutcomeCancelled = "cancelled"
)
