package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// anyCtx matches every context.Context argument.
var anyCtx = mock.MatchedBy(func(context.Context) bool { return true })

// value is a converter.EncodedValue holding v, as QueryWorkflow returns it.
type value struct{ v any }

func (v value) HasValue() bool { return v.v != nil }

func (v value) Get(ptr any) error {
	b, err := json.Marshal(v.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

// workflowFailure returns the error WorkflowRun.Get returns for an
// EscrowSetup run that failed with err: err travels as a Temporal failure
// (converted to the failure proto and back, as the server stores it) inside
// the SDK's "workflow execution error".
func workflowFailure(t *testing.T, err error) error {
	t.Helper()
	fc := temporal.GetDefaultFailureConverter()
	decoded := fc.FailureToError(fc.ErrorToFailure(err))
	return fmt.Errorf("workflow execution error (type: EscrowSetup, workflowID: escrow-x, runID: r1): %w", decoded)
}

// setupFailure is what EscrowSetup returns when a round failed with an
// activity's application error of type typ.
func setupFailure(typ, msg string) error {
	cause := temporal.NewNonRetryableApplicationError(msg, typ, errors.New(msg))
	return temporal.NewNonRetryableApplicationError("escrow setup failed: "+cause.Error(), typ, cause)
}

func TestStartRejectsInvalidIDs(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "empty", give: ""},
		{name: "leading dash", give: "-abc"},
		{name: "leading underscore", give: "_abc"},
		{name: "path", give: "../etc"},
		{name: "space", give: "a b"},
		{name: "dot", give: "a.b"},
		{name: "non-ascii", give: "escrow-é"},
		{name: "65 chars", give: strings.Repeat("a", 65)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			c := New(m)

			run, err := c.Start(context.Background(), tt.give)

			var invalid *escrow.InvalidEscrowIDError
			require.ErrorAs(t, err, &invalid)
			assert.Equal(t, tt.give, invalid.ID)
			assert.Equal(t, Run{}, run)
			m.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
		})
	}
}

func TestStartOptions(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "short", give: "a"},
		{name: "typical", give: "order-1234_b"},
		{name: "64 chars", give: strings.Repeat("Z", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			run := mocks.NewWorkflowRun(t)
			run.On("GetID").Return("escrow-" + tt.give)
			run.On("GetRunID").Return("run-1")
			var got client.StartWorkflowOptions
			m.On("ExecuteWorkflow", anyCtx, mock.Anything, escrow.WorkflowName, escrow.SetupInput{EscrowID: tt.give}).
				Run(func(args mock.Arguments) { got = args.Get(1).(client.StartWorkflowOptions) }).
				Return(run, nil).Once()

			r, err := New(m).Start(context.Background(), tt.give)

			require.NoError(t, err)
			assert.Equal(t, Run{EscrowID: tt.give, WorkflowID: "escrow-" + tt.give, RunID: "run-1"}, r)
			assert.Equal(t, "escrow-"+tt.give, got.ID)
			assert.Equal(t, escrow.TaskQueue, got.TaskQueue)
			assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, got.WorkflowIDReusePolicy)
			assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, got.WorkflowIDConflictPolicy)
			assert.True(t, got.WorkflowExecutionErrorWhenAlreadyStarted)
			state, ok := got.TypedSearchAttributes.GetKeyword(escrow.EscrowStateKey)
			assert.True(t, ok, "EscrowState search attribute set at start")
			assert.Equal(t, string(escrow.StateCreating), state)
			assert.Equal(t, 1, got.TypedSearchAttributes.Size(), "only EscrowState")
		})
	}
}

