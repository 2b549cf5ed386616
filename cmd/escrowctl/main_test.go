package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/demo"
	"github.com/escrowflow/escrowflow/starter"
)

// fakeEscrows answers like a *starter.Client over a Temporal server where
// escrows complete as configured.
type fakeEscrows struct {
	mu       sync.Mutex
	started  []string
	inputs   []escrow.SetupInput
	startErr map[string]error
	// result returns escrow id's outcome; nil means a confirmed result.
	result func(id string) (*escrow.SetupResult, error)
	status map[string][]escrow.State // states Status walks through
	polls  map[string]int
	list   []starter.Summary
	closed bool
	// history answers export's dial (see withHistories).
	history historyDialFunc
}

func (f *fakeEscrows) StartSetup(ctx context.Context, in escrow.SetupInput) (starter.Run, error) {
	f.mu.Lock()
	f.inputs = append(f.inputs, in)
	f.mu.Unlock()
	return f.Start(ctx, in.EscrowID)
}

func (f *fakeEscrows) Start(_ context.Context, id string) (starter.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := escrow.ValidateEscrowID(id); err != nil {
		return starter.Run{}, err
	}
	if err := f.startErr[id]; err != nil {
		return starter.Run{}, err
	}
	f.started = append(f.started, id)
	return starter.Run{EscrowID: id, WorkflowID: escrow.WorkflowID(id), RunID: "run-" + id}, nil
}

func (f *fakeEscrows) Describe(ctx context.Context, id string) (starter.Description, error) {
	st, err := f.Status(ctx, id)
	if err != nil {
		return starter.Description{}, err
	}
	return starter.Description{
		Summary: starter.Summary{EscrowID: id, WorkflowID: escrow.WorkflowID(id), RunID: "run-" + id, State: st.State,
			Status: "Running", Start: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
		Status:  st,
		Queried: true,
	}, nil
}

func (f *fakeEscrows) Status(_ context.Context, id string) (escrow.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	states, ok := f.status[id]
	if !ok {
		return escrow.Status{}, starter.ErrEscrowNotFound
	}
	if f.polls == nil {
		f.polls = map[string]int{}
	}
	n := min(f.polls[id], len(states)-1)
	f.polls[id]++
	return escrow.Status{EscrowID: id, State: states[n], Roles: map[escrow.Role]escrow.RoleStatus{
		escrow.Buyer: {Round: escrow.RoundMake, Step: "running"},
	}}, nil
}

func (f *fakeEscrows) Result(ctx context.Context, id string) (*escrow.SetupResult, error) {
	return f.Wait(ctx, id)
}

func (f *fakeEscrows) Wait(_ context.Context, id string) (*escrow.SetupResult, error) {
	if f.result != nil {
		if res, err := f.result(id); res != nil || err != nil {
			return res, err
		}
	}
	return okResult(id, 0), nil
}

func (f *fakeEscrows) List(context.Context, escrow.State, int) ([]starter.Summary, error) {
	return f.list, nil
}

func (f *fakeEscrows) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

// okResult is a confirmed result whose rounds start at +startMs.
func okResult(id string, startMs int) *escrow.SetupResult {
	addr := "9" + strings.Repeat("a", 10) + id
	res := &escrow.SetupResult{EscrowID: id, MultisigAddress: addr, Wallets: map[escrow.Role]escrow.WalletResult{}, Rounds: stdRounds(startMs)}
	for _, role := range escrow.Roles {
		res.Wallets[role] = escrow.WalletResult{Wallet: id + "-" + string(role) + "-final", Address: addr}
	}
	return res
}

// invocation runs escrowctl with a fake Temporal.
type invocation struct {
	stdout, stderr bytes.Buffer
	dialed         []string // "address namespace"
	err            error
}

func invoke(t *testing.T, f *fakeEscrows, env map[string]string, args ...string) *invocation {
	t.Helper()
	inv := &invocation{}
	dial := func(_ context.Context, t target, _ io.Writer) (escrows, error) {
		inv.dialed = append(inv.dialed, t.address+" "+t.namespace)
		return f, nil
	}
	getenv := func(k string) string { return env[k] }
	history := func(ctx context.Context, t target, stderr io.Writer) (historyConn, error) {
		if f.history == nil {
			return nil, errors.New("test: no histories")
		}
		return f.history(ctx, t, stderr)
	}
	inv.err = run(context.Background(), args, getenv, &inv.stdout, &inv.stderr, dialers{escrows: dial, history: history})
	return inv
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantCode   int // exit status
		wantStdout []string
		wantStderr []string
	}{
		{name: "no command", give: nil, wantCode: 2, wantStderr: []string{"Commands:", "demo"}},
		{name: "unknown command", give: []string{"frobnicate"}, wantCode: 2, wantStderr: []string{"Commands:"}},
		{name: "unknown flag", give: []string{"start", "--frob", "x"}, wantCode: 2, wantStderr: []string{"-wait"}},
		{name: "help", give: []string{"--help"}, wantStdout: []string{"Commands:", "start", "status", "result", "list", "demo", "-address", "-namespace", "-json"}},
		{name: "start help", give: []string{"start", "--help"}, wantStdout: []string{"escrowctl start", "-wait", "-timeout", "-address", "-namespace", "-json"}},
		{name: "status help", give: []string{"status", "-h"}, wantStdout: []string{"escrowctl status ID", "-address", "-json"}},
		{name: "result help", give: []string{"result", "--help"}, wantStdout: []string{"-wait", "-timeout"}},
		{name: "list help", give: []string{"list", "--help"}, wantStdout: []string{"-state", "-page-size"}},
		{name: "demo help", give: []string{"demo", "--help"}, wantStdout: []string{"-count", "-prefix", "-poll", "-width", "-timeout"}},
		{name: "start without ids", give: []string{"start"}, wantCode: 2},
		{name: "status of two", give: []string{"status", "a", "b"}, wantCode: 2},
		{name: "list with args", give: []string{"list", "x"}, wantCode: 2},
		{name: "demo count zero", give: []string{"demo", "--count", "0"}, wantCode: 2},
		{name: "demo bad prefix", give: []string{"demo", "--prefix", "../x"}, wantCode: 2},
		{name: "demo long prefix", give: []string{"demo", "--prefix", strings.Repeat("p", 50)}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, &fakeEscrows{}, nil, tt.give...)

			if tt.wantCode == 0 {
				assert.NoError(t, inv.err)
			} else {
				require.Error(t, inv.err)
				assert.Equal(t, tt.wantCode, exitCode(inv.err))
				assert.Empty(t, inv.dialed, "no connection on a usage error")
			}
			for _, s := range tt.wantStdout {
				assert.Contains(t, inv.stdout.String(), s)
			}
			for _, s := range tt.wantStderr {
				assert.Contains(t, inv.stderr.String(), s)
			}
		})
	}
}

