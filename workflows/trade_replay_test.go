package workflows

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/escrow"
)

// TestReplayTradeHistories replays the histories of real trades (regtest
// chain, real wallet-rpc, real Temporal; recorded by e2e/trade with
// ESCROWFLOW_RECORD_HISTORIES=1, see docs/REPLAY.md) against the current
// EscrowTrade.
func TestReplayTradeHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "trade", "*.json"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Skip("no recorded trade histories in testdata/trade (record them with e2e/trade, ESCROWFLOW_RECORD_HISTORIES=1)")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
			r.RegisterWorkflowWithOptions(EscrowSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(testLogger(t), file),
				"the current EscrowTrade no longer replays %s: put the change behind workflow.GetVersion (docs/REPLAY.md)", file)
		})
	}
}