func TestStartErrors(t *testing.T) {
	unavailable := serviceerror.NewUnavailable("connection refused")
	tests := []struct {
		name      string
		give      error
		wantDup   bool
		wantRunID string
	}{
		{
			name:      "already started, running or closed",
			give:      serviceerror.NewWorkflowExecutionAlreadyStarted("Workflow execution already finished", "req-1", "run-old"),
			wantDup:   true,
			wantRunID: "run-old",
		},
		{
			name:    "already started without run id",
			give:    serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", ""),
			wantDup: true,
		},
		{
			name:      "wrapped by an interceptor",
			give:      fmt.Errorf("interceptor: %w", serviceerror.NewWorkflowExecutionAlreadyStarted("x", "", "run-2")),
			wantDup:   true,
			wantRunID: "run-2",
		},
		{name: "server unavailable", give: unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			m.On("ExecuteWorkflow", anyCtx, mock.Anything, escrow.WorkflowName, escrow.SetupInput{EscrowID: "e1"}).
				Return(nil, tt.give).Once()

			_, err := New(m).Start(context.Background(), "e1")

			require.Error(t, err)
			assert.ErrorIs(t, err, tt.give, "the Temporal error stays reachable")
			assert.Equal(t, tt.wantDup, errors.Is(err, ErrDuplicateEscrow))
			var dup *DuplicateEscrowError
			if !tt.wantDup {
				assert.False(t, errors.As(err, &dup))
				return
			}
			require.ErrorAs(t, err, &dup)
			assert.Equal(t, "e1", dup.EscrowID)
			assert.Equal(t, tt.wantRunID, dup.RunID)
			assert.Contains(t, err.Error(), `escrow "e1" already exists`)
		})
	}
}

func TestWaitErrors(t *testing.T) {
	tests := []struct {
		name        string
		give        func(t *testing.T) error
		wantType    string // "" = not an *EscrowFailedError
		wantMessage string
		wantDup     bool
		wantIs      error
	}{
		{
			name: "duplicate escrow",
			give: func(t *testing.T) error {
				return workflowFailure(t, setupFailure(escrow.TypeDuplicateEscrow, "claimed by run r0"))
			},
			wantType:    escrow.TypeDuplicateEscrow,
			wantMessage: "escrow setup failed: claimed by run r0 (type: DuplicateEscrow, retryable: false): claimed by run r0",
			wantDup:     true,
		},
		{
			name: "invalid multisig message",
			give: func(t *testing.T) error {
				return workflowFailure(t, setupFailure(escrow.TypeInvalidMultisigMessage, "bad kex"))
			},
			wantType:    escrow.TypeInvalidMultisigMessage,
			wantMessage: "escrow setup failed: bad kex (type: InvalidMultisigMessage, retryable: false): bad kex",
		},
		{
			name: "cancelled before the workflow's own handling",
			give: func(t *testing.T) error {
				return workflowFailure(t, temporal.NewNonRetryableApplicationError("escrow setup failed: canceled", "Cancelled", nil))
			},
			wantType:    escrow.TypeCancelled,
			wantMessage: "escrow setup failed: canceled",
		},
		{
			name:        "cancelled",
			give:        func(t *testing.T) error { return workflowFailure(t, temporal.NewCanceledError()) },
			wantType:    escrow.TypeCancelled,
			wantMessage: "the workflow was cancelled",
		},
		{
			name: "timed out",
			give: func(t *testing.T) error {
				return workflowFailure(t, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil))
			},
			wantType:    escrow.TypeTimeout,
			wantMessage: "the workflow timed out",
		},
		{
			name:        "application error without type",
			give:        func(t *testing.T) error { return workflowFailure(t, temporal.NewApplicationError("boom", "")) },
			wantType:    escrow.TypeUnknown,
			wantMessage: "boom",
		},
		{
			name:   "unknown escrow",
			give:   func(*testing.T) error { return serviceerror.NewNotFound("workflow not found for ID: escrow-e1") },
			wantIs: ErrEscrowNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			run := mocks.NewWorkflowRun(t)
			giveErr := tt.give(t)
			run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(giveErr).Once()
			m.On("GetWorkflow", anyCtx, "escrow-e1", "").Return(run).Once()
			if tt.wantDup { // the id's only run: no other run owns the escrow
				m.On("ListWorkflow", anyCtx, runsOf("e1")).Return(runs("run-1"), nil).Once()
			}

			res, err := New(m).Wait(context.Background(), "e1")

			require.Error(t, err)
			assert.Nil(t, res)
			assert.Equal(t, tt.wantDup, errors.Is(err, ErrDuplicateEscrow))
			var failed *EscrowFailedError
			if tt.wantType == "" {
				assert.False(t, errors.As(err, &failed), "not an escrow failure: %v", err)
				assert.ErrorIs(t, err, tt.wantIs)
				return
			}
			require.ErrorAs(t, err, &failed)
			assert.Equal(t, "e1", failed.EscrowID)
			assert.Equal(t, tt.wantType, failed.Type)
			assert.Equal(t, tt.wantMessage, failed.Message)
			assert.False(t, errors.Is(err, ErrEscrowNotFound))
			assert.ErrorIs(t, err, giveErr, "the Temporal error stays reachable")
		})
	}
}

