// Package historytest builds synthetic EscrowSetup workflow histories for
// tests of the instrumentation export: the events Temporal records for an
// escrow's activities, with payloads encoded like the real workflow's
// (including multisig messages in the inputs and results, which the export
// must leave out).
package historytest

import (
	"context"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
)

// Rounds and Roles of an escrow, in order, with each round's activity type.
var (
	Rounds     = instrument.Rounds
	Roles      = []string{"buyer", "vendor", "arbiter"}
	activityOf = map[string]string{"CREATING": "CreateWallet", "PREPARING": "PrepareMultisig", "MAKING": "MakeMultisig",
		"EXCHANGING_1": "ExchangeMultisigKeys", "EXCHANGING_2": "ExchangeMultisigKeys", "VERIFYING": "VerifyMultisig"}
)

// History is a synthetic history under construction.
type History struct {
	events []*historypb.HistoryEvent
	dc     converter.DataConverter
	nextID int64
	acts   int
}

// New starts a history of workflow escrow-<escrowID>, run runID, started at
// start.
func New(escrowID, runID string, start time.Time) *History {
	h := &History{dc: converter.GetDefaultDataConverter()}
	h.add(start, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType:           &commonpb.WorkflowType{Name: escrow.WorkflowName},
			TaskQueue:              &taskqueuepb.TaskQueue{Name: escrow.TaskQueue},
			Input:                  h.payloads(map[string]string{"escrowId": escrowID}),
			OriginalExecutionRunId: runID,
			FirstExecutionRunId:    runID,
			WorkflowId:             escrow.WorkflowID(escrowID),
			Attempt:                1,
		}})
	return h
}

// Events returns the events added so far.
func (h *History) Events() []*historypb.HistoryEvent { return h.events }

// Truncate returns a history of h's first n events (a run still open).
func (h *History) Truncate(n int) *History {
	c := *h
	c.events = append([]*historypb.HistoryEvent(nil), h.events[:min(n, len(h.events))]...)
	return &c
}

func (h *History) payloads(v any) *commonpb.Payloads {
	p, err := h.dc.ToPayloads(v)
	if err != nil {
		panic(err)
	}
	return p
}

func (h *History) add(at time.Time, t enumspb.EventType, attrs any) int64 {
	h.nextID++
	ev := &historypb.HistoryEvent{EventId: h.nextID, EventTime: timestamppb.New(at), EventType: t}
	switch a := attrs.(type) {
	case *historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskScheduledEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskStartedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskCompletedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskFailedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskTimedOutEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_ActivityTaskCanceledEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_WorkflowExecutionCanceledEventAttributes:
		ev.Attributes = a
	case *historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes:
		ev.Attributes = a
	case nil:
	default:
		panic(fmt.Sprintf("historytest: unsupported attributes %T", attrs))
	}
	h.events = append(h.events, ev)
	return h.nextID
}

// Schedule adds an ActivityTaskScheduled event of activity type activity
// with input in and returns its event id.
func (h *History) Schedule(at time.Time, activity string, in any) int64 {
	h.acts++
	return h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
		ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityId:   fmt.Sprint(h.acts),
			ActivityType: &commonpb.ActivityType{Name: activity},
			TaskQueue:    &taskqueuepb.TaskQueue{Name: escrow.TaskQueue},
			Input:        h.payloads(in),
		}})
}

// Start adds the ActivityTaskStarted event of the activity scheduled as
// sched: attempt number attempt, lastFailure the previous attempt's
// failure (nil for none).
func (h *History) Start(at time.Time, sched int64, attempt int32, lastFailure *failurepb.Failure) int64 {
	return h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
		ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{
			ScheduledEventId: sched, Attempt: attempt, LastFailure: lastFailure, Identity: "4242@test-worker",
		}})
}

// Complete adds the ActivityTaskCompleted event of sched with result res.
func (h *History) Complete(at time.Time, sched, started int64, res any) {
	h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
		ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
			ScheduledEventId: sched, StartedEventId: started, Result: h.payloads(res),
		}})
}

// Fail adds the ActivityTaskFailed event of sched.
func (h *History) Fail(at time.Time, sched, started int64, f *failurepb.Failure) {
	h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{
		ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{
			ScheduledEventId: sched, StartedEventId: started, Failure: f,
			RetryState: enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE,
		}})
}

// TimeOut adds the ActivityTaskTimedOut event of sched.
func (h *History) TimeOut(at time.Time, sched, started int64, kind enumspb.TimeoutType, cause *failurepb.Failure) {
	h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, &historypb.HistoryEvent_ActivityTaskTimedOutEventAttributes{
		ActivityTaskTimedOutEventAttributes: &historypb.ActivityTaskTimedOutEventAttributes{
			ScheduledEventId: sched, StartedEventId: started,
			Failure: &failurepb.Failure{Message: "activity timeout", Cause: cause,
				FailureInfo: &failurepb.Failure_TimeoutFailureInfo{TimeoutFailureInfo: &failurepb.TimeoutFailureInfo{TimeoutType: kind}}},
			RetryState: enumspb.RETRY_STATE_TIMEOUT,
		}})
}

