package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/workflows"
)

// RecordHistoriesEnv enables TestRecordHistories (`make histories` sets it).
const RecordHistoriesEnv = "ESCROWFLOW_RECORD_HISTORIES"

// recordedIdentity replaces the identity fields (pid@hostname of the worker
// and the client) in recorded histories; replay does not read them.
const recordedIdentity = "escrowflow-recorder"

// TestRecordHistories is a generator, not a test: it runs the current
// EscrowSetup workflow on a real Temporal dev server with an in-process
// worker over real wallet-rpc processes, and writes the histories of four
// runs to workflows/testdata/*.json, which TestReplayHistories
// (workflows/replay_test.go) replays on every `make test`:
//
//	happy.json             escrow hist-happy completes
//	retried_round.json     a wallet-rpc process is SIGKILLed as a MAKING
//	                       step starts; that role's step fails (retryable)
//	                       and completes on attempt 2
//	failed_duplicate.json  a second run of hist-happy (reuse policy
//	                       ALLOW_DUPLICATE, as the raw CLI starts it) fails
//	                       DuplicateEscrow
//	cancelled.json         escrow hist-cancel is cancelled during MAKING
//
// Run it with `make histories`; see docs/REPLAY.md.
func TestRecordHistories(t *testing.T) {
	if os.Getenv(RecordHistoriesEnv) != "1" {
		t.Skipf("history generator, not a test: `make histories` (%s=1) re-records workflows/testdata/*.json from a live run", RecordHistoriesEnv)
	}
	outDir := filepath.Join(testenv.RepoRoot(t), "workflows", "testdata")
	require.NoError(t, os.MkdirAll(outDir, 0o755))

	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	hooks := newRecordHooks(t)
	recordWorker(t, tp.HostPort, walletDir, 3, hooks.onWrite)
	tc := tp.Client(t)
	sc := starter.New(tc)
	ctx := context.Background()
	rec := &recorder{t: t, tp: tp, tc: tc, dir: outDir}

	// (a) The happy path.
	happy, err := sc.Start(ctx, "hist-happy")
	require.NoError(t, err)
	res, err := sc.Wait(ctx, "hist-happy")
	require.NoError(t, err)
	verifyWallets(t, walletDir, res)
	rec.save("happy", "hist-happy", happy.WorkflowID, happy.RunID)

	// (b) A retried round: the vendor's wallet-rpc process is killed right
	// after its MAKING step leased it (the hook runs synchronously in the
	// activity's "lease acquired" log call, before make_multisig), so that
	// attempt fails with a retryable WalletUnavailable error and attempt 2
	// resumes from the PREPARING snapshot.
	retried := false
	for try := 1; try <= 3 && !retried; try++ {
		id := "hist-retry"
		if try > 1 {
			id = fmt.Sprintf("hist-retry-%d", try)
		}
		hooks.armKill(id, escrow.Vendor, escrow.RoundMake)
		run, err := sc.Start(ctx, id)
		require.NoError(t, err)
		res, err := sc.Wait(ctx, id)
		require.NoError(t, err)
		killed := hooks.disarmKill()
		verifyWallets(t, walletDir, res)
		attempts := int32(0)
		for _, r := range res.Rounds {
			if r.Round == escrow.RoundMake && r.Role == escrow.Vendor {
				attempts = r.Attempts
			}
		}
		if killed == 0 || attempts < 2 {
			t.Logf("try %d: the kill missed (killed pid %d, vendor MAKING attempts %d); trying again", try, killed, attempts)
			continue
		}
		t.Logf("try %d: killed wallet-rpc pid %d; vendor MAKING completed on attempt %d", try, killed, attempts)
		rec.save("retried_round", id, run.WorkflowID, run.RunID)
		retried = true
	}
	require.True(t, retried, "no run had a MAKING step retried after the wallet-rpc kill")

	// (c) A failed escrow: a second run of a used id, started the way the
	// raw `temporal workflow start` does (a closed id may run again).
	dup, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    escrow.WorkflowID("hist-happy"),
		TaskQueue:             escrow.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, escrow.WorkflowName, escrow.SetupInput{EscrowID: "hist-happy"})
	require.NoError(t, err)
	require.NotEqual(t, happy.RunID, dup.GetRunID())
	err = dup.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, escrow.TypeDuplicateEscrow, appErr.Type())
	rec.save("failed_duplicate", "hist-happy", dup.GetID(), dup.GetRunID())

	// (d) A cancelled escrow: the hook holds the first MAKING step at its
	// "lease acquired" log until the cancellation has been requested.
	reached, resume := hooks.armPause("hist-cancel", escrow.RoundMake)
	cancelled, err := sc.Start(ctx, "hist-cancel")
	require.NoError(t, err)
	select {
	case <-reached:
	case <-time.After(3 * time.Minute):
		t.Fatal("hist-cancel did not reach MAKING within 3 minutes")
	}
	err = tc.CancelWorkflow(ctx, cancelled.WorkflowID, cancelled.RunID)
	close(resume)
	require.NoError(t, err)
	_, err = sc.Wait(ctx, "hist-cancel")
	var failed *starter.EscrowFailedError
	require.ErrorAs(t, err, &failed)
	require.Equal(t, escrow.TypeCancelled, failed.Type)
	rec.save("cancelled", "hist-cancel", cancelled.WorkflowID, cancelled.RunID)
}

