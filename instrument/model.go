// Package instrument builds, reads and analyzes the instrumentation export of
// an escrow setup: one JSON document per EscrowSetup workflow run with the
// timing of every role's step (scheduled, started, closed, attempts, failure
// types) taken from the workflow's Temporal history, the figures the worker
// reported in the steps' results (lease wait, wallet-rpc time, process slot,
// recovery), and per round the critical path. docs/INSTRUMENTATION.md
// documents the schema.
//
// The export never contains a multisig message, a wallet name, an address or
// a failure message: Build decodes activity inputs only for the escrow id,
// role and round, and activity results only for the worker's figures.
//
// Build is pure (a history in, an Escrow out); Fetch reads a history from
// Temporal; the analyzer (Analyze, WriteReport, WriteOverlap, Diff, WriteSVG)
// works on Escrow values read back with Read or ReadFile.
package instrument

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
)

// Schema is the value of Escrow.Schema for this version of the format.
const Schema = "escrowflow.instrumentation/v1"

// States of an exported escrow (Escrow.State).
const (
	StateRunning   = "RUNNING"
	StateCompleted = "COMPLETED"
	StateFailed    = "FAILED"
	StateCancelled = "CANCELLED"
)

// Statuses of a step (Step.Status).
const (
	StatusScheduled = "scheduled" // scheduled, no attempt recorded as started yet
	StatusRunning   = "running"   // an attempt started, not closed yet
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusTimedOut  = "timedOut"
	StatusCancelled = "cancelled"
)

// Rounds lists the rounds of an escrow setup in order (escrow.Rounds).
var Rounds = strs(escrow.Rounds)

// Roles lists the roles in the workflow's fixed order (escrow.Roles).
var Roles = strs(escrow.Roles)