// runsOf matches the visibility request for the runs of escrowID.
func runsOf(escrowID string) any {
	return mock.MatchedBy(func(r *workflowservice.ListWorkflowExecutionsRequest) bool {
		return r.GetQuery() == fmt.Sprintf("WorkflowId = %q", escrow.WorkflowID(escrowID))
	})
}

// runs is a visibility answer with runIDs started a minute apart, newest
// first as visibility lists them.
func runs(runIDs ...string) *workflowservice.ListWorkflowExecutionsResponse {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for i := len(runIDs) - 1; i >= 0; i-- {
		resp.Executions = append(resp.Executions, &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: "escrow-e1", RunId: runIDs[i]},
			StartTime: timestamppb.New(start.Add(time.Duration(i) * time.Minute)),
		})
	}
	return resp
}

// TestDuplicateRunDoesNotHideTheEscrow: a second run of a used id (the raw
// temporal CLI can start one) fails DuplicateEscrow; Wait, Result and
// Describe report the escrow's own run, the earliest, instead.
func TestDuplicateRunDoesNotHideTheEscrow(t *testing.T) {
	want := escrow.SetupResult{EscrowID: "e1", MultisigAddress: "9own"}
	dupErr := func() error {
		return workflowFailure(t, setupFailure(escrow.TypeDuplicateEscrow, "claimed by run run-0"))
	}
	ownRun := func() *mocks.WorkflowRun {
		run := mocks.NewWorkflowRun(t)
		run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).
			Run(func(args mock.Arguments) { *args.Get(1).(*escrow.SetupResult) = want }).Return(nil).Once()
		return run
	}
	dupRun := func() *mocks.WorkflowRun {
		run := mocks.NewWorkflowRun(t)
		run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(dupErr()).Once()
		return run
	}
	own := description(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, escrow.StateCompleted)
	own.WorkflowExecution.RunID = "run-0"
	dup := description(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, escrow.StateFailed)

	t.Run("Wait", func(t *testing.T) {
		m := mocks.NewClient(t)
		m.On("GetWorkflow", anyCtx, "escrow-e1", "").Return(dupRun()).Once()
		m.On("ListWorkflow", anyCtx, runsOf("e1")).Return(runs("run-0", "run-1"), nil).Once()
		m.On("GetWorkflow", anyCtx, "escrow-e1", "run-0").Return(ownRun()).Once()

		got, err := New(m).Wait(context.Background(), "e1")

		require.NoError(t, err)
		assert.Equal(t, &want, got)
	})
	t.Run("Result", func(t *testing.T) {
		m := mocks.NewClient(t)
		m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").Return(dup, nil).Once()
		m.On("GetWorkflow", anyCtx, "escrow-e1", "run-1").Return(dupRun()).Once()
		m.On("ListWorkflow", anyCtx, runsOf("e1")).Return(runs("run-0", "run-1"), nil).Once()
		m.On("DescribeWorkflow", anyCtx, "escrow-e1", "run-0").Return(own, nil).Once()
		m.On("GetWorkflow", anyCtx, "escrow-e1", "run-0").Return(ownRun()).Once()

		got, err := New(m).Result(context.Background(), "e1")

		require.NoError(t, err)
		assert.Equal(t, &want, got)
	})
	t.Run("Describe", func(t *testing.T) {
		m := mocks.NewClient(t)
		m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").Return(dup, nil).Once()
		m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-1", escrow.StatusQuery).
			Return(value{escrow.Status{EscrowID: "e1", State: escrow.StateFailed,
				Reason: "claimed by run run-0", ReasonType: escrow.TypeDuplicateEscrow}}, nil).Once()
		m.On("ListWorkflow", anyCtx, runsOf("e1")).Return(runs("run-0", "run-1"), nil).Once()
		m.On("DescribeWorkflow", anyCtx, "escrow-e1", "run-0").Return(own, nil).Once()
		m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-0", escrow.StatusQuery).
			Return(value{escrow.Status{EscrowID: "e1", State: escrow.StateCompleted}}, nil).Once()

		got, err := New(m).Describe(context.Background(), "e1")

		require.NoError(t, err)
		assert.Equal(t, "run-0", got.Summary.RunID)
		assert.Equal(t, escrow.StateCompleted, got.Status.State)
	})
	t.Run("a lone duplicate stays one", func(t *testing.T) {
		m := mocks.NewClient(t)
		m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").Return(dup, nil).Once()
		m.On("GetWorkflow", anyCtx, "escrow-e1", "run-1").Return(dupRun()).Once()
		m.On("ListWorkflow", anyCtx, runsOf("e1")).Return(runs("run-1"), nil).Once()

		_, err := New(m).Result(context.Background(), "e1")

		assert.ErrorIs(t, err, ErrDuplicateEscrow)
	})
}