// Cancel adds the ActivityTaskCanceled event of sched.
func (h *History) Cancel(at time.Time, sched, started int64) {
	h.add(at, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED, &historypb.HistoryEvent_ActivityTaskCanceledEventAttributes{
		ActivityTaskCanceledEventAttributes: &historypb.ActivityTaskCanceledEventAttributes{ScheduledEventId: sched, StartedEventId: started},
	})
}

// WorkflowTask adds a WorkflowTaskCompleted event (noise the builder must
// skip).
func (h *History) WorkflowTask(at time.Time) {
	h.add(at, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{
		WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{Identity: "4242@test-worker"},
	})
}

// Completed adds the WorkflowExecutionCompleted event with result res.
func (h *History) Completed(at time.Time, res any) {
	h.add(at, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: h.payloads(res)},
	})
}

// Failed adds the WorkflowExecutionFailed event with failure f.
func (h *History) Failed(at time.Time, f *failurepb.Failure) {
	h.add(at, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
		WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: f},
	})
}

// Canceled adds the WorkflowExecutionCanceled event.
func (h *History) Canceled(at time.Time) {
	h.add(at, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, &historypb.HistoryEvent_WorkflowExecutionCanceledEventAttributes{
		WorkflowExecutionCanceledEventAttributes: &historypb.WorkflowExecutionCanceledEventAttributes{},
	})
}

// AppFailure is an application failure of type typ, as an activity or a
// workflow reports it.
func AppFailure(typ, message string) *failurepb.Failure {
	return &failurepb.Failure{Message: message, Source: "GoSDK",
		FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: typ, NonRetryable: true}}}
}

// Step describes one role's run of a round in Escrow.
type Step struct {
	// QueueMs is from scheduled to the last attempt's start; RunMs the
	// last attempt's run.
	QueueMs, RunMs int
	Attempts       int32
	// LastFailure is the type of the previous attempt's failure ("" none).
	LastFailure string
	// Fail, when set, fails the step with this application error type;
	// TimeOut times it out; Cancel cancels it. The escrow then fails
	// (or is cancelled) after the round.
	Fail    string
	TimeOut bool
	Cancel  bool
	// Worker figures reported in a completed step's result.
	LeaseWaitMs, RPCMs int64
	Slot               int
	Recovered          bool
}

