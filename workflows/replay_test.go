package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// The replay tests replay histories recorded from real runs of EscrowSetup
// (testdata/*.json, written by `make histories`, see docs/REPLAY.md)
// against the current workflow code. A change that would break the
// escrows running when a new worker is deployed fails them.

// recordedHistories are the histories `make histories` writes; each must
// be present.
var recordedHistories = []string{"happy", "retried_round", "failed_duplicate", "cancelled"}

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "recorded histories in testdata/ (regenerate with `make histories`)")
	for _, name := range recordedHistories {
		require.FileExists(t, filepath.Join("testdata", name+".json"), "regenerate with `make histories`")
	}
	return files
}

// replay replays the history file with wf registered as EscrowSetup.
func replay(t *testing.T, wf any, file string) error {
	t.Helper()
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: escrow.WorkflowName})
	return r.ReplayWorkflowHistoryFromJSONFile(testLogger(t), file)
}

func TestReplayHistories(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			require.NoError(t, replay(t, EscrowSetup, file),
				"the current EscrowSetup no longer replays %s: put the change behind workflow.GetVersion (docs/REPLAY.md)", file)
		})
	}
}

// nondeterminismCode prefixes the SDK's nondeterminism errors; see
// https://github.com/temporalio/rules/blob/main/rules/TMPRL1100.md.
const nondeterminismCode = "[TMPRL1100]"

// TestReplayDetectsNonDeterminism proves that the replay tests catch a
// change that is not replay-safe: deliberately changed copies of the
// workflow, registered under the same name, must fail to replay the happy
// history with the SDK's nondeterminism error.
func TestReplayDetectsNonDeterminism(t *testing.T) {
	happy := filepath.Join("testdata", "happy.json")
	require.FileExists(t, happy)
	for name, wf := range map[string]func(workflow.Context, escrow.SetupInput) (*escrow.SetupResult, error){
		"activity scheduled first": escrowSetupWithExtraActivity,
		"PREPARING removed":        escrowSetupWithoutPreparing,
	} {
		t.Run(name, func(t *testing.T) {
			err := replay(t, wf, happy)
			require.Error(t, err, "a non-deterministic change replayed without error")
			// TMPRL1100 is the SDK's code for nondeterminism: both its
			// "nondeterministic workflow: history event is …, replay command
			// is …" errors and the state machine panics replay hits first
			// when commands and events are out of step (what these changes
			// produce: "lookup failed for scheduledEventID to activityID").
			require.Contains(t, err.Error(), nondeterminismCode, "want the SDK's nondeterminism error, got: %v", err)
		})
	}
}

// TestReplayVersionedChangeIsCompatible shows the rule of docs/REPLAY.md:
// the same extra activity as above, behind workflow.GetVersion, replays
// every recorded history.
func TestReplayVersionedChangeIsCompatible(t *testing.T) {
	for _, file := range historyFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			require.NoError(t, replay(t, escrowSetupVersioned, file))
		})
	}
}

// extraStepOptions are the options of the extra activity of the changed
// workflows; replay never runs it.
var extraStepOptions = workflow.ActivityOptions{StartToCloseTimeout: StepOptions.StartToCloseTimeout}

// escrowSetupWithExtraActivity is EscrowSetup with one more activity before
// everything else: a new command where the history has the CREATING upsert.
func escrowSetupWithExtraActivity(ctx workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
	actx := workflow.WithActivityOptions(ctx, extraStepOptions)
	in0 := activities.StepInput{EscrowID: in.EscrowID, Role: string(escrow.Buyer), Round: string(escrow.RoundPrepare)}
	if err := workflow.ExecuteActivity(actx, a.PrepareMultisig, in0).Get(ctx, nil); err != nil {
		return nil, err
	}
	return EscrowSetup(ctx, in)
}

// escrowSetupVersioned is the same change done right: new runs take the
// extra step, runs recorded before it (no version marker) do not.
func escrowSetupVersioned(ctx workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
	if v := workflow.GetVersion(ctx, "replay-test-extra-step", workflow.DefaultVersion, 1); v == 1 {
		actx := workflow.WithActivityOptions(ctx, extraStepOptions)
		in0 := activities.StepInput{EscrowID: in.EscrowID, Role: string(escrow.Buyer), Round: string(escrow.RoundPrepare)}
		if err := workflow.ExecuteActivity(actx, a.PrepareMultisig, in0).Get(ctx, nil); err != nil {
			return nil, err
		}
	}
	return EscrowSetup(ctx, in)
}

// escrowSetupWithoutPreparing is the start of EscrowSetup with the
// PREPARING round dropped: MakeMultisig is scheduled where the history has
// PrepareMultisig.
func escrowSetupWithoutPreparing(ctx workflow.Context, in escrow.SetupInput) (*escrow.SetupResult, error) {
	s := &setup{ctx: ctx}
	s.status = escrow.Status{EscrowID: in.EscrowID, State: escrow.StateCreating, Roles: map[escrow.Role]escrow.RoleStatus{}}
	s.result = escrow.SetupResult{EscrowID: in.EscrowID, Wallets: map[escrow.Role]escrow.WalletResult{}}
	if err := s.setState(escrow.StateCreating); err != nil {
		return nil, err
	}
	fctx := workflow.WithActivityOptions(ctx, FinishOptions)
	if err := workflow.ExecuteActivity(fctx, a.ClaimEscrow, activities.ClaimInput{EscrowID: in.EscrowID}).Get(ctx, nil); err != nil {
		return nil, err
	}
	if _, err := s.round(escrow.RoundCreate, a.CreateWallet, nil); err != nil {
		return nil, err
	}
	if err := s.setState(escrow.StateMaking); err != nil {
		return nil, err
	}
	if _, err := s.round(escrow.RoundMake, a.MakeMultisig, s.peers); err != nil {
		return nil, err
	}
	return &s.result, nil
}

// testLogger passes the replayer's warnings and errors to t.Log.
func testLogger(t *testing.T) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(&testHandler{t: t}))
}

type testHandler struct {
	t     *testing.T
	attrs []slog.Attr
}

func (h *testHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *testHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replayer %s %s", r.Level, r.Message)
	for _, attr := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", attr.Key, attr.Value)
	}
	r.Attrs(func(attr slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", attr.Key, attr.Value)
		return true
	})
	h.t.Log(b.String())
	return nil
}

func (h *testHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &testHandler{t: h.t, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *testHandler) WithGroup(string) slog.Handler { return h }