func TestWaitResult(t *testing.T) {
	want := escrow.SetupResult{
		EscrowID:        "e1",
		MultisigAddress: "9xyz",
		Wallets:         map[escrow.Role]escrow.WalletResult{escrow.Buyer: {Wallet: "w", Address: "9xyz"}},
	}
	m := mocks.NewClient(t)
	run := mocks.NewWorkflowRun(t)
	run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).
		Run(func(args mock.Arguments) { *args.Get(1).(*escrow.SetupResult) = want }).
		Return(nil).Once()
	m.On("GetWorkflow", anyCtx, "escrow-e1", "").Return(run).Once()

	got, err := New(m).Wait(context.Background(), "e1")

	require.NoError(t, err)
	assert.Equal(t, &want, got)
}

func TestReadsRejectInvalidIDs(t *testing.T) {
	tests := []struct {
		name string
		give func(c *Client) error
	}{
		{name: "Wait", give: func(c *Client) error { _, err := c.Wait(context.Background(), "a/b"); return err }},
		{name: "Result", give: func(c *Client) error { _, err := c.Result(context.Background(), "a/b"); return err }},
		{name: "Status", give: func(c *Client) error { _, err := c.Status(context.Background(), "a/b"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			var invalid *escrow.InvalidEscrowIDError
			assert.ErrorAs(t, tt.give(New(m)), &invalid)
		})
	}
}

// description returns what DescribeWorkflow reports for escrow-e1.
func description(status enumspb.WorkflowExecutionStatus, state escrow.State) *client.WorkflowExecutionDescription {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &client.WorkflowExecutionDescription{WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{
		WorkflowExecution: workflow.Execution{ID: "escrow-e1", RunID: "run-1"},
		WorkflowType:      workflow.Type{Name: escrow.WorkflowName},
		Status:            status,
		WorkflowStartTime: start,
	}}
	if state != "" {
		d.TypedSearchAttributes = temporal.NewSearchAttributes(escrow.EscrowStateKey.ValueSet(string(state)))
	}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		closed := start.Add(time.Minute)
		d.WorkflowCloseTime = &closed
	}
	return d
}

