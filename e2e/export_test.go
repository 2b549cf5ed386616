package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

// TestInstrumentationExport runs one escrow on a real Temporal dev server
// with an in-process worker that has the instrumentation export enabled,
// and checks the file the worker writes when the escrow ends against the
// escrow's result and against `escrowctl export` run on the same server.
func TestInstrumentationExport(t *testing.T) {
	tp := testenv.StartTemporal(t)
	walletDir, exportDir := t.TempDir(), filepath.Join(t.TempDir(), "instrumentation")
	logs := inProcessWorker(t, tp.HostPort, walletDir, 3, func(c *worker.Config) {
		c.Instrumentation, c.InstrumentationDir = true, exportDir
	})
	tc := tp.Client(t)
	sc := starter.New(tc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	const id = "instr-1"
	run, err := sc.Start(ctx, id)
	require.NoError(t, err)
	res, err := sc.Wait(ctx, id)
	require.NoError(t, err)

	// The worker exports once the run has closed.
	path := filepath.Join(exportDir, "escrow_"+id+".json")
	testenv.WaitFor(t, 60*time.Second, "the worker's export "+path, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	auto, err := os.ReadFile(path)
	require.NoError(t, err)
	e, err := instrument.Read(bytes.NewReader(auto))
	require.NoError(t, err)

	assert.Equal(t, instrument.Schema, e.Schema)
	assert.Equal(t, id, e.EscrowID)
	assert.Equal(t, escrow.WorkflowID(id), e.WorkflowID)
	assert.Equal(t, run.RunID, e.RunID)
	assert.Equal(t, instrument.StateCompleted, e.State)
	assert.Empty(t, e.ReasonType)
	require.Len(t, e.Steps, 18, "6 rounds × 3 roles")
	require.Len(t, e.Rounds, 6)
	for i, r := range e.Rounds {
		assert.Equal(t, instrument.Rounds[i], r.Round)
		assert.True(t, r.Complete, r.Round)
		assert.Positive(t, r.SpanMs, r.Round)
		assert.Contains(t, instrument.Roles, r.CriticalRole)
	}
	assert.Equal(t, []string{"ClaimEscrow", "FinishEscrow"}, []string{e.Lifecycle[0].Activity, e.Lifecycle[1].Activity})
	assert.Positive(t, e.TotalMs)
	assert.LessOrEqual(t, e.Summary.CriticalPathMs, e.TotalMs)

	// The worker's figures match the workflow's result.
	byKey := map[string]instrument.Step{}
	for _, s := range e.Steps {
		assert.Equal(t, instrument.StatusCompleted, s.Status, s.Key())
		assert.True(t, s.Reported, s.Key())
		assert.NotNil(t, s.Slot, s.Key())
		assert.GreaterOrEqual(t, s.Attempts, int32(1), s.Key())
		assert.False(t, s.Started.Before(s.Scheduled), s.Key())
		assert.False(t, s.Closed.Before(s.Started), s.Key())
		byKey[s.Key()] = s
	}
	require.Len(t, res.Rounds, 18)
	for _, r := range res.Rounds {
		s, ok := byKey[string(r.Round)+"/"+string(r.Role)]
		require.True(t, ok, "%s/%s exported", r.Round, r.Role)
		assert.Equal(t, r.LeaseWaitMs, s.LeaseWaitMs, s.Key())
		assert.Equal(t, r.RPCMs, s.RPCMs, s.Key())
		assert.Equal(t, r.Attempts, s.Attempts, s.Key())
		assert.Equal(t, r.Recovered, s.Recovered, s.Key())
	}

	// No multisig message, address or wallet name in the file.
	assertNoMultisigStrings(t, auto)
	assert.NotContains(t, string(auto), res.MultisigAddress)
	for _, role := range escrow.Roles {
		assert.NotContains(t, string(auto), res.Wallets[role].Wallet)
	}
	assert.Equal(t, 1, logs.FilterMessage("instrumentation exported").Len())

	// `escrowctl export` against the same server writes the same bytes.
	ctl := testenv.BuildBinary(t, "./cmd/escrowctl")
	out := filepath.Join(t.TempDir(), "export.json")
	cmd := exec.CommandContext(ctx, ctl, "--address", tp.HostPort, "--namespace", tp.Namespace, "export", "-o", out, id)
	stdout, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", stdout)
	assert.Contains(t, string(stdout), id+"  COMPLETED  18 steps")
	manual, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, string(auto), string(manual))
}

// assertNoMultisigStrings checks that no JSON string (key or value) of doc
// starts with "Multisig", as every Monero multisig message does.
func assertNoMultisigStrings(t *testing.T, doc []byte) {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(doc, &v))
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
	assert.NotContains(t, string(doc), `"Multisig`)
}