// recorder fetches, checks and writes histories.
type recorder struct {
	t   *testing.T
	tp  *testenv.Temporal
	tc  client.Client
	dir string
}

// save writes the closed run's full history to <dir>/<name>.json in the
// JSON form of `temporal workflow show --output json` (temporalproto JSON
// of a history.History, no payload shorthand), which
// client.HistoryFromJSON and WorkflowReplayer.ReplayWorkflowHistoryFromJSONFile
// read. It checks that the CLI's output for the run parses to the same
// history, that no wallet password or master secret is in it, that the
// file reads back to what was written, and that the current workflow code
// replays it.
func (r *recorder) save(name, escrowID, workflowID, runID string) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	hist := &historypb.History{}
	iter := r.tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, e)
	}
	require.NotEmpty(t, hist.Events)
	last := hist.Events[len(hist.Events)-1].GetEventType()
	require.Contains(t, []enumspb.EventType{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
	}, last, "%s: the run is closed", name)

	// The Temporal CLI writes the same format for the same run.
	out, err := exec.CommandContext(ctx, testenv.TemporalCLI(t), "workflow", "show", "--address", r.tp.HostPort,
		"--namespace", r.tp.Namespace, "--workflow-id", workflowID, "--run-id", runID, "--output", "json").Output()
	require.NoError(t, err, "temporal workflow show")
	fromCLI, err := client.HistoryFromJSON(bytes.NewReader(out), client.HistoryJSONOptions{})
	require.NoError(t, err)
	require.True(t, proto.Equal(hist, fromCLI), "%s: `temporal workflow show --output json` parses to the fetched history", name)

	raw, err := proto.Marshal(hist) // payload bytes appear as they are
	require.NoError(t, err)
	require.NotContains(t, string(raw), masterSecret)
	for _, role := range escrow.Roles {
		require.NotContains(t, string(raw), password(t, escrowID, role), "%s: a wallet password is in the history", name)
	}

	scrubIdentities(hist.ProtoReflect())
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	b = append(b, '\n')
	path := filepath.Join(r.dir, name+".json")
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, b, 0o644))
	require.NoError(t, os.Rename(tmp, path))

	f, err := os.Open(path)
	require.NoError(t, err)
	back, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, f.Close())
	require.NoError(t, err)
	require.True(t, proto.Equal(hist, back), "%s: the file reads back to the recorded history", name)

	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.EscrowSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, path), "%s: replay", name)
	t.Logf("wrote %s: %d events, %d bytes, ends %s", path, len(hist.Events), len(b), last)
}

// scrubIdentities sets every string field named "identity" in m (and the
// messages it holds) to recordedIdentity.
func scrubIdentities(m protoreflect.Message) {
	var set []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "identity" && fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated:
			set = append(set, fd)
		case fd.Message() == nil:
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					scrubIdentities(mv.Message())
					return true
				})
			}
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				scrubIdentities(v.List().Get(i).Message())
			}
		default:
			scrubIdentities(v.Message())
		}
		return true
	})
	for _, fd := range set {
		m.Set(fd, protoreflect.ValueOfString(recordedIdentity))
	}
}