func TestResult(t *testing.T) {
	tests := []struct {
		name     string
		give     *client.WorkflowExecutionDescription
		giveErr  error // of DescribeWorkflow
		giveGet  error // of WorkflowRun.Get, when called
		wantErr  func(t *testing.T, err error)
		wantAddr string
	}{
		{
			name: "running",
			give: description(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, escrow.StateMaking),
			wantErr: func(t *testing.T, err error) {
				var nf *NotFinishedError
				require.ErrorAs(t, err, &nf)
				assert.Equal(t, &NotFinishedError{EscrowID: "e1", State: escrow.StateMaking}, nf)
			},
		},
		{
			name:     "completed",
			give:     description(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, escrow.StateCompleted),
			wantAddr: "9abc",
		},
		{
			name:    "failed",
			give:    description(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, escrow.StateFailed),
			giveGet: setupFailure(escrow.TypeVerificationFailed, "vendor differs"),
			wantErr: func(t *testing.T, err error) {
				var failed *EscrowFailedError
				require.ErrorAs(t, err, &failed)
				assert.Equal(t, escrow.TypeVerificationFailed, failed.Type)
			},
		},
		{
			name:    "unknown escrow",
			giveErr: serviceerror.NewNotFound("workflow not found"),
			wantErr: func(t *testing.T, err error) { assert.ErrorIs(t, err, ErrEscrowNotFound) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").Return(tt.give, tt.giveErr).Once()
			if tt.give != nil && tt.give.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				run := mocks.NewWorkflowRun(t)
				get := run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult"))
				if tt.giveGet != nil {
					get.Return(workflowFailure(t, tt.giveGet))
				} else {
					get.Run(func(args mock.Arguments) {
						args.Get(1).(*escrow.SetupResult).MultisigAddress = tt.wantAddr
					}).Return(nil)
				}
				m.On("GetWorkflow", anyCtx, "escrow-e1", "run-1").Return(run).Once()
			}

			res, err := New(m).Result(context.Background(), "e1")

			if tt.wantErr != nil {
				require.Error(t, err)
				assert.Nil(t, res)
				tt.wantErr(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantAddr, res.MultisigAddress)
		})
	}
}

func TestDescribe(t *testing.T) {
	making := escrow.Status{EscrowID: "e1", State: escrow.StateMaking, Roles: map[escrow.Role]escrow.RoleStatus{
		escrow.Buyer: {Round: escrow.RoundMake, Step: "running"},
	}}
	failed := escrow.Status{EscrowID: "e1", State: escrow.StateFailed, Roles: map[escrow.Role]escrow.RoleStatus{},
		Reason: "bad kex", ReasonType: escrow.TypeInvalidMultisigMessage}
	completed := escrow.Status{EscrowID: "e1", State: escrow.StateCompleted, Roles: map[escrow.Role]escrow.RoleStatus{}}
	noRoles := map[escrow.Role]escrow.RoleStatus{}
	tests := []struct {
		name        string
		give        *client.WorkflowExecutionDescription
		giveQuery   any   // status the query answers
		giveQErr    error // error of the query instead
		giveGet     error // failure WorkflowRun.Get returns, when called
		want        escrow.Status
		wantQueried bool
	}{
		{
			name:        "running",
			give:        description(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, escrow.StateMaking),
			giveQuery:   making,
			want:        making,
			wantQueried: true,
		},
		{
			name:        "completed, replayed by a worker",
			give:        description(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, escrow.StateCompleted),
			giveQuery:   completed,
			want:        completed,
			wantQueried: true,
		},
		{
			name:        "failed, replayed by a worker",
			give:        description(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, escrow.StateFailed),
			giveQuery:   failed,
			want:        failed,
			wantQueried: true,
		},
		{
			name:      "terminated while making",
			give:      description(enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, escrow.StateMaking),
			giveQuery: making,
			giveGet:   &temporal.TerminatedError{},
			want: escrow.Status{EscrowID: "e1", State: escrow.StateFailed, Roles: making.Roles,
				Reason: "the workflow was terminated", ReasonType: escrow.TypeTerminated},
			wantQueried: true,
		},
		{
			name:     "failed, no worker answers",
			give:     description(enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, escrow.StateFailed),
			giveQErr: serviceerror.NewDeadlineExceeded("query timed out"),
			giveGet:  setupFailure(escrow.TypeDiskFull, "no space left on device"),
			want: escrow.Status{EscrowID: "e1", State: escrow.StateFailed, Roles: noRoles,
				Reason: "escrow setup failed: no space left on device (type: DiskFull, retryable: false): no space left on device", ReasonType: escrow.TypeDiskFull},
		},
		{
			name:     "completed, no worker answers",
			give:     description(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, escrow.StateCompleted),
			giveQErr: serviceerror.NewDeadlineExceeded("query timed out"),
			want:     escrow.Status{EscrowID: "e1", State: escrow.StateCompleted, Roles: noRoles},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").Return(tt.give, nil).Once()
			if tt.giveQErr != nil {
				m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-1", escrow.StatusQuery).Return(nil, tt.giveQErr).Once()
			} else {
				m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-1", escrow.StatusQuery).Return(value{tt.giveQuery}, nil).Once()
			}
			if tt.giveGet != nil {
				run := mocks.NewWorkflowRun(t)
				run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(workflowFailure(t, tt.giveGet)).Once()
				m.On("GetWorkflow", anyCtx, "escrow-e1", "run-1").Return(run).Once()
			}

			got, err := New(m).Describe(context.Background(), "e1")

			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Status)
			assert.Equal(t, tt.wantQueried, got.Queried)
			assert.Equal(t, "e1", got.Summary.EscrowID)
			assert.Equal(t, "run-1", got.Summary.RunID)
			assert.Equal(t, tt.give.Status.String(), got.Summary.Status)
		})
	}
}

