package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/bench"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/starter"
)

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantStderr string
	}{
		{name: "unknown mode", give: []string{"bench", "--modes", "escrowflow,temporal"}, wantStderr: ""},
		{name: "no mode", give: []string{"bench", "--modes", ","}},
		{name: "mode twice", give: []string{"bench", "--modes", "direct,direct"}},
		{name: "n zero", give: []string{"bench", "-n", "0"}},
		{name: "n too large", give: []string{"bench", "-n", "1001"}},
		{name: "c zero", give: []string{"bench", "-c", "0"}},
		{name: "pool size zero", give: []string{"bench", "--pool-size", "0"}},
		{name: "timeout zero", give: []string{"bench", "--timeout", "0s"}},
		{name: "bad prefix", give: []string{"bench", "--prefix", "../x"}},
		{name: "arguments", give: []string{"bench", "extra"}},
		{name: "unknown flag", give: []string{"bench", "--frob"}, wantStderr: "-pool-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := invoke(t, &fakeEscrows{}, nil, tt.give...)

			require.Error(t, inv.err)
			assert.Equal(t, 2, exitCode(inv.err), "%v", inv.err)
			assert.Empty(t, inv.dialed)
			assert.Contains(t, inv.stderr.String(), tt.wantStderr)
		})
	}

	inv := invoke(t, &fakeEscrows{}, nil, "bench", "--help")
	require.NoError(t, inv.err)
	for _, f := range []string{"-modes", "-n int", "-c int", "-pool-size", "-keep", "-temporal-cli", "-wallet-rpc", "-json", "-address"} {
		assert.Contains(t, inv.stdout.String(), f)
	}
	inv = invoke(t, &fakeEscrows{}, nil, "--help")
	assert.Contains(t, inv.stdout.String(), "bench ")
}

// concurrencyProbe counts escrows in flight in a fake's Wait.
type concurrencyProbe struct {
	now, peak atomic.Int32
}

func (p *concurrencyProbe) wait() {
	n := p.now.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	p.now.Add(-1)
}

// TestBenchOnRunningStack runs escrowflow mode on a (fake) running stack:
// --address given, nothing started, no CPU figures.
func TestBenchOnRunningStack(t *testing.T) {
	var probe concurrencyProbe
	f := &fakeEscrows{result: func(id string) (*escrow.SetupResult, error) {
		probe.wait()
		return nil, nil
	}}
	inv := invoke(t, f, nil, "bench", "--address", "h:1", "--modes", "escrowflow", "-n", "5", "-c", "2", "--prefix", "bt")

	require.NoError(t, inv.err, inv.stderr.String())
	assert.Equal(t, []string{"h:1 default"}, inv.dialed)
	assert.Len(t, f.started, 5)
	for _, id := range f.started {
		assert.Regexp(t, `^bt-\d{8}-\d{6}-[0-9a-f]{4}-[1-5]$`, id)
	}
	assert.Equal(t, int32(2), probe.peak.Load(), "at most -c escrows in flight")
	assert.True(t, f.closed)
	out := inv.stdout.String()
	assert.Contains(t, out, "5 escrows per mode, at most 2 at once")
	assert.Regexp(t, `(?m)^escrowflow  5/5 +2 +- `, out)
	// Not a terminal: one progress line per escrow.
	assert.Equal(t, 5, strings.Count(inv.stderr.String(), "done in"), inv.stderr.String())
	assert.Contains(t, inv.stderr.String(), "bench: escrowflow: on the running stack at h:1")
}

func TestBenchJSONAndFailures(t *testing.T) {
	f := &fakeEscrows{result: func(id string) (*escrow.SetupResult, error) {
		if strings.HasSuffix(id, "-2") {
			return nil, &starter.EscrowFailedError{EscrowID: id, Type: "WalletRejected", Message: "boom"}
		}
		if strings.HasSuffix(id, "-3") {
			res := okResult(id, 0)
			res.Wallets[escrow.Vendor] = escrow.WalletResult{Wallet: "w", Address: "other"}
			return res, nil
		}
		return nil, nil
	}}
	// TEMPORAL_ADDRESS points at a running stack too.
	inv := invoke(t, f, map[string]string{EnvAddress: "t:7233"}, "bench", "--json", "--modes", "escrowflow", "-n", "3", "-c", "3")

	require.Error(t, inv.err)
	assert.Equal(t, 1, exitCode(inv.err))
	assert.Contains(t, inv.err.Error(), "2 escrows failed")
	assert.Equal(t, []string{"t:7233 default"}, inv.dialed)
	var rep bench.Report
	require.NoError(t, json.Unmarshal(inv.stdout.Bytes(), &rep), inv.stdout.String())
	require.Len(t, rep.Modes, 1)
	m := rep.Modes[0]
	assert.Equal(t, bench.Escrowflow, m.Mode)
	assert.Equal(t, 1, m.Completed)
	assert.Equal(t, 2, m.Failed)
	assert.True(t, m.ExternalStack)
	assert.Nil(t, m.CPUSeconds)
	require.Len(t, m.Failures, 2)
	assert.Contains(t, strings.Join(m.Failures, "\n"), "(WalletRejected): boom")
	assert.Contains(t, strings.Join(m.Failures, "\n"), "not confirmed by every role")
	assert.Equal(t, 2, strings.Count(inv.stderr.String(), "FAILED after"))
}

func TestTemporalCLIPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "temporal")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("x"), 0o644))

	got, err := temporalCLIPath(exe, true)
	require.NoError(t, err)
	assert.Equal(t, exe, got)
	t.Chdir(dir)
	got, err = temporalCLIPath("temporal", true)
	require.NoError(t, err)
	assert.Equal(t, exe, got, "made absolute")

	_, err = temporalCLIPath(plain, true)
	assert.ErrorContains(t, err, "not an executable file")

	// A missing default falls back to PATH; an explicit path never does.
	t.Setenv("PATH", dir)
	got, err = temporalCLIPath(filepath.Join(dir, "missing"), false)
	require.NoError(t, err)
	assert.Equal(t, exe, got)
	_, err = temporalCLIPath(filepath.Join(dir, "missing"), true)
	assert.Error(t, err)
	t.Setenv("PATH", t.TempDir())
	_, err = temporalCLIPath(filepath.Join(dir, "missing"), false)
	assert.Error(t, err)
}
