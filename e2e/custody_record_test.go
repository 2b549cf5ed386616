package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
)

// TestRecordCustodyHistory is a generator like TestRecordHistories (same
// switch, `make histories`): it records external_custody.json, an escrow
// whose buyer and vendor are participant.Run instances, for the replay
// tests. The worker runs without a codec so that replay can read it.
func TestRecordCustodyHistory(t *testing.T) {
	if os.Getenv(RecordHistoriesEnv) != "1" {
		t.Skipf("history generator, not a test: `make histories` (%s=1)", RecordHistoriesEnv)
	}
	outDir := filepath.Join(testenv.RepoRoot(t), "workflows", "testdata")
	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	inProcessWorker(t, tp.HostPort, walletDir, 3)
	tc := tp.Client(t)
	e := &custodyEnv{tp: tp, walletDir: walletDir, c: tc, raw: tc, sc: starter.New(tc)}
	ctx := context.Background()

	dirs := map[escrow.Role]string{escrow.Buyer: t.TempDir(), escrow.Vendor: t.TempDir()}
	run, err := e.sc.StartSetup(ctx, external(t, "hist-external", dirs))
	require.NoError(t, err)
	buyer := e.runParticipant(ctx, t, "hist-external", escrow.Buyer, dirs[escrow.Buyer])
	vendor := e.runParticipant(ctx, t, "hist-external", escrow.Vendor, dirs[escrow.Vendor])
	_, err = e.sc.Wait(ctx, "hist-external")
	require.NoError(t, err)
	require.NoError(t, wait(t, buyer, "buyer").err)
	require.NoError(t, wait(t, vendor, "vendor").err)
	rec := &recorder{t: t, tp: tp, tc: tc, dir: outDir}
	rec.save("external_custody", "hist-external", run.WorkflowID, run.RunID)
}
