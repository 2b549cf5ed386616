package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
)

// trialTemporalKill SIGKILLs the Temporal dev server's process group (no
// shutdown) while a step of an escrow in MAKING or EXCHANGING has leased
// its process, and starts it again on the same ports and the same SQLite
// database. The worker is not touched. No escrow may be lost (all
// complete) or duplicated (one run per escrow id in visibility, one set of
// final files).
func (h *harness) trialTemporalKill(t *testing.T, tr *trialResult) {
	t.Helper()
	w := h.mainWorker(t)
	pid := w.pid
	escrows := tr.ids(2)
	targets := []string{"MAKING", "EXCHANGING_1", "EXCHANGING_2"}
	target := targets[h.rng.IntN(len(targets))]
	victim := h.rng.IntN(len(escrows))
	h.startStaggered(t, escrows, 2*time.Second)()
	if !w.waitRound(escrows[victim], target, 3*time.Minute) {
		tr.missed = fmt.Sprintf("escrow %d never reached %s", victim+1, target)
	}
	states := w.escrowRounds(escrows)
	tr.when = whenString(states)
	if tr.missed == "" && !anyRunning(states) {
		tr.missed = "no escrow was running at the kill"
	}
	oldPID := h.tp.PID
	down := h.tp.Crash(t)
	tr.notes = append(tr.notes, fmt.Sprintf("temporal pid %d SIGKILLed mid-round (escrow %d in %s), pid %d serving on the same database after %s",
		oldPID, victim+1, target, h.tp.PID, down.Round(100*time.Millisecond)))
	if h.cfg.probe {
		after := tr.escrowID("after")
		h.start(t, after)
		escrows = append(escrows, after)
	}
	tr.outcomes = h.await(t, escrows, h.mainDir)
	if !w.running() || h.main != w || w.pid != pid {
		tr.problem = fmt.Sprintf("worker pid %d did not survive the server's SIGKILL", pid)
	}
	tr.expectCompleted()
	h.expectOneRun(t, tr, escrows)
	h.check(tr, h.mainDir, w)
}

// expectOneRun records every escrow of ids with other than one run in
// Temporal visibility as duplicated.
func (h *harness) expectOneRun(t *testing.T, tr *trialResult, ids []string) {
	t.Helper()
	for _, id := range ids {
		n, err := h.runs(id)
		switch {
		case err != nil:
			tr.notes = append(tr.notes, fmt.Sprintf("%s: runs not listed: %v", id, err))
		case n != 1:
			tr.duplicated = append(tr.duplicated, fmt.Sprintf("trial %d %s: %s has %d runs", tr.n, tr.kind, id, n))
		}
	}
}

// runs counts the runs of escrow id's workflow in visibility, asking again
// for up to 30 s while the count is not 1 (visibility lags after a crash).
func (h *harness) runs(id string) (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := h.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q", escrow.WorkflowID(id)), PageSize: 10,
		})
		cancel()
		n := len(resp.GetExecutions())
		if (err == nil && n == 1) || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(time.Second)
	}
}