func TestGlobalFlags(t *testing.T) {
	f := &fakeEscrows{list: []starter.Summary{}}
	tests := []struct {
		name     string
		giveEnv  map[string]string
		giveArgs []string
		want     string
	}{
		{name: "defaults", giveArgs: []string{"list"}, want: "127.0.0.1:7233 default"},
		{name: "env", giveEnv: map[string]string{EnvAddress: "temporal:7233", EnvNamespace: "escrow"}, giveArgs: []string{"list"}, want: "temporal:7233 escrow"},
		{name: "flags before the command override env", giveEnv: map[string]string{EnvAddress: "temporal:7233"},
			giveArgs: []string{"--address", "h:1", "--namespace", "ns", "list"}, want: "h:1 ns"},
		{name: "flags after the command", giveArgs: []string{"list", "--address=h:2", "--namespace", "n2"}, want: "h:2 n2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, f, tt.giveEnv, tt.giveArgs...)

			require.NoError(t, inv.err)
			assert.Equal(t, []string{tt.want}, inv.dialed)
		})
	}
}

func TestStart(t *testing.T) {
	dup := &starter.DuplicateEscrowError{EscrowID: "e2", RunID: "run-old"}
	tests := []struct {
		name       string
		give       []string
		wantErr    bool
		wantStdout []string
	}{
		{
			name:       "all start",
			give:       []string{"start", "e1", "e3"},
			wantStdout: []string{"e1  started  workflow escrow-e1  run run-e1", "e3  started  workflow escrow-e3  run run-e3"},
		},
		{
			name:       "duplicate and invalid",
			give:       []string{"start", "e1", "e2", "bad/id"},
			wantErr:    true,
			wantStdout: []string{"e1      started", `e2      not started  escrow "e2" already exists (workflow escrow-e2, run run-old)`, `bad/id  not started  invalid escrow id "bad/id"`},
		},
		{
			name:       "wait, flags after ids",
			give:       []string{"start", "e1", "e3", "--wait"},
			wantStdout: []string{"e1  COMPLETED  9aaaaaaaaaae1", "e3  COMPLETED  9aaaaaaaaaae3"},
		},
		{
			name:       "wait with a failure",
			give:       []string{"start", "--wait", "e1", "fails"},
			wantErr:    true,
			wantStdout: []string{"e1     COMPLETED", `fails  FAILED     escrow "fails" failed (InvalidMultisigMessage): bad kex`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeEscrows{
				startErr: map[string]error{"e2": dup},
				result: func(id string) (*escrow.SetupResult, error) {
					if id == "fails" {
						return nil, &starter.EscrowFailedError{EscrowID: id, Type: escrow.TypeInvalidMultisigMessage, Message: "bad kex"}
					}
					return nil, nil
				},
			}

			inv := invoke(t, f, nil, tt.give...)

			if tt.wantErr {
				require.Error(t, inv.err)
				assert.Equal(t, 1, exitCode(inv.err))
			} else {
				require.NoError(t, inv.err)
			}
			for _, s := range tt.wantStdout {
				assert.Contains(t, inv.stdout.String(), s)
			}
			assert.True(t, f.closed, "client closed")
		})
	}
}