// Escrow returns the history of a whole escrow started at start: claim, the
// six rounds (three roles scheduled together, the next round 10 ms after
// the slowest role), finish, close. By default a role's step is queued 5 ms
// and runs 1000 + 100×(role index) ms on slot 3×(round index)+(role index),
// with a lease wait of (role index) ms and 80% of its run in wallet-rpc.
// tweak (may be nil) changes a step. A step that fails, times out or is
// cancelled ends the escrow after its round: FAILED with the step's error
// type (Timeout for a timeout), or CANCELLED.
func Escrow(escrowID, runID string, start time.Time, tweak func(round, role string, s *Step)) *History {
	h := New(escrowID, runID, start)
	t := start.Add(10 * time.Millisecond)
	h.WorkflowTask(t)
	claim := h.Schedule(t, "ClaimEscrow", activities.ClaimInput{EscrowID: escrowID})
	cs := h.Start(t.Add(2*time.Millisecond), claim, 1, nil)
	t = t.Add(20 * time.Millisecond)
	h.Complete(t, claim, cs, activities.ClaimOutput{})

	outcome, reasonType := escrow.OutcomeCompleted, ""
	for ri, round := range Rounds {
		t = t.Add(10 * time.Millisecond)
		h.WorkflowTask(t)
		specs := make([]Step, len(Roles))
		scheds := make([]int64, len(Roles))
		for i, role := range Roles {
			specs[i] = Step{QueueMs: 5, RunMs: 1000 + 100*i, Attempts: 1, LeaseWaitMs: int64(i), Slot: 3*ri + i}
			specs[i].RPCMs = int64(specs[i].RunMs) * 8 / 10
			if tweak != nil {
				tweak(round, role, &specs[i])
			}
			in := activities.StepInput{EscrowID: escrowID, Role: role, Round: round}
			if ri > 0 {
				in.Snapshot = fmt.Sprintf("%s.%s.%s.a1-0123456789", escrowID, role, strings.ToLower(Rounds[ri-1]))
			}
			if ri >= 2 && ri <= 4 {
				in.PeerInfos = []string{peerInfo(round, (i+1)%3), peerInfo(round, (i+2)%3)}
			}
			scheds[i] = h.Schedule(t, activityOf[round], in)
		}
		type closing struct {
			at   time.Time
			role int
		}
		var end time.Time
		var order []closing
		for i := range Roles {
			order = append(order, closing{t.Add(time.Duration(specs[i].QueueMs+specs[i].RunMs) * time.Millisecond), i})
		}
		// Close in time order, like Temporal would record them.
		for a := range order {
			for b := a + 1; b < len(order); b++ {
				if order[b].at.Before(order[a].at) {
					order[a], order[b] = order[b], order[a]
				}
			}
		}
		for _, c := range order {
			sp, i := specs[c.role], c.role
			var last *failurepb.Failure
			if sp.LastFailure != "" {
				last = AppFailure(sp.LastFailure, "previous attempt failed")
				last.GetApplicationFailureInfo().NonRetryable = false
			}
			st := h.Start(t.Add(time.Duration(sp.QueueMs)*time.Millisecond), scheds[i], sp.Attempts, last)
			switch {
			case sp.Fail != "":
				h.Fail(c.at, scheds[i], st, AppFailure(sp.Fail, "peer message MultisigxV2R1 is not valid"))
				outcome, reasonType = escrow.OutcomeFailed, sp.Fail
			case sp.TimeOut:
				h.TimeOut(c.at, scheds[i], st, enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)
				outcome, reasonType = escrow.OutcomeFailed, escrow.TypeTimeout
			case sp.Cancel:
				h.Cancel(c.at, scheds[i], st)
				outcome, reasonType = escrow.OutcomeCancelled, escrow.TypeCancelled
			default:
				h.Complete(c.at, scheds[i], st, activities.StepOutput{
					Snapshot:     fmt.Sprintf("%s.%s.%s.a%d-abcdef0123", escrowID, Roles[i], strings.ToLower(round), sp.Attempts),
					MultisigInfo: peerInfo(Rounds[min(ri+1, len(Rounds)-1)], i),
					Address:      "9wallet" + Roles[i],
					Attempt:      sp.Attempts, LeaseWaitMs: sp.LeaseWaitMs, RPCMs: sp.RPCMs, Slot: sp.Slot, Recovered: sp.Recovered,
				})
			}
			end = c.at
		}
		t = end
		if outcome != escrow.OutcomeCompleted {
			break
		}
	}

	t = t.Add(10 * time.Millisecond)
	h.WorkflowTask(t)
	fin := h.Schedule(t, "FinishEscrow", activities.FinishInput{EscrowID: escrowID, Outcome: outcome, ReasonType: reasonType,
		Reason: "MultisigxV2 message in a reason"})
	fs := h.Start(t.Add(2*time.Millisecond), fin, 1, nil)
	t = t.Add(30 * time.Millisecond)
	h.Complete(t, fin, fs, activities.FinishOutput{Owner: true})
	t = t.Add(10 * time.Millisecond)
	switch outcome {
	case escrow.OutcomeCompleted:
		h.Completed(t, map[string]string{"escrowId": escrowID, "multisigAddress": "9multisig"})
	case escrow.OutcomeCancelled:
		h.Canceled(t)
	default:
		h.Failed(t, AppFailure(reasonType, "escrow setup failed: MultisigxV2 bad"))
	}
	return h
}

// peerInfo is a fake multisig message: it starts with "Multisig" like the
// real ones.
func peerInfo(round string, role int) string {
	return fmt.Sprintf("MultisigxV2R1%s%sSECRETKEYMATERIAL", strings.ToLower(round), Roles[role])
}

// Client serves histories by workflow id (the latest run; a run id must
// match) through GetWorkflowHistory, like client.Client; unknown ids give
// a serviceerror.NotFound.
type Client struct {
	Histories map[string]*History
}

// GetWorkflowHistory implements instrument.HistoryClient.
func (c *Client) GetWorkflowHistory(_ context.Context, workflowID, runID string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	h, ok := c.Histories[workflowID]
	if !ok || (runID != "" && len(h.events) > 0 && h.events[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId() != runID) {
		return &iterator{err: serviceerror.NewNotFound("workflow not found")}
	}
	return &iterator{events: h.events}
}

type iterator struct {
	events []*historypb.HistoryEvent
	err    error
}

func (it *iterator) HasNext() bool { return it.err != nil || len(it.events) > 0 }

func (it *iterator) Next() (*historypb.HistoryEvent, error) {
	if it.err != nil {
		err := it.err
		it.err = nil
		return nil, err
	}
	ev := it.events[0]
	it.events = it.events[1:]
	return ev, nil
}
