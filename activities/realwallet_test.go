package activities

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// TestRealWalletSetupAcrossWorkerRestart runs one escrow's whole 2-of-3
// setup through the activities against real monero-wallet-rpc processes,
// and restarts the worker (pool and Activities) between MakeMultisig and
// the first key exchange, so that every role resumes from its committed
// snapshot on a process that never saw its wallet.
func TestRealWalletSetupAcrossWorkerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts monero-wallet-rpc processes")
	}
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := t.TempDir()
	store, err := walletstore.Open(dir)
	require.NoError(t, err)
	passwords := mustPasswords(t, testMaster)
	info := runInfo{WorkflowID: "escrow-r1", RunID: "run-real"}

	var pids []int
	startWorker := func() (*pool.Pool, *Activities) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p, err := pool.Start(ctx, pool.Config{Binary: bin, Size: 3, WalletDir: dir, HealthInterval: time.Second, HealthTimeout: 5 * time.Second})
		require.NoError(t, err)
		pids = append(pids, p.PIDs()...)
		t.Cleanup(func() { _ = p.Stop(context.Background()) })
		return p, New(Config{Leases: PoolLeaser(p), Store: store, Passwords: passwords, HeartbeatEvery: 500 * time.Millisecond})
	}

	var snaps, infos [3]string
	round := func(acts *Activities, name string, fn func(*Activities) func(context.Context, StepInput) (StepOutput, error), peers bool) [3]StepOutput {
		t.Helper()
		start := time.Now()
		outs := forRoles(t, func(i int) (StepOutput, error) {
			in := StepInput{EscrowID: "r1", Role: roles[i], Round: name, Snapshot: snaps[i]}
			if peers {
				in.PeerInfos = peersOf(infos[:], i)
			}
			return execute(acts, info, fn(acts), in)
		})
		for i, o := range outs {
			snaps[i] = o.Snapshot
			if o.MultisigInfo != "" {
				infos[i] = o.MultisigInfo
			}
		}
		t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond))
		return outs
	}
	create := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.CreateWallet }
	prepare := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.PrepareMultisig }
	makeMS := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.MakeMultisig }
	exchange := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) {
		return a.ExchangeMultisigKeys
	}
	verify := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.VerifyMultisig }

	pool1, acts := startWorker()
	claim := mustExecute(t, acts, info, acts.ClaimEscrow, ClaimInput{EscrowID: "r1"})
	require.False(t, claim.Resumed)

	created := round(acts, "CREATING", create, false)
	prepared := round(acts, "PREPARING", prepare, false)
	made := round(acts, "MAKING", makeMS, true)
	for i, role := range roles {
		assert.NotEmpty(t, created[i].Address, role)
		assert.True(t, strings.HasPrefix(prepared[i].MultisigInfo, "Multisig"), role)
		assert.True(t, strings.HasPrefix(made[i].MultisigInfo, "Multisig"), role)
		for _, o := range []StepOutput{created[i], prepared[i], made[i]} {
			assert.False(t, o.Recovered, "%s: one worker, fast path", role)
		}
	}

	// The worker restarts: its wallet-rpc processes go (SIGTERM; they store
	// and close the working copies), a new pool and new Activities come up
	// over the same wallet dir.
	require.NoError(t, pool1.Stop(context.Background()))
	committed := map[string]map[string]string{}
	for _, o := range made {
		committed[o.Snapshot] = walletFiles(t, dir, o.Snapshot)
	}
	pool2, acts := startWorker()

	ex1 := round(acts, "EXCHANGING_1", exchange, true)
	for i, role := range roles {
		assert.True(t, ex1[i].Recovered, "%s resumed from its snapshot on the new worker", role)
		assert.Empty(t, ex1[i].Address, "%s: no final address after round 1", role)
	}
	for s, files := range committed {
		assertSameFiles(t, files, walletFiles(t, dir, s), s+" untouched by the recovery")
	}
	ex2 := round(acts, "EXCHANGING_2", exchange, true)
	final := ex2[0].Address
	require.NotEmpty(t, final)
	for i, role := range roles {
		assert.False(t, ex2[i].Recovered, "%s: fast path again after the recovery", role)
		assert.Equal(t, final, ex2[i].Address, role)
	}
	verified := round(acts, "VERIFYING", verify, false)
	for i, role := range roles {
		v := verified[i]
		assert.Equal(t, rpcclient.MultisigStatus{Multisig: true, Ready: true, Threshold: 2, Total: 3},
			rpcclient.MultisigStatus{Multisig: v.Multisig, Ready: v.Ready, Threshold: v.Threshold, Total: v.Total}, role)
		assert.Equal(t, final, v.Address, role)
		assert.Equal(t, ex2[i].Snapshot, v.Snapshot, role)
	}
	all, err := store.List("r1.")
	require.NoError(t, err)
	for _, n := range all {
		if !strings.Contains(n, ".work.") {
			_, err := store.Verify(n)
			require.NoError(t, err, "snapshot %s", n)
		}
	}

	var keep []string
	for _, o := range ex2 {
		keep = append(keep, o.Snapshot)
	}
	done, err := execute(acts, info, acts.FinishEscrow, FinishInput{EscrowID: "r1", Outcome: escrow.OutcomeCompleted, Keep: keep})
	require.NoError(t, err)
	assert.True(t, done.Owner)
	assert.False(t, done.Parked)
	assert.Greater(t, done.Removed, 0)

	want := []string{"r1.claim"}
	for _, k := range keep {
		m, err := store.Verify(k)
		require.NoError(t, err)
		want = append(want, k+walletstore.ManifestSuffix)
		for _, f := range m.Files {
			want = append(want, k+f.File)
		}
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		if e.IsDir() && e.Name() == ".walletrpc" {
			continue // the pool's run dir (logs, ring db)
		}
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, want, got, "only the final snapshots, their manifests and the claim remain")

	require.NoError(t, pool2.Stop(context.Background()))
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "wallet-rpc %d survived", pid)
	}
}
