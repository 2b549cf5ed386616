// Package starter is the Go API a marketplace backend uses to set up
// escrows: it starts EscrowSetup workflows, asks them for their status, and
// collects their results, over an existing Temporal client or one it dials.
//
// An escrow id (see escrow.ValidateEscrowID) can be set up once: the
// workflow id is derived from it, and a second Start of the same id fails
// with ErrDuplicateEscrow, also after the first run has closed.
//
// Usage:
//
//	c, err := starter.Dial(client.Options{HostPort: "127.0.0.1:7233"})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	if _, err := c.Start(ctx, "order-1234"); errors.Is(err, starter.ErrDuplicateEscrow) {
//		// already set up (or being set up): fall through and wait for it
//	} else if err != nil {
//		return err
//	}
//	res, err := c.Wait(ctx, "order-1234")
//	var failed *starter.EscrowFailedError
//	if errors.As(err, &failed) {
//		return fmt.Errorf("escrow setup failed: %s", failed.Type)
//	}
//	if err != nil {
//		return err
//	}
//	fmt.Println(res.MultisigAddress)
package starter

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultPageSize is the visibility page size List uses when asked for 0.
const DefaultPageSize = 100

// QueryTimeout bounds the status query, which a worker must answer; without
// an answer in time, Describe and Status rebuild the status from the
// EscrowState search attribute (and, for a closed workflow, its failure).
// It is longer than the server's 5 s sticky schedule-to-start timeout: a
// query the worker's sticky queue does not take in 5 s (a busy worker;
// seen once in CI) is retried by the server on the workflow's normal queue,
// and that answer is still worth waiting for.
const QueryTimeout = 10 * time.Second

// Client starts and follows escrow setups. It is safe for concurrent use.
type Client struct {
	c         client.Client
	taskQueue string
	owned     bool // Close closes c
}

// New returns a Client that uses c. The caller keeps owning c: Close does
// not close it.
func New(c client.Client) *Client {
	return &Client{c: c, taskQueue: escrow.TaskQueue}
}

// Dial connects to Temporal with opts (see client.Dial) and returns a Client
// whose Close closes the connection.
func Dial(opts client.Options) (*Client, error) {
	return DialContext(context.Background(), opts)
}

// DialContext is Dial with a context that bounds connecting.
func DialContext(ctx context.Context, opts client.Options) (*Client, error) {
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", hostPort(opts), err)
	}
	return &Client{c: c, taskQueue: escrow.TaskQueue, owned: true}, nil
}

func hostPort(opts client.Options) string {
	if opts.HostPort == "" {
		return client.DefaultHostPort
	}
	return opts.HostPort
}

// Close closes the Temporal client if Dial created it; it does nothing for
// a Client made by New.
func (c *Client) Close() {
	if c.owned {
		c.c.Close()
	}
}

// Run identifies a started escrow setup.
type Run struct {
	EscrowID   string `json:"escrowId"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// Summary describes one escrow's workflow execution as Temporal's
// visibility store (List) or DescribeWorkflow (Describe) reports it.
type Summary struct {
	EscrowID   string `json:"escrowId"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// State is the EscrowState search attribute: the escrow's last state
	// the workflow recorded (empty if not indexed yet).
	State escrow.State `json:"state"`
	// Status is Temporal's execution status: "Running", "Completed",
	// "Failed", "Canceled", "Terminated", "TimedOut", …
	Status string    `json:"status"`
	Start  time.Time `json:"start"`
	// Close is zero while the workflow runs.
	Close time.Time `json:"close,omitzero"`
}

// Running reports whether the workflow execution is still open.
func (s Summary) Running() bool {
	return s.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING.String()
}

// Description is an escrow's execution summary together with its status.
type Description struct {
	Summary Summary       `json:"execution"`
	Status  escrow.Status `json:"status"`
	// Queried is true when Status is the workflow's answer to the status
	// query, false when Status was rebuilt from Summary.State (and the
	// run's failure) because the query got no answer in QueryTimeout;
	// Status.Roles is then empty.
	Queried bool `json:"queried"`
	// QueryError is why the query got no answer (nil when Queried).
	QueryError error `json:"-"`
}

