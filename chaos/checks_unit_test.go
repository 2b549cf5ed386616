package chaos

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/walletstore"
)

// The checks must be able to fail: these tests feed them the faults they
// look for, without Temporal or wallet-rpc.

func writeWallet(t *testing.T, dir, name, content string) {
	t.Helper()
	for suf, data := range map[string]string{"": content + "-cache", ".keys": content + "-keys", ".address.txt": "9addr"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+suf), []byte(data), 0o600))
	}
}

func TestSnapTrackerFlagsAChangedSnapshot(t *testing.T) {
	dir := t.TempDir()
	s, err := walletstore.Open(dir)
	require.NoError(t, err)
	writeWallet(t, dir, "e1.buyer.work.a1", "v1")
	_, err = s.Snapshot("e1.buyer.work.a1", "e1.buyer.making.a1")
	require.NoError(t, err)
	_, err = s.Snapshot("e1.buyer.work.a1", "e1.buyer.exchanging_1.a1")
	require.NoError(t, err)

	st := newSnapTracker()
	require.Equal(t, 2, st.scan(dir, false))
	require.Empty(t, st.changed())

	// Removing a snapshot (FinishEscrow removes superseded ones) is no change.
	require.NoError(t, s.Remove("e1.buyer.exchanging_1.a1"))
	require.Equal(t, 1, st.scan(dir, true))
	require.Empty(t, st.changed())

	// Rewriting a committed file in place is, by stat and by hash.
	p := filepath.Join(dir, "e1.buyer.making.a1")
	require.NoError(t, os.WriteFile(p, []byte("v2-cache-longer"), 0o600))
	st.scan(dir, false)
	require.Len(t, st.changed(), 1)
	require.Contains(t, st.changed()[0], "e1.buyer.making.a1")
	require.Equal(t, 2, st.recorded())
}

func TestSnapTrackerFlagsSameSizeRewriteOnFullScan(t *testing.T) {
	dir := t.TempDir()
	s, err := walletstore.Open(dir)
	require.NoError(t, err)
	writeWallet(t, dir, "e2.vendor.work.a1", "aaaa")
	_, err = s.Snapshot("e2.vendor.work.a1", "e2.vendor.creating.a1")
	require.NoError(t, err)
	st := newSnapTracker()
	st.scan(dir, false)
	// Same size, same mtime: only re-hashing notices.
	p := filepath.Join(dir, "e2.vendor.creating.a1.keys")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte("bbbb-keys"), 0o600))
	require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	st.scan(dir, true)
	require.Len(t, st.changed(), 1)
}

func TestTempFilesAndStrays(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		".e1.buyer.making.a1.keys.123456.tmp", // walletstore temp
		".e1.parked.json.42.tmp",              // walletstore temp
		".walletrpc",                          // the pool's run dir, not a temp
		"e1.claim", "e1.parked.json",
		"e1.buyer.work.a1.keys", "e1.buyer.work.a1", "e1.buyer.work.a1.new", // wallet-rpc leftover
		"e10.claim", // another escrow sharing the prefix "e1" but not "e1."
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	temps := tempFiles(dir)
	sort.Strings(temps)
	require.Equal(t, []string{".e1.buyer.making.a1.keys.123456.tmp", ".e1.parked.json.42.tmp"}, temps)

	failed := outcome{id: "e1", failType: "DiskFull"}
	require.Equal(t, []string{"e1.buyer.work.a1.new"}, strayFiles(dir, failed))

	// A completed escrow keeps only its claim and final snapshots.
	done := outcome{id: "e1", completed: true, finals: []string{"e1.buyer.work.a1"}}
	strays := strayFiles(dir, done)
	sort.Strings(strays)
	require.Equal(t, []string{"e1.buyer.work.a1.new", "e1.parked.json"}, strays)
}

func TestPlanTrials(t *testing.T) {
	cfg := config{seed: 7, plan: map[faultKind]int{
		faultWorkerKill: 20, faultWalletRPCKill: 5, faultTemporalRestart: 1, faultDiskFull: 1, faultReadOnly: 1,
	}}
	p1, p2 := planTrials(cfg), planTrials(cfg)
	require.Equal(t, p1, p2, "the seed decides the order")
	require.Len(t, p1, 28)
	count := map[faultKind]int{}
	for _, k := range p1 {
		count[k]++
	}
	require.Equal(t, cfg.plan, count)
	require.Equal(t, []faultKind{faultDiskFull, faultReadOnly}, p1[26:], "tmpfs trials last")
	require.NotEqual(t, faultTemporalRestart, p1[0], "the restart comes while other trials run before it")
}

