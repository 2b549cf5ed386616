package worker

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/instrument/historytest"
)

func TestInstrumentationConfig(t *testing.T) {
	tests := []struct {
		name     string
		giveEnv  map[string]string
		giveArgs []string
		wantOn   bool
		wantDir  string
		wantErr  string
	}{
		{name: "defaults", wantDir: "./instrumentation"},
		{name: "env 1", giveEnv: map[string]string{"ENABLE_INSTRUMENTATION": "1"}, wantOn: true, wantDir: "./instrumentation"},
		{name: "env true and a dir", giveEnv: map[string]string{"ENABLE_INSTRUMENTATION": "true", "ESCROWFLOW_INSTRUMENTATION_DIR": "/var/lib/x"},
			wantOn: true, wantDir: "/var/lib/x"},
		{name: "env 0", giveEnv: map[string]string{"ENABLE_INSTRUMENTATION": "0"}, wantDir: "./instrumentation"},
		{name: "env invalid", giveEnv: map[string]string{"ENABLE_INSTRUMENTATION": "yes please"}, wantErr: "ENABLE_INSTRUMENTATION"},
		{name: "flags override env", giveEnv: map[string]string{"ENABLE_INSTRUMENTATION": "1", "ESCROWFLOW_INSTRUMENTATION_DIR": "/a"},
			giveArgs: []string{"--instrumentation=false", "--instrumentation-dir", "/b"}, wantDir: "/b"},
		{name: "flag on", giveArgs: []string{"--instrumentation"}, wantOn: true, wantDir: "./instrumentation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(func(k string) string { return tt.giveEnv[k] })
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			fs := flag.NewFlagSet("w", flag.ContinueOnError)
			c.RegisterFlags(fs)
			require.NoError(t, fs.Parse(tt.giveArgs))

			assert.Equal(t, tt.wantOn, c.Instrumentation)
			assert.Equal(t, tt.wantDir, c.InstrumentationDir)
		})
	}
}

// fakeTemporal answers GetWorkflow and GetWorkflowHistory for one escrow.
type fakeTemporal struct {
	// closed is closed when the workflow run closes; nil: closed already.
	closed chan struct{}
	// histories are returned by successive history reads, the last one
	// for every read after.
	histories []*historytest.History

	mu    sync.Mutex
	gets  int
	reads int
}

func (f *fakeTemporal) GetWorkflow(_ context.Context, _, _ string) client.WorkflowRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	return &fakeRun{closed: f.closed}
}

func (f *fakeTemporal) GetWorkflowHistory(ctx context.Context, workflowID, runID string, long bool, filter enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	f.mu.Lock()
	h := f.histories[min(f.reads, len(f.histories)-1)]
	f.reads++
	f.mu.Unlock()
	c := historytest.Client{Histories: map[string]*historytest.History{workflowID: h}}
	return c.GetWorkflowHistory(ctx, workflowID, runID, long, filter)
}

func (f *fakeTemporal) counts() (gets, reads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.reads
}

type fakeRun struct {
	client.WorkflowRun // only Get is used
	closed             chan struct{}
}

func (r *fakeRun) Get(ctx context.Context, _ any) error {
	if r.closed == nil {
		return nil
	}
	select {
	case <-r.closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var escrowStart = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

func finishEvent(id string) activities.FinishEvent {
	return activities.FinishEvent{EscrowID: id, WorkflowID: "escrow-" + id, RunID: "run-" + id, Outcome: escrow.OutcomeCompleted}
}

// testExporter returns an enabled exporter over f writing into a temp dir,
// and its logs.
func testExporter(t *testing.T, f *fakeTemporal, timeout, grace time.Duration) (*exporter, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := DefaultConfig()
	cfg.Instrumentation = true
	cfg.InstrumentationDir = filepath.Join(t.TempDir(), "sub", "instrumentation")
	x := newExporter(cfg, f, nil, zap.New(core))
	require.NotNil(t, x)
	x.timeout, x.grace, x.retry = timeout, grace, 10*time.Millisecond
	t.Cleanup(x.close)
	return x, logs
}

func waitDone(t *testing.T, x *exporter) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		x.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("export still running after 10 s")
	}
}

