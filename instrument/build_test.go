package instrument_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/instrument/historytest"
)

var t0 = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

func at(msec int) time.Time { return t0.Add(time.Duration(msec) * time.Millisecond) }

func intp(n int) *int { return &n }

// build builds the synthetic escrow history; tweak may be nil.
func build(t *testing.T, id string, start time.Time, tweak func(round, role string, s *historytest.Step)) instrument.Escrow {
	t.Helper()
	e, err := instrument.Build(historytest.Escrow(id, "run-"+id, start, tweak).Events(), nil)
	require.NoError(t, err)
	return e
}

func find(t *testing.T, e instrument.Escrow, round, role string) instrument.Step {
	t.Helper()
	for _, s := range e.Steps {
		if s.Round == round && s.Role == role {
			return s
		}
	}
	t.Fatalf("no step %s/%s", round, role)
	return instrument.Step{}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(round, role string, s *historytest.Step)
		// want
		state, reasonType string
		steps             int
		totalMs           int64
		summary           instrument.Summary
		check             func(t *testing.T, e instrument.Escrow)
	}{
		{
			name:    "happy",
			state:   instrument.StateCompleted,
			steps:   18,
			totalMs: 7370,
			summary: instrument.Summary{Steps: 18, CriticalPathMs: 6 * 1205, OutsideRoundsMs: 7370 - 6*1205,
				MaxLeaseWaitMs: 2, MaxLeaseWaitStep: "CREATING/arbiter", TotalLeaseWaitMs: 6 * 3,
				TotalRPCMs: 6 * (800 + 880 + 960)},
			check: func(t *testing.T, e instrument.Escrow) {
				assert.Equal(t, instrument.Step{
					Activity: "MakeMultisig", ActivityID: "9", Round: "MAKING", Role: "vendor", Status: instrument.StatusCompleted,
					Scheduled: at(40 + 2*1215), Started: at(40 + 2*1215 + 5), Closed: at(40 + 2*1215 + 1105),
					QueueMs: 5, RunMs: 1100, DurationMs: 1105, Attempts: 1, Worker: "4242@test-worker",
					Reported: true, LeaseWaitMs: 1, RPCMs: 880, Slot: intp(7),
				}, find(t, e, "MAKING", "vendor"))
				require.Len(t, e.Rounds, 6)
				for i, r := range e.Rounds {
					assert.Equal(t, instrument.Round{Round: instrument.Rounds[i], Start: at(40 + 1215*i), End: at(40 + 1215*i + 1205),
						SpanMs: 1205, CriticalRole: "arbiter", CriticalMs: 1205, Complete: true}, r)
				}
				require.Len(t, e.Lifecycle, 2)
				assert.Equal(t, "ClaimEscrow", e.Lifecycle[0].Activity)
				assert.Equal(t, instrument.StatusCompleted, e.Lifecycle[0].Status)
				assert.False(t, e.Lifecycle[0].Reported, "no worker figures for lifecycle activities")
				assert.Equal(t, "FinishEscrow", e.Lifecycle[1].Activity)
				assert.Equal(t, at(7370), e.Closed)
				// Steps in round, then role order.
				for i, s := range e.Steps {
					assert.Equal(t, instrument.Rounds[i/3], s.Round)
					assert.Equal(t, instrument.Roles[i%3], s.Role)
				}
			},
		},
		{
			name: "a retried step with a failed attempt",
			tweak: func(round, role string, s *historytest.Step) {
				if round == "MAKING" && role == "vendor" {
					s.QueueMs, s.RunMs, s.Attempts, s.LastFailure = 3005, 1100, 3, "WalletUnavailable"
					s.LeaseWaitMs, s.Recovered = 250, true
				}
			},
			state:   instrument.StateCompleted,
			steps:   18,
			totalMs: 7370 + 2900, // the vendor closes 3000 ms later, 2900 after the arbiter would have
			summary: instrument.Summary{Steps: 18, Retried: 1, ExtraAttempts: 2, Recovered: 1,
				CriticalPathMs: 6*1205 + 2900, OutsideRoundsMs: 140,
				MaxLeaseWaitMs: 250, MaxLeaseWaitStep: "MAKING/vendor", TotalLeaseWaitMs: 6*3 - 1 + 250,
				TotalRPCMs: 6 * (800 + 880 + 960)},
			check: func(t *testing.T, e instrument.Escrow) {
				s := find(t, e, "MAKING", "vendor")
				assert.Equal(t, int32(3), s.Attempts)
				assert.Equal(t, "WalletUnavailable", s.LastFailureType)
				assert.Empty(t, s.ErrorType)
				assert.Equal(t, int64(3005), s.QueueMs)
				assert.Equal(t, int64(1100), s.RunMs)
				assert.Equal(t, int64(4105), s.DurationMs)
				assert.True(t, s.Recovered)
				r := e.Rounds[2]
				assert.Equal(t, "vendor", r.CriticalRole)
				assert.Equal(t, int64(4105), r.CriticalMs)
				assert.Equal(t, int64(4105), r.SpanMs)
			},
		},
		{
			name: "a failed escrow",
			tweak: func(round, role string, s *historytest.Step) {
				if round == "MAKING" && role == "vendor" {
					s.Fail = "InvalidMultisigMessage"
					s.RunMs = 50
				}
			},
			state:      instrument.StateFailed,
			reasonType: "InvalidMultisigMessage",
			steps:      9,
			totalMs:    40 + 3*1215 - 10 + 50, // three rounds, then finish
			summary: instrument.Summary{Steps: 9, Failed: 1, CriticalPathMs: 3 * 1205, OutsideRoundsMs: 40 + 3*1215 - 10 + 50 - 3*1205,
				MaxLeaseWaitMs: 2, MaxLeaseWaitStep: "CREATING/arbiter", TotalLeaseWaitMs: 3*3 - 1,
				TotalRPCMs: 3*(800+880+960) - 880},
			check: func(t *testing.T, e instrument.Escrow) {
				s := find(t, e, "MAKING", "vendor")
				assert.Equal(t, instrument.StatusFailed, s.Status)
				assert.Equal(t, "InvalidMultisigMessage", s.ErrorType)
				assert.Equal(t, int32(1), s.Attempts)
				assert.False(t, s.Reported)
				assert.Nil(t, s.Slot)
				assert.Equal(t, int64(55), s.DurationMs)
				assert.True(t, e.Rounds[2].Complete, "the round's steps all closed")
				assert.Equal(t, instrument.StatusCompleted, find(t, e, "MAKING", "arbiter").Status)
			},
		},
		{
			name: "a timed-out step",
			tweak: func(round, role string, s *historytest.Step) {
				if round == "CREATING" && role == "buyer" {
					s.TimeOut, s.Attempts, s.LastFailure = true, 12, "WalletUnavailable"
				}
			},
			state: instrument.StateFailed, reasonType: "Timeout", steps: 3, totalMs: 40 + 1205 + 50,
			summary: instrument.Summary{Steps: 3, Failed: 1, Retried: 1, ExtraAttempts: 11, CriticalPathMs: 1205, OutsideRoundsMs: 90,
				MaxLeaseWaitMs: 2, MaxLeaseWaitStep: "CREATING/arbiter", TotalLeaseWaitMs: 3, TotalRPCMs: 880 + 960},
			check: func(t *testing.T, e instrument.Escrow) {
				s := find(t, e, "CREATING", "buyer")
				assert.Equal(t, instrument.StatusTimedOut, s.Status)
				assert.Equal(t, "Timeout:Heartbeat", s.ErrorType)
				assert.Equal(t, "WalletUnavailable", s.LastFailureType)
			},
		},
		{
			name: "a cancelled escrow",
			tweak: func(round, role string, s *historytest.Step) {
				if round == "PREPARING" {
					s.Cancel = true
				}
			},
			state: instrument.StateCancelled, reasonType: "Cancelled", steps: 6, totalMs: 40 + 1215 + 1205 + 50,
			summary: instrument.Summary{Steps: 6, Failed: 3, CriticalPathMs: 2 * 1205, OutsideRoundsMs: 40 + 10 + 50,
				MaxLeaseWaitMs: 2, MaxLeaseWaitStep: "CREATING/arbiter", TotalLeaseWaitMs: 3, TotalRPCMs: 800 + 880 + 960},
			check: func(t *testing.T, e instrument.Escrow) {
				assert.Equal(t, instrument.StatusCancelled, find(t, e, "PREPARING", "arbiter").Status)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := build(t, "e1", t0, tt.tweak)

			assert.Equal(t, instrument.Schema, e.Schema)
			assert.Equal(t, "e1", e.EscrowID)
			assert.Equal(t, "escrow-e1", e.WorkflowID)
			assert.Equal(t, "run-e1", e.RunID)
			assert.Equal(t, tt.state, e.State)
			assert.Equal(t, tt.reasonType, e.ReasonType)
			assert.Equal(t, t0, e.Started)
			assert.Len(t, e.Steps, tt.steps)
			assert.Equal(t, tt.totalMs, e.TotalMs)
			assert.Equal(t, tt.summary, e.Summary)
			if tt.check != nil {
				tt.check(t, e)
			}
			assertNoMultisig(t, e)
		})
	}
}

