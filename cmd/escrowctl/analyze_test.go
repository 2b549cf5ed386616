package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/instrument/historytest"
)

// writeExports writes synthetic exports into a temp dir and returns their
// paths: "ok" completed, "slow" with a retried step waiting 250 ms for
// its lease (started a second later), "bad" failed at MAKING/vendor.
func writeExports(t *testing.T) (ok, slow, bad string) {
	t.Helper()
	dir := t.TempDir()
	write := func(id string, start time.Time, tweak func(round, role string, s *historytest.Step)) string {
		e, err := instrument.Build(historytest.Escrow(id, "run-"+id, start, tweak).Events(), nil)
		require.NoError(t, err)
		b, err := instrument.Marshal(e)
		require.NoError(t, err)
		p := filepath.Join(dir, instrument.FileName(id))
		require.NoError(t, os.WriteFile(p, b, 0o644))
		return p
	}
	ok = write("ok", exportStart, nil)
	slow = write("slow", exportStart.Add(time.Second), func(round, role string, s *historytest.Step) {
		if round == "MAKING" && role == "vendor" {
			s.QueueMs, s.Attempts, s.LastFailure, s.LeaseWaitMs = 2005, 2, "WalletUnavailable", 250
		}
	})
	bad = write("bad", exportStart.Add(2*time.Second), func(round, role string, s *historytest.Step) {
		if round == "MAKING" && role == "vendor" {
			s.Fail = "InvalidMultisigMessage"
		}
	})
	return ok, slow, bad
}

func TestAnalyze(t *testing.T) {
	ok, slow, bad := writeExports(t)
	svgPath := filepath.Join(t.TempDir(), "out.svg")
	tests := []struct {
		name          string
		give          []string
		wantCode      int
		wantStdout    []string
		wantNotStdout []string
		wantSVG       bool
	}{
		{name: "one export", give: []string{"analyze", ok}, wantStdout: []string{
			"escrow ok  COMPLETED  total 7.37s",
			"ROUND         ROLE     START    QUEUE  RUN   TOTAL   ATT  LEASE  RPC    SLOT  STATUS     ERROR",
			"critical path  ROUND         SPAN    CRITICAL ROLE",
			"retries        none",
			"flags          none (no lease wait over 100ms)",
		}, wantNotStdout: []string{"FLAG lease wait", "shared timeline", "overlap:"}},
		{name: "a long lease wait is flagged", give: []string{"analyze", slow}, wantStdout: []string{
			"FLAG lease wait  slow MAKING/vendor: LEASE ACQUIRED in 250ms with 250 > 100 (slot 7, attempt 2)",
			"retries        1 of 18 steps retried, 1 extra attempts: MAKING/vendor 2 attempts (last failure WalletUnavailable)",
		}},
		{name: "threshold flag", give: []string{"analyze", "--lease-threshold", "300ms", slow}, wantStdout: []string{
			"flags          none (no lease wait over 300ms)",
		}},
		{name: "several exports overlap", give: []string{"analyze", ok, slow, bad, "--width", "40"}, wantStdout: []string{
			"escrow ok", "escrow slow", "escrow bad  FAILED (InvalidMultisigMessage)",
			"shared timeline: 3 escrows",
			"overlap: yes, all 3 escrows were running from +2s to",
		}},
		{name: "diff", give: []string{"analyze", "--diff", ok, bad}, wantStdout: []string{
			"A  ok  COMPLETED  total 7.37s  run run-ok",
			"B  bad  FAILED (InvalidMultisigMessage)",
			"first divergence: MAKING/vendor: status completed vs failed; error - vs InvalidMultisigMessage",
			"outcome: A COMPLETED, B FAILED (InvalidMultisigMessage)",
		}},
		{name: "diff json", give: []string{"--json", "analyze", "--diff", ok, slow}, wantStdout: []string{
			`"escrowA": "ok"`, `"escrowB": "slow"`, `"first": 7`,
		}},
		{name: "json", give: []string{"analyze", "--json", ok, slow}, wantStdout: []string{
			`"overlap": true`, `"maxLeaseWaitMs": 250`, `"thresholdMs": 100`,
		}},
		{name: "svg", give: []string{"analyze", "--svg", svgPath, ok, bad}, wantSVG: true, wantStdout: []string{
			"wrote " + svgPath + ": 2 escrows, 27 steps",
		}},
		{name: "no files", give: []string{"analyze"}, wantCode: 2},
		{name: "diff of three", give: []string{"analyze", "--diff", ok, slow, bad}, wantCode: 2},
		{name: "narrow", give: []string{"analyze", "--width", "5", ok}, wantCode: 2},
		{name: "missing file", give: []string{"analyze", filepath.Join(t.TempDir(), "nope.json")}, wantCode: 1},
		{name: "not an export", give: []string{"analyze", svgPath}, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, &fakeEscrows{}, nil, tt.give...)

			if tt.wantCode != 0 {
				require.Error(t, inv.err)
				assert.Equal(t, tt.wantCode, exitCode(inv.err))
				return
			}
			require.NoError(t, inv.err, inv.stderr.String())
			assert.Empty(t, inv.dialed, "analyze never connects to Temporal")
			out := inv.stdout.String()
			for _, s := range tt.wantStdout {
				assert.Contains(t, out, s)
			}
			for _, s := range tt.wantNotStdout {
				assert.NotContains(t, out, s)
			}
			if tt.wantSVG {
				b, err := os.ReadFile(svgPath)
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(string(b), "<?xml"))
				assert.Equal(t, 27, strings.Count(string(b), `class="step"`))
			}
		})
	}
}
