package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
)

var runningStates = map[escrow.State]bool{
	escrow.StateCreating: true, escrow.StatePreparing: true, escrow.StateMaking: true,
	escrow.StateExchanging: true, escrow.StateVerifying: true,
}

// TestEscrowSetup runs escrows end to end on the real Temporal dev server
// with an in-process worker over real wallet-rpc processes.
func TestEscrowSetup(t *testing.T) {
	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	logs := inProcessWorker(t, tp.HostPort, walletDir, 9)
	tc := tp.Client(t)
	sc := starter.New(tc)
	ctx := context.Background()

	ids := []string{"par-1", "par-2", "par-3"}
	results := map[string]*escrow.SetupResult{}

	t.Run("three escrows in parallel", func(t *testing.T) {
		for _, id := range ids {
			_, err := sc.Start(ctx, id)
			require.NoError(t, err)
		}
		// The status query answers while the escrows run.
		st, err := sc.Status(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, ids[0], st.EscrowID)
		require.True(t, runningStates[st.State] || st.State == escrow.StateCompleted, "state %q", st.State)
		mid := waitState(t, sc, ids[1], escrow.StatePreparing, escrow.StateMaking, escrow.StateExchanging)
		require.Len(t, mid.Roles, 3, "every role reports its round")

		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := sc.Wait(ctx, id)
				mu.Lock()
				defer mu.Unlock()
				if !errors.Is(err, nil) {
					t.Errorf("escrow %s: %v", id, err)
					return
				}
				results[id] = res
			}()
		}
		wg.Wait()
		require.Len(t, results, 3)

		addrs := map[string]bool{}
		var latestStart, earliestEnd time.Time
		for _, id := range ids {
			res := results[id]
			require.Equal(t, id, res.EscrowID)
			verifyWallets(t, walletDir, res)
			addrs[res.MultisigAddress] = true
			require.Len(t, res.Rounds, 18, "6 rounds × 3 roles")
			first, last := res.Rounds[0].Started, res.Rounds[0].Finished
			for _, r := range res.Rounds {
				require.GreaterOrEqual(t, r.Attempts, int32(1))
				if r.Started.Before(first) {
					first = r.Started
				}
				if r.Finished.After(last) {
					last = r.Finished
				}
			}
			if first.After(latestStart) {
				latestStart = first
			}
			if earliestEnd.IsZero() || last.Before(earliestEnd) {
				earliestEnd = last
			}
			st, err := sc.Status(ctx, id)
			require.NoError(t, err)
			require.Equal(t, escrow.StateCompleted, st.State)

			// Only the final snapshots (with manifests) and the claim remain.
			var want []string
			for _, role := range escrow.Roles {
				w := res.Wallets[role].Wallet
				want = append(want, w, w+".keys", w+".address.txt", w+".sha256")
			}
			want = append(want, id+".claim")
			got := walletFiles(t, walletDir, id)
			sort.Strings(want)
			require.Equal(t, want, got, "files of %s", id)
		}
		require.Len(t, addrs, 3, "three different multisig addresses")
		// Locked down: every file the owner's only, 0600; every dir 0700.
		require.NoError(t, filepath.WalkDir(walletDir, func(path string, d fs.DirEntry, err error) error {
			require.NoError(t, err)
			info, err := d.Info()
			require.NoError(t, err)
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			require.Equal(t, want, info.Mode().Perm(), "mode of %s", path)
			return nil
		}))
		require.True(t, latestStart.Before(earliestEnd), "the three escrows overlap in time")
	})

	t.Run("listed by EscrowState", func(t *testing.T) {
		testenv.WaitFor(t, 30*time.Second, "visibility lists the completed escrows", func() bool {
			list, err := sc.List(ctx, escrow.StateCompleted, 100)
			if err != nil {
				return false
			}
			found := 0
			for _, s := range list {
				for _, id := range ids {
					if s.EscrowID == id {
						found++
					}
				}
			}
			return found == 3
		})
	})

	t.Run("raw temporal CLI start", func(t *testing.T) {
		out, err := exec.Command(testenv.TemporalCLI(t), "workflow", "start", "--address", tp.HostPort,
			"--task-queue", "escrow-setup", "--type", "EscrowSetup", "--workflow-id", "escrow-raw-1",
			"--input", `{"escrowId":"raw-1"}`).CombinedOutput()
		require.NoError(t, err, "%s", out)
		res, err := sc.Wait(ctx, "raw-1")
		require.NoError(t, err)
		verifyWallets(t, walletDir, res)
	})

	t.Run("duplicate through the starter is refused", func(t *testing.T) {
		_, err := sc.Start(ctx, ids[0])
		require.ErrorIs(t, err, starter.ErrDuplicateEscrow)
		var dup *starter.DuplicateEscrowError
		require.ErrorAs(t, err, &dup)
		require.Equal(t, ids[0], dup.EscrowID)
	})

	t.Run("second raw CLI run of a used id fails DuplicateEscrow and hides nothing", func(t *testing.T) {
		before := walletFiles(t, walletDir, ids[0])
		out, err := exec.Command(testenv.TemporalCLI(t), "workflow", "start", "--address", tp.HostPort,
			"--task-queue", "escrow-setup", "--type", "EscrowSetup", "--workflow-id", escrow.WorkflowID(ids[0]),
			"--input", fmt.Sprintf(`{"escrowId":%q}`, ids[0])).CombinedOutput()
		require.NoError(t, err, "the raw CLI allows a new run of a closed id: %s", out)
		err = tc.GetWorkflow(ctx, escrow.WorkflowID(ids[0]), "").Get(ctx, nil)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr, "the new run fails")
		require.Equal(t, escrow.TypeDuplicateEscrow, appErr.Type())
		// The starter still reports the escrow's own, first run.
		res, err := sc.Wait(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, results[ids[0]].MultisigAddress, res.MultisigAddress)
		res, err = sc.Result(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, results[ids[0]].MultisigAddress, res.MultisigAddress)
		st, err := sc.Status(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, escrow.StateCompleted, st.State)
		// The first escrow's files are untouched and its wallets still work.
		require.Equal(t, before, walletFiles(t, walletDir, ids[0]))
		verifyWallets(t, walletDir, results[ids[0]])
	})

	t.Run("invalid escrow ids are refused before anything starts", func(t *testing.T) {
		for _, id := range []string{"", "../x", "a/b", "a.b", "a b", strings.Repeat("x", 65), "ñ"} {
			_, err := sc.Start(ctx, id)
			var bad *escrow.InvalidEscrowIDError
			require.ErrorAs(t, err, &bad, "%q", id)
		}
		// A raw start with a bad id fails the workflow with InvalidInput.
		out, err := exec.Command(testenv.TemporalCLI(t), "workflow", "start", "--address", tp.HostPort,
			"--task-queue", "escrow-setup", "--type", "EscrowSetup", "--workflow-id", "escrow-bad",
			"--input", `{"escrowId":"../../etc/passwd"}`).CombinedOutput()
		require.NoError(t, err, "%s", out)
		err = tc.GetWorkflow(ctx, "escrow-bad", "").Get(ctx, nil)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr)
		require.Equal(t, escrow.TypeInvalidInput, appErr.Type())
	})

	t.Run("cancel parks the wallets", func(t *testing.T) {
		_, err := sc.Start(ctx, "cancel-1")
		require.NoError(t, err)
		// The worker's log, not a query: a query can take longer than a round.
		testenv.WaitFor(t, 3*time.Minute, "a PREPARING lease of cancel-1", func() bool {
			return logs.Filter(func(e observer.LoggedEntry) bool {
				f := e.ContextMap()
				return e.Message == "lease acquired" && f["escrow_id"] == "cancel-1" && f["round"] == string(escrow.RoundPrepare)
			}).Len() > 0
		})
		require.NoError(t, tc.CancelWorkflow(ctx, escrow.WorkflowID("cancel-1"), ""))
		_, err = sc.Wait(ctx, "cancel-1")
		var failed *starter.EscrowFailedError
		require.ErrorAs(t, err, &failed)
		require.Equal(t, escrow.TypeCancelled, failed.Type)
		st, err := sc.Status(ctx, "cancel-1")
		require.NoError(t, err)
		require.Equal(t, escrow.StateFailed, st.State)
		_, err = os.Stat(filepath.Join(walletDir, "cancel-1.parked.json"))
		require.NoError(t, err, "a cancelled escrow's wallets are parked")
		require.NotEmpty(t, walletFiles(t, walletDir, "cancel-1"), "and never deleted")
	})

	t.Run("log events and no secrets in logs", func(t *testing.T) {
		for _, msg := range []string{"multisig setup started", "lease acquired", "rpc call completed", "atomic copy", "multisig setup succeeded"} {
			require.NotZero(t, logs.FilterMessage(msg).Len(), "log event %q", msg)
		}
		for _, e := range logs.FilterMessage("lease acquired").All() {
			require.Contains(t, e.ContextMap(), "wait_ms")
		}
		for _, e := range logs.FilterMessage("rpc call completed").All() {
			m := e.ContextMap()
			require.Contains(t, m, "role")
			require.Contains(t, m, "method")
			require.Contains(t, m, "ms")
		}
		var all strings.Builder
		for _, e := range logs.All() {
			fmt.Fprintln(&all, e.Message, e.ContextMap())
		}
		text := all.String()
		for _, id := range append(ids, "raw-1") {
			for _, role := range escrow.Roles {
				require.NotContains(t, text, password(t, id, role), "a wallet password leaked into the logs")
			}
		}
		require.NotContains(t, text, masterSecret)
		require.NotContains(t, text, "MultisigxV2", "a multisig message leaked into the logs")
	})

	t.Run("the three roles of a round overlap in time", func(t *testing.T) {
		// A round overlaps when every role leased its process (its step
		// began) before any role committed its snapshot (its step ended).
		// Rounds run one role after another never overlap; rounds run in
		// parallel do, except that a fast round (EXCHANGING_1 takes about
		// 0.1 s of wallet-rpc) may be dispatched one role at a time on a
		// loaded machine. So each escrow must show at least two of its four
		// committing rounds overlapping.
		for _, id := range ids {
			overlapping := 0
			var seen []string
			for _, round := range []escrow.Round{escrow.RoundCreate, escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2} {
				var lastLease, firstCommit time.Time
				leases, commits := map[string]bool{}, map[string]bool{}
				for _, e := range logs.All() {
					f := e.ContextMap()
					if f["escrow_id"] != id || f["round"] != string(round) {
						continue
					}
					role, _ := f["role"].(string)
					switch e.Message {
					case "lease acquired":
						leases[role] = true
						if e.Time.After(lastLease) {
							lastLease = e.Time
						}
					case "atomic copy":
						commits[role] = true
						if firstCommit.IsZero() || e.Time.Before(firstCommit) {
							firstCommit = e.Time
						}
					}
				}
				require.Len(t, leases, 3, "%s %s: a lease per role", id, round)
				require.Len(t, commits, 3, "%s %s: a commit per role", id, round)
				if lastLease.Before(firstCommit) {
					overlapping++
				}
				seen = append(seen, fmt.Sprintf("%s: last lease %s, first commit %s", round,
					lastLease.Format(time.StampMicro), firstCommit.Format(time.StampMicro)))
			}
			require.GreaterOrEqual(t, overlapping, 2, "%s: rounds whose three roles overlap in time:\n%s", id, strings.Join(seen, "\n"))
		}
	})
}