func TestFiguresFailures(t *testing.T) {
	ok := &trialResult{n: 1, kind: faultWorkerKill, outcomes: []outcome{{id: "a", completed: true}}}
	require.Empty(t, totals([]*trialResult{ok}, 1).failures())

	lost := &trialResult{n: 2, kind: faultWorkerKill, outcomes: []outcome{{id: "b", failType: "CorruptSnapshot"}}}
	lost.expectCompleted()
	stuck := &trialResult{n: 3, kind: faultDiskFull, outcomes: []outcome{{id: "c", stuck: true}}}
	untyped := &trialResult{n: 4, kind: faultReadOnly, outcomes: []outcome{{id: "d", failType: "Unknown"}}, temps: 1, orphans: 2}
	f := totals([]*trialResult{ok, lost, stuck, untyped}, 5)
	require.Len(t, f.failures(), 6, "%v", f.failures()) // lost, stuck, untyped, temps, orphans, one trial missing

	mistyped := &trialResult{n: 1, kind: faultDiskFull, outcomes: []outcome{{id: "e", failType: "WalletRejected"}}}
	mistyped.expectType("DiskFull")
	f = totals([]*trialResult{mistyped}, 1)
	require.Len(t, f.mistyped, 1)
	require.Len(t, f.failures(), 1, "a disk fault typed as something else fails the run")

	right := &trialResult{n: 1, kind: faultDiskFull, outcomes: []outcome{{id: "f", failType: "DiskFull"}}}
	right.expectType("DiskFull")
	require.Empty(t, totals([]*trialResult{right}, 1).failures())

	// A kill trial whose escrows recovered nothing missed its fault; a
	// superseded attempt does not count as the trial, a fault that never
	// landed fails the run.
	norec := &trialResult{n: 1, kind: faultWorkerKill, outcomes: []outcome{{id: "g", completed: true}}}
	norec.expectRecovery()
	require.NotEmpty(t, norec.missed)
	norec.superseded = true
	landed := &trialResult{n: 1, attempt: 2, kind: faultWorkerKill, outcomes: []outcome{{id: "h", completed: true, recovered: 2}}}
	landed.expectRecovery()
	require.Empty(t, landed.missed)
	require.Empty(t, totals([]*trialResult{norec, landed}, 1).failures(), "a retried trial that landed")
	never := &trialResult{n: 1, attempt: 3, kind: faultWorkerKill, problem: "the fault did not land in 3 attempts"}
	require.Len(t, totals([]*trialResult{norec, never}, 1).failures(), 1)
	require.Equal(t, []string{"t01b-wk-1", "t01b-wk-2"}, landed.ids(2))
}

func TestEscrowRoundsFromTheLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "worker.log")
	lines := `{"msg":"wallet-rpc ready","pid":10}
{"msg":"multisig setup started","escrow_id":"a"}
{"msg":"lease acquired","escrow_id":"a","round":"CREATING"}
{"msg":"lease acquired","escrow_id":"a","round":"MAKING"}
{"msg":"rpc call completed","escrow_id":"a","round":"MAKING"}
{"msg":"multisig setup started","escrow_id":"b"}
{"msg":"lease acquired","escrow_id":"c","round":"VERIFYING"}
{"msg":"multisig setup succeeded","escrow_id":"c"}
{"msg":"wallet-rpc exited, restarting","pid":10}
{"msg":"wallet-rpc ready","pid":11}
`
	require.NoError(t, os.WriteFile(logPath, []byte(lines), 0o600))
	w := &workerProc{logPath: logPath, exited: make(chan struct{})}
	require.Equal(t, []string{"MAKING", "CLAIMED", "COMPLETED", "QUEUED"}, w.escrowRounds([]string{"a", "b", "c", "d"}))
	require.Equal(t, map[int]bool{11: true}, w.poolPIDs())
	require.True(t, w.waitRound("a", "MAKING", time.Second))
	require.True(t, w.waitRound("c", "EXCHANGING_2", time.Second), "finished counts as past every round")
	require.False(t, w.waitRound("a", "EXCHANGING_1", 100*time.Millisecond))

	// A line appended later is seen.
	go func() {
		time.Sleep(100 * time.Millisecond)
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, _ = f.WriteString(`{"msg":"lease acquired","escrow_id":"a","round":"EXCHANGING_1"}` + "\n")
			_ = f.Close()
		}
	}()
	require.True(t, w.waitRound("a", "EXCHANGING_1", 5*time.Second))
}