// Start starts the setup of escrow escrowID and returns its run. An invalid
// id returns a *escrow.InvalidEscrowIDError without calling Temporal. An
// id that was already used, by a running or a closed run, returns a
// *DuplicateEscrowError (errors.Is(err, ErrDuplicateEscrow)). Start does not
// wait for the setup: see Wait and Result.
func (c *Client) Start(ctx context.Context, escrowID string) (Run, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return Run{}, err
	}
	opts := client.StartWorkflowOptions{
		ID:                                       escrow.WorkflowID(escrowID),
		TaskQueue:                                c.taskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			escrow.EscrowStateKey.ValueSet(string(escrow.StateCreating))),
	}
	run, err := c.c.ExecuteWorkflow(ctx, opts, escrow.WorkflowName, escrow.SetupInput{EscrowID: escrowID})
	if err != nil {
		return Run{}, startError(escrowID, err)
	}
	return Run{EscrowID: escrowID, WorkflowID: run.GetID(), RunID: run.GetRunID()}, nil
}

// Status returns the status of escrow escrowID (see Describe). For a
// workflow that was terminated or timed out, whose own status still shows
// the state it stopped in, State is FAILED and ReasonType is escrow.TypeTerminated
// or escrow.TypeTimeout. When no worker answers the status query, Roles is empty
// and State comes from the EscrowState search attribute.
func (c *Client) Status(ctx context.Context, escrowID string) (escrow.Status, error) {
	d, err := c.Describe(ctx, escrowID)
	if err != nil {
		return escrow.Status{}, err
	}
	return d.Status, nil
}

// Describe returns the execution summary of escrow escrowID's run (the
// latest, or the earliest when a later one failed DuplicateEscrow: see
// ownerRun) and the escrow's status, the workflow's answer to the "status"
// query. The query needs a worker (for a closed workflow, to replay it); when none
// answers in QueryTimeout, the status is rebuilt from the EscrowState
// search attribute and, for a closed workflow, its failure (Queried is
// false, QueryError says why). A closed workflow that did not complete is
// always FAILED, with its failure type as ReasonType. An unknown escrow
// returns an error wrapping ErrEscrowNotFound, an invalid id a
// *escrow.InvalidEscrowIDError.
func (c *Client) Describe(ctx context.Context, escrowID string) (Description, error) {
	d, err := c.describeRun(ctx, escrowID, "")
	if err != nil || d.Status.ReasonType != escrow.TypeDuplicateEscrow {
		return d, err
	}
	owner, err := c.ownerRun(ctx, escrowID)
	if err != nil {
		return Description{}, err
	}
	if owner == "" || owner == d.Summary.RunID {
		return d, nil
	}
	return c.describeRun(ctx, escrowID, owner)
}

// describeRun is Describe of run runID ("" = the latest).
func (c *Client) describeRun(ctx context.Context, escrowID, runID string) (Description, error) {
	sum, err := c.describe(ctx, escrowID, runID)
	if err != nil {
		return Description{}, err
	}
	d := Description{Summary: sum}
	qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	st, err := c.query(qctx, escrowID, sum.RunID)
	cancel()
	switch {
	case err == nil:
		d.Status, d.Queried = st, true
	case ctx.Err() != nil:
		return Description{}, err
	default:
		d.QueryError = err
		d.Status = escrow.Status{EscrowID: escrowID, State: sum.State, Roles: map[escrow.Role]escrow.RoleStatus{}}
	}
	if sum.Running() {
		return d, nil
	}
	return c.closedStatus(ctx, d)
}

// closedStatus makes a closed workflow's status agree with how it closed:
// a run that did not complete is FAILED with its failure as the reason.
func (c *Client) closedStatus(ctx context.Context, d Description) (Description, error) {
	st := &d.Status
	if d.Summary.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED.String() {
		if !d.Queried {
			st.State = escrow.StateCompleted
		}
		return d, nil
	}
	if st.State == escrow.StateFailed && st.ReasonType != "" {
		return d, nil
	}
	_, err := c.get(ctx, d.Summary.EscrowID, d.Summary.RunID)
	var failed *EscrowFailedError
	switch {
	case errors.As(err, &failed):
		st.State, st.Reason, st.ReasonType = escrow.StateFailed, failed.Message, failed.Type
	case err != nil:
		return Description{}, err
	default: // closed without an error but not Completed: continued as new
		st.State = escrow.StateFailed
		st.Reason, st.ReasonType = "workflow execution "+d.Summary.Status, escrow.TypeUnknown
	}
	return d, nil
}