func TestDescribeRunningWithoutWorker(t *testing.T) {
	m := mocks.NewClient(t)
	m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").
		Return(description(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, escrow.StateMaking), nil).Once()
	qerr := serviceerror.NewDeadlineExceeded("no worker")
	var deadline time.Time
	m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-1", escrow.StatusQuery).
		Run(func(args mock.Arguments) { deadline, _ = args.Get(0).(context.Context).Deadline() }).
		Return(nil, qerr).Once()

	d, err := New(m).Describe(context.Background(), "e1")

	require.NoError(t, err)
	assert.False(t, d.Queried)
	assert.ErrorIs(t, d.QueryError, qerr)
	assert.Equal(t, escrow.Status{EscrowID: "e1", State: escrow.StateMaking, Roles: map[escrow.Role]escrow.RoleStatus{}}, d.Status)
	assert.WithinDuration(t, time.Now().Add(QueryTimeout), deadline, time.Second, "the query is bounded")
}

func TestDescribeCallerDeadline(t *testing.T) {
	m := mocks.NewClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	m.On("DescribeWorkflow", anyCtx, "escrow-e1", "").
		Return(description(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, escrow.StateMaking), nil).Once()
	m.On("QueryWorkflow", anyCtx, "escrow-e1", "run-1", escrow.StatusQuery).
		Run(func(mock.Arguments) { cancel() }).
		Return(nil, context.Canceled).Once()

	_, err := New(m).Status(ctx, "e1")

	assert.ErrorIs(t, err, context.Canceled, "the caller's end is an error, not a fallback")
}

// keyword encodes a Keyword search attribute value as visibility returns it.
func keyword(t *testing.T, v string) *commonpb.SearchAttributes {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"EscrowState": p}}
}

