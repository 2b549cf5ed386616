package trade

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
)

// RecordHistoriesEnv makes TestTrades run with plain (unencrypted)
// payloads and write the histories of its decided trades to
// workflows/testdata/trade/*.json, which the workflows package replays
// (`make trade-histories`).
const RecordHistoriesEnv = "ESCROWFLOW_RECORD_HISTORIES"

func recording() bool { return os.Getenv(RecordHistoriesEnv) == "1" }

// saveHistory writes the closed trade's history when recording.
func (e *env) saveHistory(t *testing.T, escrowID string) {
	t.Helper()
	if !recording() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hist := &historypb.History{}
	iter := e.tp.Client(t).GetWorkflowHistory(ctx, escrow.TradeWorkflowID(escrowID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	require.NotEmpty(t, hist.Events)
	require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, hist.Events[len(hist.Events)-1].GetEventType())
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NotContains(t, string(b), masterSecret)
	dir := filepath.Join(testenv.RepoRoot(t), "workflows", "testdata", "trade")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, escrowID+".json")
	require.NoError(t, os.WriteFile(path+".tmp", append(b, '\n'), 0o644))
	require.NoError(t, os.Rename(path+".tmp", path))
	t.Logf("recorded %s (%d events)", path, len(hist.Events))
}