// Result returns the result of escrow escrowID without waiting: a
// *NotFinishedError while the setup runs, an *EscrowFailedError if it
// failed, an error wrapping ErrEscrowNotFound for an unknown escrow. A later
// run of the id that failed DuplicateEscrow does not hide the escrow's own.
func (c *Client) Result(ctx context.Context, escrowID string) (*escrow.SetupResult, error) {
	res, runID, err := c.resultOf(ctx, escrowID, "")
	if !isDuplicate(err) {
		return res, err
	}
	owner, oerr := c.ownerRun(ctx, escrowID)
	if oerr != nil {
		return nil, oerr
	}
	if owner == "" || owner == runID {
		return res, err
	}
	res, _, err = c.resultOf(ctx, escrowID, owner)
	return res, err
}

// resultOf is Result of run runID ("" = the latest); it also returns the
// run's id.
func (c *Client) resultOf(ctx context.Context, escrowID, runID string) (*escrow.SetupResult, string, error) {
	sum, err := c.describe(ctx, escrowID, runID)
	if err != nil {
		return nil, "", err
	}
	if sum.Running() {
		return nil, sum.RunID, &NotFinishedError{EscrowID: escrowID, State: sum.State}
	}
	res, err := c.get(ctx, escrowID, sum.RunID)
	return res, sum.RunID, err
}

// isDuplicate reports a run that failed DuplicateEscrow.
func isDuplicate(err error) bool {
	var failed *EscrowFailedError
	return errors.As(err, &failed) && errors.Is(failed, ErrDuplicateEscrow)
}

// ownerRun returns the id of the run that owns escrowID when the id has more
// than one run, "" when it has one. Start never makes a second run, but the
// raw temporal CLI may start one for a closed workflow id; that run fails
// DuplicateEscrow at its claim and changes nothing, and must not hide the
// escrow from Describe, Result and Wait. The owner is the earliest-started
// run: every later one was refused at its claim.
func (c *Client) ownerRun(ctx context.Context, escrowID string) (string, error) {
	var (
		first *workflowpb.WorkflowExecutionInfo
		n     int
		token []byte
	)
	for {
		resp, err := c.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: 100, NextPageToken: token,
			Query: fmt.Sprintf("WorkflowId = %q", escrow.WorkflowID(escrowID)),
		})
		if err != nil {
			return "", fmt.Errorf("list runs of escrow %q: %w", escrowID, err)
		}
		for _, ex := range resp.GetExecutions() {
			n++
			if first == nil || ex.GetStartTime().AsTime().Before(first.GetStartTime().AsTime()) {
				first = ex
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if n < 2 {
		return "", nil
	}
	return first.GetExecution().GetRunId(), nil
}

// Wait blocks until the setup of escrow escrowID ends or ctx is done, and
// returns its result: an *EscrowFailedError if it failed, an error wrapping
// ErrEscrowNotFound for an unknown escrow, ctx's error (wrapped) when ctx
// ends first. Like Result and Describe it follows the escrow's own run when
// a later run of the id failed DuplicateEscrow.
func (c *Client) Wait(ctx context.Context, escrowID string) (*escrow.SetupResult, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return nil, err
	}
	res, err := c.get(ctx, escrowID, "")
	if !isDuplicate(err) {
		return res, err
	}
	owner, oerr := c.ownerRun(ctx, escrowID)
	if oerr != nil {
		return nil, oerr
	}
	if owner == "" {
		return res, err
	}
	return c.get(ctx, escrowID, owner)
}

// stateValue keeps List's query well-formed: states are upper-case words.
var stateValue = regexp.MustCompile(`^[A-Z_]+$`)