// TestWorkerKilledDuringMaking kills the worker process (SIGKILL) as soon as
// its log shows a step of the escrow's MAKING round leased a process, checks that its wallet-rpc processes die
// with it, restarts it, and expects the escrow to complete.
func TestWorkerKilledDuringMaking(t *testing.T) {
	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	logDir := t.TempDir()
	sc := starter.New(tp.Client(t))
	ctx := context.Background()
	start := func(n int) *workerProcess {
		return startWorkerProcess(t, tp.HostPort, walletDir, filepath.Join(logDir, fmt.Sprintf("worker-%d.log", n)), "ESCROWFLOW_POOL_SIZE=3")
	}

	w1 := start(1)
	_, err := sc.Start(ctx, "kill-1")
	require.NoError(t, err)
	waitLeased(t, w1.logPath, "kill-1", escrow.RoundMake)
	children := jsonLogPIDs(t, w1.logPath)
	require.Len(t, children, 3)
	w1.kill(t)
	for _, pid := range children {
		testenv.WaitFor(t, 15*time.Second, fmt.Sprintf("wallet-rpc %d dies with its worker", pid), func() bool {
			return testenv.ProcessGone(pid)
		})
	}

	start(2)
	res, err := sc.Wait(ctx, "kill-1")
	require.NoError(t, err)
	verifyWallets(t, walletDir, res)
	recovered := false
	for _, r := range res.Rounds {
		if r.Recovered || r.Attempts > 1 {
			recovered = true
		}
	}
	require.True(t, recovered, "some role resumed from its snapshot after the kill")
}