func TestList(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	closed := start.Add(90 * time.Second)
	exec := func(id string, st enumspb.WorkflowExecutionStatus, sa *commonpb.SearchAttributes, closeTime *time.Time) *workflowpb.WorkflowExecutionInfo {
		ex := &workflowpb.WorkflowExecutionInfo{
			Execution:        &commonpb.WorkflowExecution{WorkflowId: "escrow-" + id, RunId: "run-" + id},
			Type:             &commonpb.WorkflowType{Name: escrow.WorkflowName},
			StartTime:        timestamppb.New(start),
			Status:           st,
			SearchAttributes: sa,
		}
		if closeTime != nil {
			ex.CloseTime = timestamppb.New(*closeTime)
		}
		return ex
	}
	tests := []struct {
		name         string
		giveState    escrow.State
		givePageSize int
		givePages    [][]*workflowpb.WorkflowExecutionInfo
		wantQuery    string
		wantPageSize int32
		want         []Summary
	}{
		{
			name:         "all, two pages",
			givePageSize: 1,
			givePages: [][]*workflowpb.WorkflowExecutionInfo{
				{exec("b", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, keyword(t, "MAKING"), nil)},
				{exec("a", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, keyword(t, "COMPLETED"), &closed)},
			},
			wantQuery:    `WorkflowType = "EscrowSetup"`,
			wantPageSize: 1,
			want: []Summary{
				{EscrowID: "b", WorkflowID: "escrow-b", RunID: "run-b", State: escrow.StateMaking, Status: "Running", Start: start},
				{EscrowID: "a", WorkflowID: "escrow-a", RunID: "run-a", State: escrow.StateCompleted, Status: "Completed", Start: start, Close: closed},
			},
		},
		{
			name:      "by state, default page size, no search attribute yet",
			giveState: escrow.StateFailed,
			givePages: [][]*workflowpb.WorkflowExecutionInfo{
				{exec("c", enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, nil, &closed)},
			},
			wantQuery:    `WorkflowType = "EscrowSetup" AND EscrowState = "FAILED"`,
			wantPageSize: DefaultPageSize,
			want: []Summary{
				{EscrowID: "c", WorkflowID: "escrow-c", RunID: "run-c", Status: "Terminated", Start: start, Close: closed},
			},
		},
		{
			name:         "none",
			giveState:    escrow.StateVerifying,
			givePageSize: 5000,
			givePages:    [][]*workflowpb.WorkflowExecutionInfo{nil},
			wantQuery:    `WorkflowType = "EscrowSetup" AND EscrowState = "VERIFYING"`,
			wantPageSize: 1000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mocks.NewClient(t)
			for i, page := range tt.givePages {
				var token, next []byte
				if i > 0 {
					token = []byte{byte(i)}
				}
				if i < len(tt.givePages)-1 {
					next = []byte{byte(i + 1)}
				}
				req := &workflowservice.ListWorkflowExecutionsRequest{PageSize: tt.wantPageSize, NextPageToken: token, Query: tt.wantQuery}
				m.On("ListWorkflow", anyCtx, req).
					Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: page, NextPageToken: next}, nil).Once()
			}

			got, err := New(m).List(context.Background(), tt.giveState, tt.givePageSize)

			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestListRejectsMalformedState(t *testing.T) {
	m := mocks.NewClient(t)
	_, err := New(m).List(context.Background(), `X" OR WorkflowType != "`, 10)
	assert.ErrorContains(t, err, "invalid state")
}

func TestCloseOwnership(t *testing.T) {
	m := mocks.NewClient(t)
	New(m).Close() // the caller owns m: no Close call expected

	owned := mocks.NewClient(t)
	owned.On("Close").Return().Once()
	(&Client{c: owned, owned: true}).Close()
}

func TestErrorsMatchDuplicate(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "start duplicate", give: &DuplicateEscrowError{EscrowID: "e"}, want: true},
		{name: "wrapped start duplicate", give: fmt.Errorf("x: %w", &DuplicateEscrowError{EscrowID: "e"}), want: true},
		{name: "failed as duplicate", give: &EscrowFailedError{EscrowID: "e", Type: escrow.TypeDuplicateEscrow}, want: true},
		{name: "failed otherwise", give: &EscrowFailedError{EscrowID: "e", Type: escrow.TypeDiskFull}},
		{name: "not finished", give: &NotFinishedError{EscrowID: "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, errors.Is(tt.give, ErrDuplicateEscrow))
		})
	}
}

func TestWaitRetriesAnExpiredPollButNotTheCallersDeadline(t *testing.T) {
	m := mocks.NewClient(t)
	run := mocks.NewWorkflowRun(t)
	run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(context.DeadlineExceeded).Once()
	run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(nil).Once()
	m.On("GetWorkflow", anyCtx, "escrow-e1", "").Return(run).Twice()
	res, err := New(m).Wait(context.Background(), "e1")
	require.NoError(t, err, "the SDK's own 65 s poll deadline is not the caller's")
	require.NotNil(t, res)

	m = mocks.NewClient(t)
	run = mocks.NewWorkflowRun(t)
	run.On("Get", anyCtx, mock.AnythingOfType("*escrow.SetupResult")).Return(context.DeadlineExceeded).Once()
	m.On("GetWorkflow", anyCtx, "escrow-e1", "").Return(run).Once()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err = New(m).Wait(ctx, "e1")
	require.ErrorIs(t, err, context.DeadlineExceeded, "the caller's deadline ends the wait")
}