func TestStartJSON(t *testing.T) {
	f := &fakeEscrows{startErr: map[string]error{"e2": &starter.DuplicateEscrowError{EscrowID: "e2"}}}

	inv := invoke(t, f, nil, "--json", "start", "--wait", "e1", "e2")

	require.Error(t, inv.err)
	var got []struct {
		EscrowID string              `json:"escrowId"`
		RunID    string              `json:"runId"`
		Error    *demo.ErrorInfo     `json:"error"`
		Result   *escrow.SetupResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal(inv.stdout.Bytes(), &got), inv.stdout.String())
	require.Len(t, got, 2)
	assert.Equal(t, "run-e1", got[0].RunID)
	assert.Equal(t, "9aaaaaaaaaae1", got[0].Result.MultisigAddress)
	assert.Nil(t, got[0].Error)
	assert.Equal(t, &demo.ErrorInfo{Type: "DuplicateEscrow", Message: `escrow "e2" already exists (workflow escrow-e2)`}, got[1].Error)
}

func TestStatusAndResult(t *testing.T) {
	f := &fakeEscrows{status: map[string][]escrow.State{"e1": {escrow.StateMaking}}}
	tests := []struct {
		name       string
		give       []string
		wantErr    error
		wantStdout []string
	}{
		{name: "status", give: []string{"status", "e1"}, wantStdout: []string{"state MAKING", "buyer MAKING running", "workflow escrow-e1 run run-e1", "execution Running started 2025-01-02T03:04:05Z"}},
		{name: "status unknown", give: []string{"status", "nope"}, wantErr: starter.ErrEscrowNotFound},
		{name: "result", give: []string{"result", "e1"}, wantStdout: []string{
			"multisig address 9aaaaaaaaaae1",
			"buyer 9aaaaaaaaaae1 ✓ e1-buyer-final",
			"ROUND ROLE START DURATION ATTEMPTS LEASE WAIT RPC RECOVERED",
			"CREATING arbiter +0s 2.2s 0 0ms 0ms no",
			"VERIFYING vendor +8.2s 900ms 0 0ms 0ms no",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, f, nil, tt.give...)

			if tt.wantErr != nil {
				assert.ErrorIs(t, inv.err, tt.wantErr)
				return
			}
			require.NoError(t, inv.err)
			assertLines(t, inv.stdout.String(), tt.wantStdout...)
		})
	}
}

// assertLines asserts that out contains each of want, comparing with runs
// of spaces squashed to one (table column widths do not matter).
func assertLines(t *testing.T, out string, want ...string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	squashed := strings.Join(lines, "\n")
	for _, w := range want {
		assert.Contains(t, squashed, w)
	}
}

func TestResultUnconfirmed(t *testing.T) {
	f := &fakeEscrows{result: func(id string) (*escrow.SetupResult, error) {
		res := okResult(id, 0)
		res.Wallets[escrow.Vendor] = escrow.WalletResult{Wallet: "w", Address: "9other"}
		return res, nil
	}}

	inv := invoke(t, f, nil, "result", "e1")

	assert.ErrorContains(t, inv.err, "not confirmed")
	assertLines(t, inv.stdout.String(), "vendor 9other ✗ w")
}

var demoID = regexp.MustCompile(`^demo-\d{8}-\d{6}-[0-9a-f]{4}-[1-3]$`)