// recordWorker is inProcessWorker with onWrite called synchronously for
// every log entry (with all its fields, also those added by With), so that
// the recorder can act at an exact point of an activity.
func recordWorker(t *testing.T, hostPort, walletDir string, poolSize int, onWrite func(zapcore.Entry, map[string]any)) {
	t.Helper()
	obs, _ := observer.New(zapcore.DebugLevel)
	runWorker(t, hostPort, walletDir, poolSize, &hookCore{Core: obs, onWrite: onWrite})
}

// hookCore passes entries to Core and, before that, to onWrite with their
// fields encoded in a map.
type hookCore struct {
	zapcore.Core
	fields  []zapcore.Field
	onWrite func(zapcore.Entry, map[string]any)
}

func (c *hookCore) With(fields []zapcore.Field) zapcore.Core {
	all := make([]zapcore.Field, 0, len(c.fields)+len(fields))
	all = append(append(all, c.fields...), fields...)
	return &hookCore{Core: c.Core.With(fields), fields: all, onWrite: c.onWrite}
}

func (c *hookCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *hookCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	c.onWrite(e, enc.Fields)
	return c.Core.Write(e, fields)
}

// recordHooks acts on the worker's log entries: it tracks the pid of each
// pool slot's wallet-rpc ("wallet-rpc ready"), and on "lease acquired" of
// an armed escrow's step it kills that slot's process or pauses the step.
type recordHooks struct {
	t    *testing.T
	mu   sync.Mutex
	pids map[int64]int64 // slot → pid of its current wallet-rpc

	killEscrow, killRole, killRound string
	killed                          int64

	pauseEscrow, pauseRound string
	reached, resume         chan struct{}
}

func newRecordHooks(t *testing.T) *recordHooks {
	return &recordHooks{t: t, pids: map[int64]int64{}}
}

// armKill makes the first attempt of role's step of round in escrowID kill
// its leased wallet-rpc process (SIGKILL, by pid) before any call.
func (h *recordHooks) armKill(escrowID string, role escrow.Role, round escrow.Round) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.killEscrow, h.killRole, h.killRound, h.killed = escrowID, string(role), string(round), 0
}

// disarmKill returns the pid killed since armKill (0 if none).
func (h *recordHooks) disarmKill() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.killEscrow = ""
	return h.killed
}

// armPause makes the first step of round in escrowID that leases a
// process close reached and wait (at most a minute) until resume is
// closed.
func (h *recordHooks) armPause(escrowID string, round escrow.Round) (reached chan struct{}, resume chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pauseEscrow, h.pauseRound = escrowID, string(round)
	h.reached, h.resume = make(chan struct{}), make(chan struct{})
	return h.reached, h.resume
}

func (h *recordHooks) onWrite(e zapcore.Entry, f map[string]any) {
	switch e.Message {
	case "wallet-rpc ready":
		h.mu.Lock()
		h.pids[asInt(f["slot"])] = asInt(f["pid"])
		h.mu.Unlock()
	case "lease acquired":
		escrowID, role, round := fmt.Sprint(f["escrow_id"]), fmt.Sprint(f["role"]), fmt.Sprint(f["round"])
		h.mu.Lock()
		var pid int64
		if escrowID == h.killEscrow && role == h.killRole && round == h.killRound && asInt(f["attempt"]) == 1 && h.killed == 0 {
			pid = h.pids[asInt(f["slot"])]
			h.killed = pid
		}
		var reached, resume chan struct{}
		if escrowID == h.pauseEscrow && round == h.pauseRound {
			reached, resume = h.reached, h.resume
			h.pauseEscrow = ""
		}
		h.mu.Unlock()
		if pid > 0 {
			h.kill(int(pid))
		}
		if reached != nil {
			close(reached)
			select {
			case <-resume:
			case <-time.After(time.Minute):
			}
		}
	}
}

// kill sends SIGKILL to a wallet-rpc process of the worker's pool and waits
// until it is gone, so that the step's next call finds it dead.
func (h *recordHooks) kill(pid int) {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		h.t.Logf("kill wallet-rpc %d: %v", pid, err)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for !testenv.ProcessGone(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case int:
		return int64(n)
	}
	return -1
}