// readmeBackupCommand returns README.md's command that backs up a worker's
// wallet dir, run here instead of in the container: tar over parent (the
// directory holding "wallets") into out.
func readmeBackupCommand(t *testing.T, parent, out string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatalf("chaos: %v", err)
	}
	const prefix = "docker compose exec -T escrow-worker "
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, prefix+"tar ") {
			continue
		}
		cmd := strings.TrimPrefix(l, prefix)
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[i])
		}
		before, _, ok := strings.Cut(cmd, "> wallets-")
		if !ok || !strings.Contains(before, "-C /var/lib/escrowflow/data ") {
			t.Fatalf("chaos: README.md's backup command changed shape: %s", cmd)
		}
		return strings.Replace(before, "/var/lib/escrowflow/data", shellQuote(parent), 1) + "> " + shellQuote(out)
	}
	t.Fatal("chaos: no backup command (" + prefix + "tar …) in README.md")
	return ""
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// trialRestoreDrill is README.md's backup and restore, under load: one
// escrow completes, two more run; while one of them is in MAKING or later,
// the wallet dir is backed up with README's command; once a running escrow
// has committed a snapshot after the copy, the worker is stopped, the
// wallet dir destroyed, the backup unpacked and a new worker run. The
// escrow completed before the copy must still open and verify; the running
// ones must complete (verified) or fail CorruptSnapshot, as README says.
func (h *harness) trialRestoreDrill(t *testing.T, tr *trialResult) {
	t.Helper()
	h.stopMainWorker(t)
	parent := filepath.Join(h.baseDir, fmt.Sprintf("drill-%02d%s", tr.n, tr.attemptTag()))
	dir := filepath.Join(parent, "wallets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	w := h.startWorker(t, dir)
	defer func() { w.stop(t) }()
	escrows := tr.ids(3)
	h.start(t, escrows[0])
	before := h.await(t, escrows[:1], dir)
	h.startStaggered(t, escrows[1:], time.Second)()
	running := escrows[1:]
	victim := h.rng.IntN(len(running))
	if !w.waitRound(running[victim], "MAKING", 3*time.Minute) {
		tr.missed = fmt.Sprintf("escrow %s never reached MAKING", running[victim])
	}
	backup := filepath.Join(h.baseDir, fmt.Sprintf("drill-%02d%s.tar", tr.n, tr.attemptTag()))
	atBackup := w.escrowRounds(running)
	cmd := exec.Command("sh", "-c", readmeBackupCommand(t, parent, backup))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	// GNU tar exits 1 for files that changed or vanished while it read
	// them, which README says is harmless; 2 is fatal.
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("chaos: README's backup command: %v\n%s", err, out)
	}
	tr.when = "backup at " + whenString(atBackup)
	if !anyRunning(atBackup) && tr.missed == "" {
		tr.missed = "no escrow was running at the backup"
	}
	// Let a running escrow commit past the copy, so that the restore
	// takes it back in time.
	next := map[string]string{"MAKING": "EXCHANGING_1", "EXCHANGING_1": "EXCHANGING_2", "EXCHANGING_2": "VERIFYING"}
	if n, ok := next[atBackup[victim]]; ok {
		w.waitRound(running[victim], n, time.Minute)
	}
	stopped := w.escrowRounds(running)
	w.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if rout, err := exec.Command("tar", "-C", parent, "-xf", backup).CombinedOutput(); err != nil {
		t.Fatalf("chaos: restore: %v\n%s", err, rout)
	}
	w = h.startWorker(t, dir)
	tr.notes = append(tr.notes, fmt.Sprintf("wallet dir destroyed and restored from README's backup; states at the stop: %s",
		whenString(stopped)))
	if msg := strings.TrimSpace(string(out)); msg != "" {
		tr.notes = append(tr.notes, "backup tar: "+strings.Split(msg, "\n")[0])
	}
	after := h.await(t, running, dir)
	for i := range after {
		// Completed between the backup and the stop: the restore took its
		// dir back to before its final snapshots, which README does not
		// promise to keep (it says to back up after an escrow completes).
		if stopped[i] == "COMPLETED" && after[i].completed {
			after[i].pastBackup, after[i].verifyErr = true, nil
			tr.notes = append(tr.notes, fmt.Sprintf("%s completed after the backup: not in it (its final wallets need a later copy)", after[i].id))
		}
	}
	if !slices.ContainsFunc(after, func(o outcome) bool { return !o.pastBackup }) && tr.missed == "" {
		tr.missed = "every running escrow completed before the restore: none was taken back in time"
	}
	// The escrow completed before the copy: its wallets come from the
	// restored dir now.
	if o := before[0]; o.completed {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := h.sc.Wait(ctx, o.id)
		cancel()
		if err == nil {
			o.verifyErr = h.verifier.verify(dir, res)
			h.verifier.stop()
		} else {
			o.verifyErr = err
		}
		before[0] = o
	} else {
		tr.lost = append(tr.lost, fmt.Sprintf("trial %d %s: %s ended %s before the backup", tr.n, tr.kind, o.id, o))
	}
	tr.outcomes = append(before, after...)
	for _, o := range after {
		if !o.completed && !o.stuck && o.failType != escrow.TypeCorruptSnapshot {
			tr.lost = append(tr.lost, fmt.Sprintf("trial %d %s: %s ended %s, want COMPLETED or FAILED %s (README)",
				tr.n, tr.kind, o.id, o, escrow.TypeCorruptSnapshot))
		}
	}
	h.check(tr, dir, w)
}