func TestDemo(t *testing.T) {
	tests := []struct {
		name        string
		giveResult  func(i int, id string) (*escrow.SetupResult, error)
		wantErr     string
		wantStdout  []string
		wantOverlap bool
	}{
		{
			name:        "three overlapping escrows",
			giveResult:  func(i int, id string) (*escrow.SetupResult, error) { return okResult(id, 1000*i), nil },
			wantStdout:  []string{"all roles confirm the address", "arbiter 9aaaaaaaaaademo-", "✓", "overlap: yes, all 3 escrows"},
			wantOverlap: true,
		},
		{
			name: "one role reports another address",
			giveResult: func(i int, id string) (*escrow.SetupResult, error) {
				res := okResult(id, 1000*i)
				if i == 1 {
					res.Wallets[escrow.Arbiter] = escrow.WalletResult{Address: "9zzz"}
				}
				return res, nil
			},
			wantErr:     "1 of 3 escrows failed or are not confirmed",
			wantStdout:  []string{"NOT confirmed by every role", "arbiter 9zzz ✗"},
			wantOverlap: true,
		},
		{
			name: "one fails, the others ran back to back",
			giveResult: func(i int, id string) (*escrow.SetupResult, error) {
				if i == 2 {
					return nil, &starter.EscrowFailedError{EscrowID: id, Type: escrow.TypeDiskFull, Message: "no space"}
				}
				return okResult(id, 9200*i), nil
			},
			wantErr:    "1 of 3 escrows failed or are not confirmed",
			wantStdout: []string{"FAILED escrow", "(DiskFull): no space", "(no round timings)", "overlap: no"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeEscrows{status: map[string][]escrow.State{}}
			f.result = func(id string) (*escrow.SetupResult, error) {
				return tt.giveResult(int(id[len(id)-1]-'1'), id) // demo-…-1 is escrow 0
			}
			// Wait answers at once; the demo polls every status once
			// before it reads the results.
			startFake := &startRecorder{fakeEscrows: f}

			inv := &invocation{}
			dial := func(context.Context, target, io.Writer) (escrows, error) { return startFake, nil }
			inv.err = run(context.Background(), []string{"demo", "--poll", "10ms"}, func(string) string { return "" }, &inv.stdout, &inv.stderr, dialers{escrows: dial})

			if tt.wantErr != "" {
				assert.EqualError(t, inv.err, tt.wantErr)
			} else {
				require.NoError(t, inv.err)
			}
			require.Len(t, f.started, 3)
			for _, id := range f.started {
				assert.Regexp(t, demoID, id)
				assert.Contains(t, inv.stderr.String(), id+"  started")
				assert.Contains(t, inv.stderr.String(), id+"  MAKING", "state changes are printed")
			}
			assertLines(t, inv.stdout.String(), tt.wantStdout...)
			assert.Contains(t, inv.stdout.String(), "timeline: 1 column = ")
			assert.Contains(t, inv.stdout.String(), "measured by escrowctl")
		})
	}
}

// startRecorder makes every started escrow report MAKING.
type startRecorder struct{ *fakeEscrows }

func (s *startRecorder) Start(ctx context.Context, id string) (starter.Run, error) {
	s.mu.Lock()
	s.status[id] = []escrow.State{escrow.StateMaking}
	s.mu.Unlock()
	return s.fakeEscrows.Start(ctx, id)
}

func TestDemoJSON(t *testing.T) {
	f := &fakeEscrows{status: map[string][]escrow.State{}}
	s := &startRecorder{fakeEscrows: f}
	var stdout, stderr bytes.Buffer
	dial := func(context.Context, target, io.Writer) (escrows, error) { return s, nil }

	err := run(context.Background(), []string{"demo", "--json", "--count", "2", "--prefix", "x"}, func(string) string { return "" }, &stdout, &stderr, dialers{escrows: dial})

	require.NoError(t, err)
	var rep demo.SetupReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	require.Len(t, rep.Escrows, 2)
	assert.True(t, rep.Overlap, "identical timings overlap")
	assert.Equal(t, []int64{9200, 9200}, rep.WallMs)
	assert.Equal(t, int64(9200), rep.BatchWallMs)
	for _, o := range rep.Escrows {
		assert.True(t, *o.Confirmed)
		assert.True(t, strings.HasPrefix(o.EscrowID, "x-"))
	}
}

func TestDemoIDs(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name      string
		givePre   string
		giveCount int
		want      []string
		wantErr   bool
	}{
		{name: "default", givePre: "demo", giveCount: 3, want: []string{
			"demo-20250304-040607-ab12-1", "demo-20250304-040607-ab12-2", "demo-20250304-040607-ab12-3"}},
		{name: "longest prefix", givePre: strings.Repeat("p", 41), giveCount: 9},
		{name: "too long with two digits", givePre: strings.Repeat("p", 41), giveCount: 10, wantErr: true},
		{name: "bad first char", givePre: "_x", giveCount: 1, wantErr: true},
		{name: "empty prefix", givePre: "", giveCount: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := demo.SetupIDs(tt.givePre, tt.giveCount, now, "ab12")

			var invalid *escrow.InvalidEscrowIDError
			if tt.wantErr {
				assert.True(t, errors.As(err, &invalid), "%v", err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, got, tt.giveCount)
			if tt.want != nil {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}
