package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/instrument/historytest"
	"github.com/escrowflow/escrowflow/starter"
)

// fakeHistories serves synthetic histories to export.
type fakeHistories struct {
	historytest.Client
	closed bool
}

func (f *fakeHistories) Close() { f.closed = true }

// withHistories makes export read h (workflow id → history) and records the
// address and namespace it dialed.
func withHistories(t *testing.T, fe *fakeEscrows, h map[string]*historytest.History, dialErr error) (*fakeHistories, *[]string) {
	t.Helper()
	f := &fakeHistories{Client: historytest.Client{Histories: h}}
	var dialed []string
	fe.history = func(_ context.Context, address, namespace, _ string, _ io.Writer) (historyConn, error) {
		dialed = append(dialed, address+" "+namespace)
		if dialErr != nil {
			return nil, dialErr
		}
		return f, nil
	}
	return f, &dialed
}

var exportStart = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

func TestExport(t *testing.T) {
	histories := map[string]*historytest.History{
		"escrow-ok": historytest.Escrow("ok", "run-ok", exportStart, nil),
		"escrow-bad": historytest.Escrow("bad", "run-bad", exportStart, func(round, role string, s *historytest.Step) {
			if round == "EXCHANGING_1" && role == "arbiter" {
				s.Fail = "WalletRejected"
			}
		}),
	}
	tests := []struct {
		name       string
		give       []string
		wantErr    error
		wantCode   int
		wantFile   string // relative to the working directory
		wantStdout []string
		wantState  string
		wantSteps  int
	}{
		{name: "default file name", give: []string{"export", "ok"}, wantFile: "escrow_ok.json",
			wantStdout: []string{"ok  COMPLETED  18 steps  total 7.37s  run run-ok  -> escrow_ok.json"}, wantState: "COMPLETED", wantSteps: 18},
		{name: "-o and a failed escrow", give: []string{"export", "bad", "-o", "out/b.json"}, wantFile: "out/b.json",
			wantStdout: []string{"bad  FAILED (WalletRejected)  12 steps"}, wantState: "FAILED", wantSteps: 12},
		{name: "json output", give: []string{"--json", "export", "-o", "x.json", "ok"}, wantFile: "x.json",
			wantStdout: []string{`"file": "x.json"`, `"state": "COMPLETED"`, `"steps": 18`}, wantState: "COMPLETED", wantSteps: 18},
		{name: "unknown escrow", give: []string{"export", "nope"}, wantErr: starter.ErrEscrowNotFound, wantCode: 1},
		{name: "unknown run", give: []string{"export", "--run", "other", "ok"}, wantErr: starter.ErrEscrowNotFound, wantCode: 1},
		{name: "no id", give: []string{"export"}, wantCode: 2},
		{name: "two ids", give: []string{"export", "a", "b"}, wantCode: 2},
		{name: "invalid id", give: []string{"export", "../x"}, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			require.NoError(t, os.MkdirAll("out", 0o755))
			fe := &fakeEscrows{}
			f, dialed := withHistories(t, fe, histories, nil)

			inv := invoke(t, fe, map[string]string{EnvAddress: "h:1"}, tt.give...)

			if tt.wantCode != 0 {
				require.Error(t, inv.err)
				assert.Equal(t, tt.wantCode, exitCode(inv.err))
				if tt.wantErr != nil {
					assert.ErrorIs(t, inv.err, tt.wantErr)
				}
				return
			}
			require.NoError(t, inv.err)
			assert.Equal(t, []string{"h:1 default"}, *dialed)
			assert.True(t, f.closed, "connection closed")
			for _, s := range tt.wantStdout {
				assert.Contains(t, inv.stdout.String(), s)
			}
			e, err := instrument.ReadFile(tt.wantFile)
			require.NoError(t, err)
			assert.Equal(t, tt.wantState, e.State)
			assert.Len(t, e.Steps, tt.wantSteps)
			b, err := os.ReadFile(tt.wantFile)
			require.NoError(t, err)
			assert.NotContains(t, string(b), `"Multisig`)
			assert.NotContains(t, string(b), "SECRETKEYMATERIAL")
		})
	}
}

func TestExportStdout(t *testing.T) {
	fe := &fakeEscrows{}
	withHistories(t, fe, map[string]*historytest.History{"escrow-ok": historytest.Escrow("ok", "run-ok", exportStart, nil)}, nil)
	t.Chdir(t.TempDir())

	inv := invoke(t, fe, nil, "export", "-o", "-", "ok")

	require.NoError(t, inv.err)
	var e instrument.Escrow
	require.NoError(t, json.Unmarshal(inv.stdout.Bytes(), &e))
	assert.Equal(t, instrument.Schema, e.Schema)
	assert.Equal(t, "escrow-ok", e.WorkflowID)
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	assert.Empty(t, entries, "no file written")
}

func TestExportDialError(t *testing.T) {
	fe := &fakeEscrows{}
	withHistories(t, fe, nil, errors.New("connection refused"))

	inv := invoke(t, fe, nil, "export", "ok")

	assert.ErrorContains(t, inv.err, "connection refused")
	assert.Equal(t, 1, exitCode(inv.err))
}