func TestExporter(t *testing.T) {
	full := historytest.Escrow("e1", "run-e1", escrowStart, nil)
	failed := historytest.Escrow("e1", "run-e1", escrowStart, func(round, role string, s *historytest.Step) {
		if round == "PREPARING" && role == "buyer" {
			s.Fail = "WalletRejected"
		}
	})
	tests := []struct {
		name      string
		give      activities.FinishEvent
		histories []*historytest.History
		calls     int // onFinish calls
		wantState string
		wantSteps int
		wantReads int
		wantLog   string
	}{
		{name: "completed escrow", give: finishEvent("e1"), histories: []*historytest.History{full}, calls: 1,
			wantState: "COMPLETED", wantSteps: 18, wantReads: 1, wantLog: "instrumentation exported"},
		{name: "failed escrow", give: finishEvent("e1"), histories: []*historytest.History{failed}, calls: 1,
			wantState: "FAILED", wantSteps: 6, wantReads: 1, wantLog: "instrumentation exported"},
		{name: "the run was not closed yet at the first read", give: finishEvent("e1"),
			histories: []*historytest.History{full.Truncate(20), full.Truncate(40), full}, calls: 1,
			wantState: "COMPLETED", wantSteps: 18, wantReads: 3, wantLog: "instrumentation exported"},
		{name: "a retried FinishEscrow exports once", give: finishEvent("e1"), histories: []*historytest.History{full}, calls: 3,
			wantState: "COMPLETED", wantSteps: 18, wantReads: 1, wantLog: "instrumentation exported"},
		{name: "invalid escrow id", give: activities.FinishEvent{EscrowID: "../x", WorkflowID: "w", RunID: "r"},
			histories: []*historytest.History{full}, calls: 1, wantLog: "instrumentation export failed"},
		{name: "an empty history", give: finishEvent("e1"), histories: []*historytest.History{historytest.New("e1", "run-e1", escrowStart).Truncate(0)},
			calls: 1, wantReads: 1, wantLog: "instrumentation export failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTemporal{closed: make(chan struct{}), histories: tt.histories}
			x, logs := testExporter(t, f, 10*time.Second, time.Second)

			for range tt.calls {
				x.onFinish(tt.give)
			}
			path := filepath.Join(x.dir, "escrow_e1.json")
			time.Sleep(20 * time.Millisecond)
			_, err := os.Stat(path)
			assert.ErrorIs(t, err, os.ErrNotExist, "nothing written before the run closed")
			close(f.closed)
			waitDone(t, x)

			_, reads := f.counts()
			assert.Equal(t, tt.wantReads, reads, "history reads")
			assert.Equal(t, 1, logs.FilterMessage(tt.wantLog).Len(), "log %q in %v", tt.wantLog, logs.All())
			if tt.wantState == "" {
				entries, _ := os.ReadDir(x.dir)
				assert.Empty(t, entries, "no file")
				return
			}
			e, err := instrument.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.wantState, e.State)
			assert.Len(t, e.Steps, tt.wantSteps)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.NotContains(t, string(b), `"Multisig`)
			entries, err := os.ReadDir(x.dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temp files left")
			for _, l := range logs.All() {
				for _, fld := range l.Context {
					assert.NotContains(t, strings.ToLower(fld.Key), "secret")
				}
			}
		})
	}
}

func TestExporterGivesUp(t *testing.T) {
	f := &fakeTemporal{closed: make(chan struct{}), histories: []*historytest.History{historytest.Escrow("e1", "run-e1", escrowStart, nil)}}
	x, logs := testExporter(t, f, 50*time.Millisecond, time.Second)

	x.onFinish(finishEvent("e1"))
	waitDone(t, x)

	l := logs.FilterMessage("instrumentation export failed").All()
	require.Len(t, l, 1)
	assert.Contains(t, l[0].ContextMap()["error"], "gave up waiting for the workflow run to close")
	_, reads := f.counts()
	assert.Equal(t, 0, reads)
}

func TestExporterClose(t *testing.T) {
	f := &fakeTemporal{closed: make(chan struct{}), histories: []*historytest.History{historytest.Escrow("e1", "run-e1", escrowStart, nil)}}
	x, logs := testExporter(t, f, time.Minute, 100*time.Millisecond)
	x.onFinish(finishEvent("e1"))
	x.onFinish(finishEvent("e2"))

	start := time.Now()
	x.close()

	assert.Less(t, time.Since(start), time.Second, "close returns soon after the grace period")
	waitDone(t, x) // every export goroutine has returned
	assert.Equal(t, 1, logs.FilterMessage("cancelling instrumentation exports still running at shutdown").Len())
	assert.Equal(t, 2, logs.FilterMessage("instrumentation export failed").Len())

	x.onFinish(finishEvent("e3"))
	gets, _ := f.counts()
	assert.Equal(t, 2, gets, "no export after close")
}

func TestExporterDisabled(t *testing.T) {
	x := newExporter(DefaultConfig(), &fakeTemporal{}, nil, zap.NewNop())

	assert.Nil(t, x)
	assert.Nil(t, x.hook())
	x.close() // no panic
}