// List returns the escrows Temporal's visibility store knows, in its order
// (running ones and the most recent first), all of them or those whose
// EscrowState is state. It reads all pages, pageSize executions at a time
// (DefaultPageSize if pageSize <= 0; at most 1000). Visibility is
// eventually consistent: an escrow started or changed a moment ago may be
// missing or show its previous state, and a terminated escrow keeps the
// state it stopped in (its Status says Terminated). Each id appears once
// per run: an id restarted outside this package (which then fails with
// DuplicateEscrow) is listed twice.
func (c *Client) List(ctx context.Context, state escrow.State, pageSize int) ([]Summary, error) {
	query := fmt.Sprintf("WorkflowType = %q", escrow.WorkflowName)
	if state != "" {
		if !stateValue.MatchString(string(state)) {
			return nil, fmt.Errorf("list escrows: invalid state %q", state)
		}
		query += fmt.Sprintf(" AND %s = %q", escrow.EscrowStateKey.GetName(), state)
	}
	if pageSize <= 0 {
		pageSize = DefaultPageSize
	}
	var (
		out   []Summary
		token []byte
	)
	for {
		resp, err := c.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			PageSize: int32(min(pageSize, 1000)), NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, fmt.Errorf("list escrows: %w", err)
		}
		for _, ex := range resp.GetExecutions() {
			out = append(out, summaryOf(ex))
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			return out, nil
		}
	}
}

// describe returns the summary of run runID ("" = the latest) of escrowID.
func (c *Client) describe(ctx context.Context, escrowID, runID string) (Summary, error) {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return Summary{}, err
	}
	d, err := c.c.DescribeWorkflow(ctx, escrow.WorkflowID(escrowID), runID)
	if err != nil {
		return Summary{}, rpcError(escrowID, "describe", err)
	}
	sum := Summary{
		EscrowID:   escrowID,
		WorkflowID: d.WorkflowExecution.ID,
		RunID:      d.WorkflowExecution.RunID,
		Status:     d.Status.String(),
		Start:      d.WorkflowStartTime,
	}
	if d.WorkflowCloseTime != nil {
		sum.Close = *d.WorkflowCloseTime
	}
	if v, ok := d.TypedSearchAttributes.GetKeyword(escrow.EscrowStateKey); ok {
		sum.State = escrow.State(v)
	}
	return sum, nil
}

// query asks run runID of escrowID's workflow for its status.
func (c *Client) query(ctx context.Context, escrowID, runID string) (escrow.Status, error) {
	v, err := c.c.QueryWorkflow(ctx, escrow.WorkflowID(escrowID), runID, escrow.StatusQuery)
	if err != nil {
		return escrow.Status{}, rpcError(escrowID, "query status of", err)
	}
	var st escrow.Status
	if err := v.Get(&st); err != nil {
		return escrow.Status{}, fmt.Errorf("decode status of escrow %q: %w", escrowID, err)
	}
	return st, nil
}

// get waits for the result of run runID ("" = the latest) of escrowID's
// workflow.
func (c *Client) get(ctx context.Context, escrowID, runID string) (*escrow.SetupResult, error) {
	for {
		var res escrow.SetupResult
		err := c.c.GetWorkflow(ctx, escrow.WorkflowID(escrowID), runID).Get(ctx, &res)
		if err == nil {
			return &res, nil
		}
		// The SDK long-polls for the result with a 65 s deadline of its own;
		// a busy server can let one poll run out while ctx still has time.
		if ctx.Err() == nil && pollTimedOut(err) {
			continue
		}
		return nil, resultError(escrowID, err)
	}
}

// pollTimedOut reports a long poll that ended on its own deadline.
func pollTimedOut(err error) bool {
	var dl *serviceerror.DeadlineExceeded
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &dl) || status.Code(err) == codes.DeadlineExceeded
}

// summaryOf converts a visibility record.
func summaryOf(ex *workflowpb.WorkflowExecutionInfo) Summary {
	sum := Summary{
		WorkflowID: ex.GetExecution().GetWorkflowId(),
		RunID:      ex.GetExecution().GetRunId(),
		Status:     ex.GetStatus().String(),
	}
	sum.EscrowID = strings.TrimPrefix(sum.WorkflowID, escrow.WorkflowIDPrefix)
	if t := ex.GetStartTime(); t != nil {
		sum.Start = t.AsTime()
	}
	if t := ex.GetCloseTime(); t != nil {
		sum.Close = t.AsTime()
	}
	if p, ok := ex.GetSearchAttributes().GetIndexedFields()[escrow.EscrowStateKey.GetName()]; ok {
		var v string
		if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err == nil {
			sum.State = escrow.State(v)
		}
	}
	return sum
}
