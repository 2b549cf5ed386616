package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/walletstore"
)

// ClaimInput is the input of ClaimEscrow.
type ClaimInput struct {
	EscrowID string `json:"escrowId"`
}

// ClaimOutput is the result of ClaimEscrow.
type ClaimOutput struct {
	// Resumed is true when this run had claimed the escrow already (a retry).
	Resumed bool `json:"resumed"`
	// TaskQueue is the task queue of the worker that claimed the escrow
	// and holds its wallet files: the escrow's wallet activities must run
	// there. Empty for a worker without one.
	TaskQueue string `json:"taskQueue,omitempty"`
}

// claim is the content of "<escrowId>.claim" in the wallet dir.
type claim struct {
	EscrowID   string    `json:"escrowId"`
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Created    time.Time `json:"created"`
}

func (a *Activities) claimPath(escrowID string) string {
	return filepath.Join(a.store.Dir(), escrowID+".claim")
}

func (a *Activities) readClaim(escrowID string) (claim, error) {
	var c claim
	b, err := os.ReadFile(a.claimPath(escrowID))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("claim file of %s: %w", escrowID, err)
	}
	return c, nil
}

func runID(ctx context.Context) (workflowID, run string) {
	if !activity.IsActivity(ctx) {
		return "", ""
	}
	we := activity.GetInfo(ctx).WorkflowExecution
	return we.ID, we.RunID
}

// ClaimEscrow makes this workflow run the only owner of the escrow id's
// wallet files. It writes "<escrowId>.claim" atomically and never replaces
// one: a claim by another run, or wallet files without a claim, fail with a
// non-retryable DuplicateEscrow error and change nothing. A retry by the
// same run succeeds.
func (a *Activities) ClaimEscrow(ctx context.Context, in ClaimInput) (ClaimOutput, error) {
	if err := escrow.ValidateEscrowID(in.EscrowID); err != nil {
		return ClaimOutput{}, classify(err)
	}
	if activity.IsActivity(ctx) {
		defer a.keepAlive(ctx)()
	}
	wfID, run := runID(ctx)
	c, err := a.readClaim(in.EscrowID)
	switch {
	case errors.As(err, new(*json.SyntaxError)) || errors.As(err, new(*json.UnmarshalTypeError)):
		return ClaimOutput{}, classify(&escrow.DuplicateEscrowError{EscrowID: in.EscrowID, Detail: "its claim file is unreadable: " + err.Error()})
	case err == nil && c.RunID == run:
		a.mu.Lock()
		a.held[in.EscrowID] = true // ours already, whatever the limit
		a.mu.Unlock()
		return ClaimOutput{Resumed: true, TaskQueue: a.hostQueue}, nil
	case err == nil:
		return ClaimOutput{}, classify(&escrow.DuplicateEscrowError{EscrowID: in.EscrowID,
			Detail: fmt.Sprintf("claimed by workflow %s run %s at %s", c.WorkflowID, c.RunID, c.Created.Format(time.RFC3339))})
	case !errors.Is(err, fs.ErrNotExist):
		return ClaimOutput{}, classify(err)
	}
	if a.runs != nil {
		n, err := a.runs.OtherRuns(ctx, wfID, run)
		if err != nil {
			return ClaimOutput{}, classify(err)
		}
		if n > 0 {
			return ClaimOutput{}, classify(&escrow.DuplicateEscrowError{EscrowID: in.EscrowID,
				Detail: fmt.Sprintf("workflow %s has %d earlier run(s); an escrow id runs once", wfID, n)})
		}
	}
	names, err := a.store.List(escrowPrefix(in.EscrowID))
	if err != nil {
		return ClaimOutput{}, classify(err)
	}
	if len(names) > 0 {
		return ClaimOutput{}, classify(&escrow.DuplicateEscrowError{EscrowID: in.EscrowID,
			Detail: fmt.Sprintf("%d wallet files exist with no claim", len(names))})
	}
	if !a.admit(ctx, in.EscrowID) {
		return ClaimOutput{}, temporal.NewApplicationError(fmt.Sprintf(
			"worker holds %d escrows, its limit, and none finished within %s: another worker or a later retry takes this one",
			a.maxEscrows, a.admitWait), escrow.TypeWorkerBusy)
	}
	b, _ := json.Marshal(claim{EscrowID: in.EscrowID, WorkflowID: wfID, RunID: run, Created: time.Now().UTC()})
	if err := walletstore.AtomicCreateFile(a.claimPath(in.EscrowID), b, 0o600); err != nil {
		a.release(in.EscrowID)
		if errors.Is(err, walletstore.ErrExists) {
			// Another run claimed it between our read and our write.
			return a.ClaimEscrow(ctx, in)
		}
		return ClaimOutput{}, classify(err)
	}
	a.log.Info("multisig setup started", zap.String("escrow_id", in.EscrowID), zap.String("workflow_id", wfID),
		zap.String("task_queue", a.hostQueue))
	return ClaimOutput{TaskQueue: a.hostQueue}, nil
}