// assertNoMultisig checks that no string of e's JSON (value or key) starts
// with "Multisig" or contains the fake key material of the history.
func assertNoMultisig(t *testing.T, e instrument.Escrow) {
	t.Helper()
	b, err := instrument.Marshal(e)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "Multisig"+"x")
	assert.NotContains(t, string(b), "SECRETKEYMATERIAL")
	assert.NotContains(t, string(b), "9wallet", "no addresses")
	assert.NotContains(t, string(b), ".a1-", "no snapshot names")
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			assert.False(t, strings.HasPrefix(v, "Multisig"), "string %q", v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for k, x := range v {
				assert.False(t, strings.HasPrefix(k, "Multisig"), "key %q", k)
				walk(x)
			}
		}
	}
	walk(v)
}

func TestBuildRunning(t *testing.T) {
	events := historytest.Escrow("e1", "run-1", t0, nil).Events()
	// Cut the history after MAKING/buyer started.
	var cut []*historypb.HistoryEvent
	started := 0
	for _, ev := range events {
		cut = append(cut, ev)
		if ev.GetActivityTaskStartedEventAttributes() != nil {
			started++
		}
		if started == 1+3+3+1 { // claim, CREATING, PREPARING, MAKING/buyer
			break
		}
	}

	e, err := instrument.Build(cut, nil)

	require.NoError(t, err)
	assert.Equal(t, instrument.StateRunning, e.State)
	assert.True(t, e.Closed.IsZero())
	assert.Equal(t, int64(40+2*1215+5), e.TotalMs, "up to the last event")
	require.Len(t, e.Steps, 9)
	assert.Equal(t, instrument.StatusRunning, find(t, e, "MAKING", "buyer").Status)
	assert.Equal(t, instrument.StatusScheduled, find(t, e, "MAKING", "arbiter").Status)
	assert.False(t, e.Rounds[2].Complete)
	assert.True(t, e.Rounds[2].End.IsZero())
	assert.Equal(t, int64(0), e.Rounds[2].SpanMs)
}

