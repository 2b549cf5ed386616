package instrument

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
)

// WorkflowType is the workflow type Build accepts.
const WorkflowType = escrow.WorkflowName

// The only fields Build decodes. Decoding into these types (and never into
// activities.StepInput or StepOutput) keeps the multisig messages, wallet
// names and addresses of the payloads out of memory and out of the export.
type (
	workflowInput struct {
		EscrowID string `json:"escrowId"`
	}
	stepInput struct {
		EscrowID string `json:"escrowId"`
		Role     string `json:"role"`
		Round    string `json:"round"`
	}
	stepFigures struct {
		Attempt     int32 `json:"attempt"`
		LeaseWaitMs int64 `json:"leaseWaitMs"`
		RPCMs       int64 `json:"rpcMs"`
		Slot        *int  `json:"slot"`
		Recovered   bool  `json:"recovered"`
	}
)

// Build returns the instrumentation export of one EscrowSetup run from its
// history events (all of them, in order) and the data converter that
// encoded its payloads (nil: the SDK's default). It decodes the activity
// inputs only for the escrow id, role and round and the per-role steps'
// results only for the worker's figures; a payload dc cannot decode is an
// error (pass the data converter, with its payload codec, that the workers
// use). A history without a close event gives a RUNNING export.
func Build(events []*historypb.HistoryEvent, dc converter.DataConverter) (Escrow, error) {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	if len(events) == 0 {
		return Escrow{}, errors.New("instrument: empty history")
	}
	e := Escrow{Schema: Schema, State: StateRunning, Steps: []Step{}, Lifecycle: []Step{}}
	var (
		steps []*Step // in scheduling order
		bySch = map[int64]*Step{}
		last  time.Time
	)
	first := events[0].GetWorkflowExecutionStartedEventAttributes()
	if events[0].GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED || first == nil {
		return Escrow{}, fmt.Errorf("instrument: history starts with %s, want WorkflowExecutionStarted", events[0].GetEventType())
	}
	if got := first.GetWorkflowType().GetName(); got != WorkflowType {
		return Escrow{}, fmt.Errorf("instrument: workflow type %q, want %s", got, WorkflowType)
	}
	e.Started = events[0].GetEventTime().AsTime()
	e.WorkflowID = first.GetWorkflowId()
	e.RunID = first.GetOriginalExecutionRunId()
	var in workflowInput
	if err := fromPayloads(dc, first.GetInput(), &in); err == nil && escrow.ValidateEscrowID(in.EscrowID) == nil {
		e.EscrowID = in.EscrowID
	}
	if e.EscrowID == "" && strings.HasPrefix(e.WorkflowID, escrow.WorkflowIDPrefix) {
		e.EscrowID = strings.TrimPrefix(e.WorkflowID, escrow.WorkflowIDPrefix)
	}
	if e.WorkflowID == "" && e.EscrowID != "" {
		e.WorkflowID = escrow.WorkflowIDPrefix + e.EscrowID
	}

	for _, ev := range events {
		at := ev.GetEventTime().AsTime()
		if at.After(last) {
			last = at
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := ev.GetActivityTaskScheduledEventAttributes()
			s := &Step{Activity: a.GetActivityType().GetName(), ActivityID: a.GetActivityId(),
				Status: StatusScheduled, Scheduled: at}
			var si stepInput
			if err := fromPayloads(dc, a.GetInput(), &si); err != nil && !errors.Is(err, errNoPayload) {
				return Escrow{}, fmt.Errorf("instrument: decode the input of activity %s (event %d): %w", s.Activity, ev.GetEventId(), err)
			}
			if index(Roles, si.Role) < len(Roles) && index(Rounds, si.Round) < len(Rounds) {
				s.Role, s.Round = si.Role, si.Round
			}
			steps = append(steps, s)
			bySch[ev.GetEventId()] = s
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if s := bySch[a.GetScheduledEventId()]; s != nil {
				s.Status, s.Started, s.Attempts = StatusRunning, at, a.GetAttempt()
				s.LastFailureType = failureType(a.GetLastFailure())
				s.Worker = a.GetIdentity()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			if s := bySch[a.GetScheduledEventId()]; s != nil {
				s.Status, s.Closed = StatusCompleted, at
				var f stepFigures
				if s.Role != "" {
					err := fromPayloads(dc, a.GetResult(), &f)
					if err != nil && !errors.Is(err, errNoPayload) {
						return Escrow{}, fmt.Errorf("instrument: decode the result of activity %s (event %d): %w", s.Activity, ev.GetEventId(), err)
					}
					s.Reported = err == nil
					s.LeaseWaitMs, s.RPCMs, s.Slot, s.Recovered = f.LeaseWaitMs, f.RPCMs, f.Slot, f.Recovered
					if s.Attempts == 0 {
						s.Attempts = f.Attempt
					}
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			a := ev.GetActivityTaskFailedEventAttributes()
			if s := bySch[a.GetScheduledEventId()]; s != nil {
				s.Status, s.Closed, s.ErrorType = StatusFailed, at, failureType(a.GetFailure())
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
			a := ev.GetActivityTaskTimedOutEventAttributes()
			if s := bySch[a.GetScheduledEventId()]; s != nil {
				s.Status, s.Closed, s.ErrorType = StatusTimedOut, at, failureType(a.GetFailure())
				if s.LastFailureType == "" {
					s.LastFailureType = failureType(a.GetFailure().GetCause())
				}
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			a := ev.GetActivityTaskCanceledEventAttributes()
			if s := bySch[a.GetScheduledEventId()]; s != nil {
				s.Status, s.Closed = StatusCancelled, at
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			e.State, e.Closed = StateCompleted, at
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			e.State, e.Closed = StateFailed, at
			e.ReasonType = workflowFailureType(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			e.State, e.Closed, e.ReasonType = StateCancelled, at, escrow.TypeCancelled
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			e.State, e.Closed, e.ReasonType = StateFailed, at, escrow.TypeTerminated
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			e.State, e.Closed, e.ReasonType = StateFailed, at, escrow.TypeTimeout
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			e.State, e.Closed, e.ReasonType = StateFailed, at, "ContinuedAsNew"
		}
	}

	for _, s := range steps {
		if !s.Started.IsZero() {
			s.QueueMs = ms(s.Started.Sub(s.Scheduled))
		}
		if s.closed() {
			s.DurationMs = ms(s.Closed.Sub(s.Scheduled))
			if !s.Started.IsZero() {
				s.RunMs = ms(s.Closed.Sub(s.Started))
			}
		}
		if s.Role != "" {
			e.Steps = append(e.Steps, *s)
		} else {
			e.Lifecycle = append(e.Lifecycle, *s)
		}
	}
	sort.SliceStable(e.Steps, func(i, j int) bool {
		a, b := e.Steps[i], e.Steps[j]
		if ra, rb := index(Rounds, a.Round), index(Rounds, b.Round); ra != rb {
			return ra < rb
		}
		return index(Roles, a.Role) < index(Roles, b.Role)
	})
	end := e.Closed
	if end.IsZero() {
		end = last
	}
	e.TotalMs = ms(end.Sub(e.Started))
	Derive(&e)
	return e, nil
}

// Derive recomputes e.Rounds and e.Summary from e.Steps and e.TotalMs.
func Derive(e *Escrow) {
	e.Rounds = []Round{}
	byRound := map[string]int{}
	for _, s := range e.Steps {
		i, ok := byRound[s.Round]
		if !ok {
			i = len(e.Rounds)
			byRound[s.Round] = i
			e.Rounds = append(e.Rounds, Round{Round: s.Round, Start: s.Scheduled, CriticalRole: s.Role, CriticalMs: -1})
		}
		r := &e.Rounds[i]
		if s.Scheduled.Before(r.Start) {
			r.Start = s.Scheduled
		}
		if s.closed() && s.Closed.After(r.End) {
			r.End = s.Closed
		}
		if s.DurationMs > r.CriticalMs {
			r.CriticalRole, r.CriticalMs = s.Role, s.DurationMs
		}
	}
	sort.SliceStable(e.Rounds, func(i, j int) bool {
		return index(Rounds, e.Rounds[i].Round) < index(Rounds, e.Rounds[j].Round)
	})
	sum := Summary{Steps: len(e.Steps)}
	for i := range e.Rounds {
		r := &e.Rounds[i]
		if !r.End.IsZero() {
			r.SpanMs = ms(r.End.Sub(r.Start))
		}
		closed := map[string]bool{}
		for _, s := range e.Steps {
			if s.Round == r.Round && s.closed() {
				closed[s.Role] = true
			}
		}
		r.Complete = len(closed) == len(Roles)
		sum.CriticalPathMs += r.SpanMs
	}
	for _, s := range e.Steps {
		switch s.Status {
		case StatusFailed, StatusTimedOut, StatusCancelled:
			sum.Failed++
		}
		if s.Attempts > 1 {
			sum.Retried++
			sum.ExtraAttempts += int(s.Attempts - 1)
		}
		if s.Recovered {
			sum.Recovered++
		}
		if s.LeaseWaitMs > sum.MaxLeaseWaitMs {
			sum.MaxLeaseWaitMs, sum.MaxLeaseWaitStep = s.LeaseWaitMs, s.Key()
		}
		sum.TotalLeaseWaitMs += s.LeaseWaitMs
		sum.TotalRPCMs += s.RPCMs
	}
	sum.OutsideRoundsMs = e.TotalMs - sum.CriticalPathMs
	e.Summary = sum
}

// errNoPayload: an activity without input or result.
var errNoPayload = errors.New("no payload")

// fromPayloads decodes the first payload of p into v.
func fromPayloads(dc converter.DataConverter, p *commonpb.Payloads, v any) error {
	if len(p.GetPayloads()) == 0 {
		return errNoPayload
	}
	return dc.FromPayload(p.GetPayloads()[0], v)
}

// failureType names a failure by its kind, never by its message: the
// application error type, Timeout:<kind>, Cancelled, Terminated,
// ServerFailure; an activity failure wrapper is named by its cause.
func failureType(f *failurepb.Failure) string {
	switch {
	case f == nil:
		return ""
	case f.GetApplicationFailureInfo() != nil:
		if t := f.GetApplicationFailureInfo().GetType(); t != "" {
			return t
		}
		return "ApplicationError"
	case f.GetTimeoutFailureInfo() != nil:
		return "Timeout:" + f.GetTimeoutFailureInfo().GetTimeoutType().String()
	case f.GetCanceledFailureInfo() != nil:
		return escrow.TypeCancelled
	case f.GetTerminatedFailureInfo() != nil:
		return escrow.TypeTerminated
	case f.GetServerFailureInfo() != nil:
		return "ServerFailure"
	case f.GetActivityFailureInfo() != nil && f.GetCause() != nil:
		return failureType(f.GetCause())
	}
	return escrow.TypeUnknown
}

// workflowFailureType is the reason type of a failed workflow run, as the
// starter package reports it: the outermost application error type, else
// Cancelled, Timeout or Unknown.
func workflowFailureType(f *failurepb.Failure) string {
	for ; f != nil; f = f.GetCause() {
		switch {
		case f.GetApplicationFailureInfo() != nil:
			if t := f.GetApplicationFailureInfo().GetType(); t != "" {
				return t
			}
			return escrow.TypeUnknown
		case f.GetCanceledFailureInfo() != nil:
			return escrow.TypeCancelled
		case f.GetTimeoutFailureInfo() != nil:
			return escrow.TypeTimeout
		}
	}
	return escrow.TypeUnknown
}

// HistoryClient is the part of client.Client Fetch uses.
type HistoryClient interface {
	GetWorkflowHistory(ctx context.Context, workflowID, runID string, isLongPoll bool,
		filterType enumspb.HistoryEventFilterType) client.HistoryEventIterator
}

// Fetch reads every event of run runID ("" = the latest run) of workflow
// workflowID and builds its export with dc (nil: the SDK's default). The
// export's WorkflowID and RunID are those of the history read.
func Fetch(ctx context.Context, c HistoryClient, workflowID, runID string, dc converter.DataConverter) (Escrow, error) {
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return Escrow{}, fmt.Errorf("instrument: history of %s: %w", workflowID, err)
		}
		events = append(events, ev)
	}
	e, err := Build(events, dc)
	if err != nil {
		return Escrow{}, fmt.Errorf("instrument: history of %s: %w", workflowID, err)
	}
	e.WorkflowID = workflowID
	if runID != "" {
		e.RunID = runID
	}
	return e, nil
}