// FinishInput is the input of FinishEscrow.
type FinishInput struct {
	EscrowID   string `json:"escrowId"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	ReasonType string `json:"reasonType,omitempty"`
	// Keep names the final snapshots of a completed escrow.
	Keep []string `json:"keep,omitempty"`
	// DurationMs is the setup's duration, for the log.
	DurationMs int64 `json:"durationMs"`
}

// FinishOutput is the result of FinishEscrow.
type FinishOutput struct {
	Removed int  `json:"removed"`
	Parked  bool `json:"parked"`
	// Owner is false when the escrow id is claimed by another run (a
	// duplicate): then nothing was touched.
	Owner bool `json:"owner"`
}

// parked is the content of "<escrowId>.parked.json".
type parked struct {
	EscrowID   string    `json:"escrowId"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason"`
	ReasonType string    `json:"reasonType"`
	Wallets    []string  `json:"wallets"`
	Parked     time.Time `json:"parked"`
}

// FinishEscrow ends an escrow on this worker: it closes the roles' open
// wallets and frees their processes, then removes the escrow's working
// copies, temp files and superseded snapshots when it completed (Keep must
// name one snapshot per role), or parks every wallet file (deleting only
// half-written temp files) with a "<escrowId>.parked.json" note when it
// failed or was cancelled. It touches nothing of an escrow id claimed by
// another run.
func (a *Activities) FinishEscrow(ctx context.Context, in FinishInput) (_ FinishOutput, err error) {
	if err := escrow.ValidateEscrowID(in.EscrowID); err != nil {
		return FinishOutput{}, classify(err)
	}
	if in.Outcome == escrow.OutcomeCompleted {
		if len(in.Keep) != escrow.Total {
			return FinishOutput{}, classify(&escrow.InvalidInputError{Field: "keep", Value: strings.Join(in.Keep, ",")})
		}
		for _, k := range in.Keep {
			if !strings.HasPrefix(k, escrowPrefix(in.EscrowID)) {
				return FinishOutput{}, classify(&escrow.InvalidInputError{Field: "keep", Value: k})
			}
		}
	}
	wfID, run := runID(ctx)
	c, err := a.readClaim(in.EscrowID)
	if err != nil || c.RunID != run {
		// Not ours (a duplicate run) or never claimed: touch nothing.
		return FinishOutput{}, nil
	}
	if activity.IsActivity(ctx) {
		defer a.keepAlive(ctx)()
	}
	defer func() {
		if err != nil {
			return // retried
		}
		a.release(in.EscrowID)
		a.metrics.EscrowFinished(in.Outcome)
		if a.onFinish != nil {
			a.onFinish(FinishEvent{EscrowID: in.EscrowID, WorkflowID: wfID, RunID: run, Outcome: in.Outcome})
		}
	}()
	out := FinishOutput{Owner: true}
	for _, role := range []string{"buyer", "vendor", "arbiter"} {
		key := leaseKey(in.EscrowID, role)
		lease, err := a.leases.AcquireOwned(ctx, key)
		if err != nil {
			return out, classify(err)
		}
		closed := ""
		if lease != nil {
			cerr := lease.Wallet().CloseWallet(ctx)
			if cerr != nil {
				a.log.Warn("close wallet failed", zap.String("escrow_id", in.EscrowID), zap.String("role", role), zap.Error(cerr))
				lease.Discard()
			} else {
				lease.Release("")
				closed, _ = parseLeaseState(lease.State())
			}
		}
		a.leases.Forget(key)
		a.finishStock(key, in.EscrowID, role, in.Outcome == escrow.OutcomeCompleted, closed)
	}
	prefix := escrowPrefix(in.EscrowID)
	log := a.log.With(zap.String("escrow_id", in.EscrowID))
	temps, err := a.store.RemoveTemps(prefix)
	switch {
	case err != nil && in.Outcome != escrow.OutcomeCompleted && unwritable(err):
		// Parking on a full or read-only disk: what cannot be removed
		// stays; nothing depends on it.
		log.Warn("temp files not removed", zap.Error(err))
	case err != nil:
		return out, classify(err)
	}
	out.Removed += temps
	names, err := a.store.List(prefix)
	if err != nil {
		return out, classify(err)
	}
	if in.Outcome != escrow.OutcomeCompleted {
		b, _ := json.MarshalIndent(parked{EscrowID: in.EscrowID, Outcome: in.Outcome, Reason: in.Reason,
			ReasonType: in.ReasonType, Wallets: names, Parked: time.Now().UTC()}, "", "  ")
		err := walletstore.AtomicWriteFile(filepath.Join(a.store.Dir(), in.EscrowID+".parked.json"), b, 0o600)
		switch {
		case err == nil:
			out.Parked = true
		case unwritable(err):
			// A disk that cannot take the note will not take it on a
			// retry either; the wallets are all there, the note's content
			// goes to the log.
			log.Error("parking note not written", zap.String("note", string(b)), zap.Error(err))
		default:
			return out, classify(err)
		}
		log.Warn("multisig setup failed", zap.String("outcome", in.Outcome), zap.String("reason_type", in.ReasonType),
			zap.String("reason", in.Reason), zap.Int("wallets_parked", len(names)), zap.Int64("ms", in.DurationMs))
		return out, nil
	}
	// Verify every final snapshot before removing anything: a missing or
	// corrupt one must leave the escrow's earlier snapshots to recover from.
	keep := map[string]bool{}
	for _, k := range in.Keep {
		if _, err := a.store.Verify(k); err != nil {
			return out, classify(err)
		}
		keep[k] = true
	}
	for _, n := range names {
		if keep[n] {
			continue
		}
		if err := a.store.Remove(n); err != nil {
			return out, classify(err)
		}
		out.Removed++
	}
	log.Info("multisig setup succeeded", zap.Int64("ms", in.DurationMs), zap.Int("files_removed", out.Removed))
	return out, nil
}

// admit counts escrowID among the escrows this worker holds, waiting up to
// admitWait (or until ctx ends) while that would exceed MaxEscrows. It
// reports whether it did.
func (a *Activities) admit(ctx context.Context, escrowID string) bool {
	timer := time.NewTimer(a.admitWait)
	defer timer.Stop()
	for {
		a.mu.Lock()
		if a.maxEscrows <= 0 || len(a.held) < a.maxEscrows || a.held[escrowID] {
			a.held[escrowID] = true
			a.mu.Unlock()
			return true
		}
		freed := a.freed
		a.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// idleFor is how long the worker has held no escrow (0 while it holds one).
func (a *Activities) idleFor() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.held) > 0 {
		return 0
	}
	return time.Since(a.idleSince)
}

func (a *Activities) release(escrowID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.held, escrowID)
	if len(a.held) == 0 {
		a.idleSince = time.Now()
	}
	close(a.freed)
	a.freed = make(chan struct{})
}

// unwritable reports a write that failed because the wallet dir cannot take
// writes (full, read-only or not ours): retrying will not help.
func unwritable(err error) bool {
	return walletstore.IsDiskFull(err) || errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}