func TestBuildErrors(t *testing.T) {
	good := historytest.Escrow("e1", "run-1", t0, nil).Events()
	other := historytest.New("e1", "run-1", t0).Events()
	other[0].GetWorkflowExecutionStartedEventAttributes().WorkflowType.Name = "Other"
	// Payloads encrypted by a codec the given data converter lacks.
	encrypted := func(input bool) []*historypb.HistoryEvent {
		events := historytest.Escrow("e1", "run-1", t0, nil).Events()
		for _, ev := range events {
			p := ev.GetActivityTaskCompletedEventAttributes().GetResult()
			if input {
				p = ev.GetActivityTaskScheduledEventAttributes().GetInput()
			}
			for _, pl := range p.GetPayloads() {
				pl.Metadata["encoding"] = []byte("binary/encrypted")
			}
		}
		return events
	}
	tests := []struct {
		name    string
		give    []*historypb.HistoryEvent
		wantErr string
	}{
		{name: "empty", give: nil, wantErr: "empty history"},
		{name: "no start event", give: good[1:], wantErr: "want WorkflowExecutionStarted"},
		{name: "another workflow type", give: other, wantErr: `workflow type "Other"`},
		{name: "undecodable input", give: encrypted(true), wantErr: "decode the input of activity ClaimEscrow (event 3)"},
		{name: "undecodable result", give: encrypted(false), wantErr: "decode the result of activity CreateWallet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instrument.Build(tt.give, nil)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestFetch(t *testing.T) {
	c := &historytest.Client{Histories: map[string]*historytest.History{
		"escrow-e1": historytest.Escrow("e1", "run-1", t0, nil),
	}}
	tests := []struct {
		name         string
		giveWorkflow string
		giveRun      string
		wantErr      bool
	}{
		{name: "latest run", giveWorkflow: "escrow-e1"},
		{name: "given run", giveWorkflow: "escrow-e1", giveRun: "run-1"},
		{name: "unknown workflow", giveWorkflow: "escrow-nope", wantErr: true},
		{name: "unknown run", giveWorkflow: "escrow-e1", giveRun: "run-2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := instrument.Fetch(context.Background(), c, tt.giveWorkflow, tt.giveRun, nil)

			if tt.wantErr {
				var nf *serviceerror.NotFound
				assert.ErrorAs(t, err, &nf)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "escrow-e1", e.WorkflowID)
			assert.Equal(t, "run-1", e.RunID)
			assert.Len(t, e.Steps, 18)
		})
	}
}

func TestMarshalRead(t *testing.T) {
	e := build(t, "e1", t0, nil)
	b, err := instrument.Marshal(e)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "{\n  \"schema\": \"escrowflow.instrumentation/v1\",\n"))
	assert.True(t, strings.HasSuffix(string(b), "}\n"))

	got, err := instrument.Read(strings.NewReader(string(b)))
	require.NoError(t, err)
	assert.Equal(t, e, got)

	_, err = instrument.Read(strings.NewReader(`{"schema":"escrowflow.instrumentation/v0"}`))
	assert.ErrorContains(t, err, "schema")
	_, err = instrument.Read(strings.NewReader(`{`))
	assert.Error(t, err)
}

