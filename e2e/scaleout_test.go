package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
)

// TestTwoWorkers runs two worker processes, each with its own wallet dir,
// pool and task queue. Six escrows complete, spread over both (each worker
// holds at most 3 at once), each verified in the dir of the worker that
// claimed it. Then one worker is killed for good in the middle of a batch:
// its escrows fail WorkerLost once its queue went unpolled for their
// WorkerLostAfter, the other worker's complete.
func TestTwoWorkers(t *testing.T) {
	tp := testenv.StartTemporal(t)
	tc := tp.Client(t)
	sc := starter.New(tc)
	ctx := context.Background()
	dirs := []string{t.TempDir(), t.TempDir()}
	logs := t.TempDir()
	if d := os.Getenv("E2E_KEEP_LOGS"); d != "" {
		logs = d
	}
	var workers []*workerProcess
	for i, dir := range dirs {
		workers = append(workers, startWorkerProcess(t, tp.HostPort, dir, filepath.Join(logs, fmt.Sprintf("w%d.log", i)),
			"ESCROWFLOW_POOL_SIZE=9", "ESCROWFLOW_MAX_ESCROWS=3", "ESCROWFLOW_ADMIT_WAIT=0", fmt.Sprintf("ESCROWFLOW_WORKER_ID=w%d", i)))
	}
	holder := func(id string) int {
		for i, dir := range dirs {
			if _, err := os.Stat(filepath.Join(dir, id+".claim")); err == nil {
				return i
			}
		}
		return -1
	}

	ids := []string{"so-1", "so-2", "so-3", "so-4", "so-5", "so-6"}
	for _, id := range ids {
		_, err := sc.Start(ctx, id)
		require.NoError(t, err)
	}
	results := waitAll(t, sc, ids)
	perWorker := [2]int{}
	for _, id := range ids {
		if results[id].err != nil {
			st, serr := sc.Status(ctx, id)
			t.Fatalf("%s: %v (status %+v, %v)", id, results[id].err, st, serr)
		}
		h := holder(id)
		require.GreaterOrEqual(t, h, 0, "%s claimed by a worker", id)
		perWorker[h]++
		verifyWallets(t, dirs[h], results[id].res)
		require.Empty(t, walletFiles(t, dirs[1-h], id), "%s left nothing on the other worker", id)
	}
	require.Equal(t, [2]int{3, 3}, perWorker, "work spread over both workers")

	// Kill worker 1 for good while a batch of four runs (again 2+ each).
	batch := []string{"lost-1", "lost-2", "lost-3", "lost-4"}
	for _, id := range batch {
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: escrow.WorkflowID(id), TaskQueue: escrow.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		}, escrow.WorkflowName, escrow.SetupInput{EscrowID: id, WorkerLostAfter: 15 * time.Second})
		require.NoError(t, err)
	}
	testenv.WaitFor(t, 2*time.Minute, "the batch claimed", func() bool {
		for _, id := range batch {
			if holder(id) < 0 {
				return false
			}
		}
		return true
	})
	held := map[string]int{}
	for _, id := range batch {
		held[id] = holder(id)
	}
	// Kill once worker 1 committed its escrows' first snapshots: a lease in
	// PREPARING follows the CREATING commit.
	for _, id := range batch {
		if held[id] == 1 {
			waitLeased(t, workers[1].logPath, id, escrow.RoundPrepare)
		}
	}
	workers[1].kill(t)

	results = waitAll(t, sc, batch)
	lost := 0
	for _, id := range batch {
		r := results[id]
		if held[id] == 0 {
			require.NoError(t, r.err, "%s on the surviving worker", id)
			verifyWallets(t, dirs[0], r.res)
			continue
		}
		lost++
		var failed *starter.EscrowFailedError
		require.True(t, errors.As(r.err, &failed), "%s: %v", id, r.err)
		require.Equal(t, escrow.TypeWorkerLost, failed.Type, "%s", id)
		require.NotEmpty(t, walletFiles(t, dirs[1], id), "the lost worker's files stay where they were")
	}
	require.Equal(t, 2, lost, "worker 1 held two of the four")
}

type outcome struct {
	res *escrow.SetupResult
	err error
}

// waitAll waits for every escrow of ids (at most 6 minutes).
func waitAll(t *testing.T, sc *starter.Client, ids []string) map[string]outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]outcome{}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := sc.Wait(ctx, id)
			mu.Lock()
			out[id] = outcome{res, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