func strs[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// Escrow is the instrumentation export of one EscrowSetup workflow run.
type Escrow struct {
	// Schema is always Schema ("escrowflow.instrumentation/v1").
	Schema     string `json:"schema"`
	EscrowID   string `json:"escrowId"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// State is COMPLETED, FAILED, CANCELLED or RUNNING (the run had not
	// closed when its history was read).
	State string `json:"state"`
	// ReasonType is the failure type of a FAILED or CANCELLED escrow: the
	// workflow's application error type (DuplicateEscrow, WalletRejected,
	// …), Cancelled, Terminated, Timeout or Unknown.
	ReasonType string `json:"reasonType,omitempty"`
	// Started is when the workflow run started; Closed when it closed
	// (absent while RUNNING).
	Started time.Time `json:"started"`
	Closed  time.Time `json:"closed,omitzero"`
	// TotalMs is Closed - Started; for a RUNNING escrow, the last event's
	// time - Started.
	TotalMs int64 `json:"totalMs"`
	// Rounds are the per-round spans and critical roles, in round order.
	Rounds []Round `json:"rounds"`
	// Steps are the per-role wallet steps, in round then role order.
	Steps []Step `json:"steps"`
	// Lifecycle are the escrow's other activities (ClaimEscrow,
	// FinishEscrow), in the order they were scheduled.
	Lifecycle []Step `json:"lifecycle"`
	// Summary is derived from Steps and Rounds.
	Summary Summary `json:"summary"`
}

// Step is one activity of the escrow: a role's run of a round, or a
// lifecycle activity (then Round and Role are empty).
type Step struct {
	// Activity is the activity type (CreateWallet, MakeMultisig, …).
	Activity   string `json:"activity"`
	ActivityID string `json:"activityId"`
	Round      string `json:"round,omitempty"`
	Role       string `json:"role,omitempty"`
	// Status is scheduled, running, completed, failed, timedOut or
	// cancelled.
	Status string `json:"status"`
	// Scheduled is when the workflow scheduled the activity; Started when
	// its last attempt started; Closed when it closed. Started and Closed
	// are absent until they happen.
	Scheduled time.Time `json:"scheduled"`
	Started   time.Time `json:"started,omitzero"`
	Closed    time.Time `json:"closed,omitzero"`
	// QueueMs is Started - Scheduled: queueing plus every earlier failed
	// attempt and retry backoff. RunMs is Closed - Started: the last
	// attempt. DurationMs is Closed - Scheduled. 0 while unknown.
	QueueMs    int64 `json:"queueMs"`
	RunMs      int64 `json:"runMs"`
	DurationMs int64 `json:"durationMs"`
	// Attempts is the number of the last attempt (1 = no retry), 0 when
	// no attempt started.
	Attempts int32 `json:"attempts"`
	// ErrorType is the failure type of a failed or timed-out step: the
	// application error type (WalletRejected, …) or Timeout:<kind>.
	ErrorType string `json:"errorType,omitempty"`
	// LastFailureType is the failure type of the attempt before the last
	// one, when the step was retried.
	LastFailureType string `json:"lastFailureType,omitempty"`
	// Worker is the identity of the worker that ran the last attempt.
	Worker string `json:"worker,omitempty"`
	// Reported is true when the step's result carried the worker's
	// figures (LeaseWaitMs, RPCMs, Slot, Recovered): completed per-role
	// steps only.
	Reported bool `json:"reported"`
	// LeaseWaitMs is how long the last attempt waited for a wallet-rpc
	// process; RPCMs its time in wallet-rpc calls.
	LeaseWaitMs int64 `json:"leaseWaitMs"`
	RPCMs       int64 `json:"rpcMs"`
	// Slot is the pool slot of the wallet-rpc process used (absent when
	// not reported).
	Slot *int `json:"slot,omitempty"`
	// Recovered is true when the step restored the role's wallet from its
	// snapshot instead of continuing on the open one.
	Recovered bool `json:"recovered"`
}

// Key names the step as ROUND/role, or its activity type for lifecycle
// activities.
func (s Step) Key() string {
	if s.Round == "" && s.Role == "" {
		return s.Activity
	}
	return s.Round + "/" + s.Role
}

// closed reports whether the step has ended.
func (s Step) closed() bool { return !s.Closed.IsZero() }

// Round is one round over its three roles.
type Round struct {
	Round string `json:"round"`
	// Start is the earliest Scheduled of the round's steps; End the
	// latest Closed (absent until one closed).
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	// SpanMs is End - Start.
	SpanMs int64 `json:"spanMs"`
	// CriticalRole is the slowest role (largest DurationMs; the first in
	// role order on a tie); CriticalMs its DurationMs.
	CriticalRole string `json:"criticalRole"`
	CriticalMs   int64  `json:"criticalMs"`
	// Complete is true when every role's step of the round closed.
	Complete bool `json:"complete"`
}

// Summary are the escrow's totals.
type Summary struct {
	// Steps is the number of per-role steps; Failed how many failed, timed
	// out or were cancelled.
	Steps  int `json:"steps"`
	Failed int `json:"failed"`
	// Retried is the number of steps that needed more than one attempt;
	// ExtraAttempts the attempts beyond the first, summed.
	Retried       int `json:"retried"`
	ExtraAttempts int `json:"extraAttempts"`
	// Recovered is the number of steps that restored a snapshot.
	Recovered int `json:"recovered"`
	// CriticalPathMs is the sum of the rounds' SpanMs; OutsideRoundsMs is
	// TotalMs - CriticalPathMs (claim, finish, workflow tasks).
	CriticalPathMs  int64 `json:"criticalPathMs"`
	OutsideRoundsMs int64 `json:"outsideRoundsMs"`
	// MaxLeaseWaitMs is the longest lease wait, at step MaxLeaseWaitStep
	// (ROUND/role); TotalLeaseWaitMs the sum over all steps.
	MaxLeaseWaitMs   int64  `json:"maxLeaseWaitMs"`
	MaxLeaseWaitStep string `json:"maxLeaseWaitStep,omitempty"`
	TotalLeaseWaitMs int64  `json:"totalLeaseWaitMs"`
	// TotalRPCMs is the wallet-rpc time summed over all steps.
	TotalRPCMs int64 `json:"totalRpcMs"`
}

// Marshal returns e as indented JSON with a final newline, the form the
// worker and `escrowctl export` write.
func Marshal(e Escrow) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("instrument: encode escrow %q: %w", e.EscrowID, err)
	}
	return buf.Bytes(), nil
}

// Read decodes one export and checks its schema version.
func Read(r io.Reader) (Escrow, error) {
	var e Escrow
	dec := json.NewDecoder(r)
	if err := dec.Decode(&e); err != nil {
		return Escrow{}, fmt.Errorf("instrument: decode: %w", err)
	}
	if e.Schema != Schema {
		return Escrow{}, fmt.Errorf("instrument: schema %q: want %q", e.Schema, Schema)
	}
	return e, nil
}

// ReadFile reads the export in file path.
func ReadFile(path string) (Escrow, error) {
	f, err := os.Open(path)
	if err != nil {
		return Escrow{}, err
	}
	defer f.Close()
	e, err := Read(f)
	if err != nil {
		return Escrow{}, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// FileName is the file name of escrow escrowID's export: escrow_<id>.json.
func FileName(escrowID string) string { return "escrow_" + escrowID + ".json" }

func index(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return len(list)
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