// TestBuildRecordedHistories builds exports from the real histories that
// workflows/replay_test.go replays (recorded on a real Temporal server with
// real wallet-rpc). It skips when there are none.
func TestBuildRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "workflows", "testdata", "*.json"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Skip("no recorded histories in workflows/testdata")
	}
	// What the recorded scenarios must show, by file name; other files
	// only have to build.
	want := map[string]func(t *testing.T, e instrument.Escrow){
		"happy.json": func(t *testing.T, e instrument.Escrow) {
			assert.Equal(t, instrument.StateCompleted, e.State)
			assert.Len(t, e.Steps, 18)
			for _, s := range e.Steps {
				assert.True(t, s.Reported, "%s reported its figures", s.Key())
				assert.NotNil(t, s.Slot)
			}
		},
		"retried_round.json": func(t *testing.T, e instrument.Escrow) {
			assert.Equal(t, instrument.StateCompleted, e.State)
			assert.Positive(t, e.Summary.Retried)
			for _, s := range e.Steps {
				if s.Attempts > 1 {
					assert.NotEmpty(t, s.LastFailureType, "%s was retried after a failure", s.Key())
				}
			}
		},
		"failed_duplicate.json": func(t *testing.T, e instrument.Escrow) {
			assert.Equal(t, instrument.StateFailed, e.State)
			assert.Equal(t, "DuplicateEscrow", e.ReasonType)
			assert.Empty(t, e.Steps)
		},
		"cancelled.json": func(t *testing.T, e instrument.Escrow) {
			assert.Equal(t, instrument.StateCancelled, e.State)
			assert.Equal(t, "Cancelled", e.ReasonType)
		},
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			require.NoError(t, err)
			defer f.Close()
			h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			require.NoError(t, err)

			e, err := instrument.Build(h.Events, nil)

			require.NoError(t, err)
			assert.NotEqual(t, instrument.StateRunning, e.State)
			assert.NotEmpty(t, e.EscrowID)
			assert.NotEmpty(t, e.RunID)
			for _, s := range e.Steps {
				assert.Contains(t, instrument.Rounds, s.Round)
				assert.Contains(t, instrument.Roles, s.Role)
				assert.False(t, s.Scheduled.After(s.Closed), "%s scheduled before it closed", s.Key())
			}
			assertNoMultisig(t, e)
			if check := want[filepath.Base(file)]; check != nil {
				check(t, e)
			}
		})
	}
}
