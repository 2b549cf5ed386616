// Package seedcheck runs the old design's testing guide (Tests 1-4 and its
// success criteria) against escrowflow on a running stack: Temporal, a
// worker with its default pool of 9 wallet-rpc processes, and that worker's
// log. `make seed-check` (scripts/seed-check.sh) starts the stack and runs
// TestSeedCheck, which calls Run; TestSourceRules, the source-rule part,
// runs in every `go test`.
package seedcheck

// Run only measures; evaluateSeedCheck turns the measurements into
// PASS/FAIL rows, and the log and source scanners are plain functions too.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/starter"
)

// The old design's figures the check compares with.
const (
	// seedSingleLimit is the old design's target for one escrow.
	seedSingleLimit = 35 * time.Second
	// seedOldSequential is the old design's "before" time for 3 escrows.
	seedOldSequential = 100 * time.Second
	// seedOldParallel and seedOldSpeedup are what the old design claimed
	// for 3 escrows at once.
	seedOldParallel = 35 * time.Second
	seedOldSpeedup  = 2.8
	// seedLeaseLimit is the old design's contention threshold ("lock
	// waits > 100ms").
	seedLeaseLimit = 100 * time.Millisecond
	// seedParallel is the number of escrows of Test 2.
	seedParallel = 3
	// seedPoolSize is the pool size the old design's Test 3 is judged on
	// (the worker's default).
	seedPoolSize = 9
)

// module is the module path a --repo must hold.
const module = "github.com/escrowflow/escrowflow"

// committingRounds are the rounds whose steps commit a wallet snapshot
// (docs/DESIGN.md): each of them must log at least one "atomic copy".
var committingRounds = []escrow.Round{
	escrow.RoundCreate, escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2,
}

// Options are the settings of one Run.
type Options struct {
	// Client starts and waits for escrows on the running stack.
	Client Client
	// WorkerLog is the running worker's log file (console or JSON format).
	WorkerLog string
	// Root is the repository whose Go code is scanned ("": the go.mod at
	// or above the working directory).
	Root string
	// Prefix prefixes the escrow ids; Tag makes them unique.
	Prefix, Tag    string
	Stdout, Stderr io.Writer
	Now            func() time.Time
}

// Client is what the check needs of the starter.
type Client interface {
	Start(ctx context.Context, escrowID string) (starter.Run, error)
	Wait(ctx context.Context, escrowID string) (*escrow.SetupResult, error)
	List(ctx context.Context, state escrow.State, pageSize int) ([]starter.Summary, error)
}

// Run runs the check: Test 1 (one escrow alone), Test 2 (three at once),
// the worker log (Tests 3 and 4) and the source scan, then prints each
// criterion with its measured figure and PASS/FAIL on o.Stdout. It fails
// when a criterion fails.
func Run(ctx context.Context, o Options) error {
	root, err := repoRoot(o.Root)
	if err != nil {
		return err
	}
	single, parallel, err := seedIDs(o.Prefix, o.Now(), o.Tag)
	if err != nil {
		return fmt.Errorf("seed-check: %w", err)
	}
	sc := &seedCheck{o: o, c: o.Client, workerLog: o.WorkerLog, root: root}
	return sc.run(ctx, single, parallel)
}

// seedIDs returns the escrow ids of one check: <prefix>-<stamp>-<tag>-single
// and <prefix>-<stamp>-<tag>-par<n>.
func seedIDs(prefix string, now time.Time, tag string) (single string, parallel []string, err error) {
	base := fmt.Sprintf("%s-%s-%s", prefix, now.UTC().Format("20060102-150405"), tag)
	single = base + "-single"
	ids := []string{single}
	for i := range seedParallel {
		parallel = append(parallel, fmt.Sprintf("%s-par%d", base, i+1))
	}
	for _, id := range append(ids, parallel...) {
		if err := escrow.ValidateEscrowID(id); err != nil {
			return "", nil, fmt.Errorf("prefix %q gives an invalid escrow id: %w", prefix, err)
		}
	}
	return single, parallel, nil
}

// repoRoot returns dir, or the nearest directory at or above the working
// directory with a go.mod, after checking that its go.mod is escrowflow's.
func repoRoot(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for dir = wd; ; {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", fmt.Errorf("seed-check: no go.mod at or above %s; pass --repo", wd)
			}
			dir = parent
		}
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("seed-check: --repo: %w", err)
	}
	if !bytes.Contains(mod, []byte("module "+module+"\n")) {
		return "", fmt.Errorf("seed-check: %s/go.mod is not module %s", dir, module)
	}
	return dir, nil
}

// seedRun is one escrow of the check as escrowctl saw it.
type seedRun struct {
	EscrowID string
	Result   *escrow.SetupResult
	Err      error
	// Started is just before the Start call, Finished when Wait returned.
	Started, Finished time.Time
}

func (r seedRun) wall() time.Duration { return r.Finished.Sub(r.Started) }

func (r seedRun) ok() bool { return r.Err == nil && r.Result != nil && r.Result.Confirmed() }

// seedCheck is one run of the seed-check command.
type seedCheck struct {
	o         Options
	c         Client
	workerLog string
	root      string
}

func (s *seedCheck) progress(format string, args ...any) {
	fmt.Fprintf(s.o.Stderr, "seed-check: %s\n", fmt.Sprintf(format, args...))
}

func (s *seedCheck) run(ctx context.Context, single string, parallel []string) error {
	var in seedInput
	logStart := int64(0)
	if st, err := os.Stat(s.workerLog); err == nil {
		logStart = st.Size()
	}

	// Test 1 wants the escrow alone: say so when others run.
	if list, err := s.c.List(ctx, "", 0); err == nil {
		for _, sum := range list {
			if sum.Running() {
				in.OthersRunning++
			}
		}
	}
	s.progress("Test 1: one escrow alone: %s", single)
	in.Single = s.runAll(ctx, []string{single})[0]
	s.progress("Test 1: %s", describeRun(in.Single))

	s.progress("Test 2: %d escrows at once: %s", len(parallel), strings.Join(parallel, " "))
	in.Parallel = s.runAll(ctx, parallel)
	for _, r := range in.Parallel {
		s.progress("Test 2: %s", describeRun(r))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("seed-check: stopped waiting (%w); the escrows keep running in Temporal", context.Cause(ctx))
	}

	s.progress("Test 4: reading %s from byte %d", s.workerLog, logStart)
	ids := map[string]bool{single: true}
	for _, id := range parallel {
		ids[id] = true
	}
	in.Log, in.LogErr = readWorkerLog(s.workerLog, logStart, ids)

	s.progress("scanning the Go code under %s", s.root)
	in.GoFiles, in.Plain, in.ScanErr = scanPlainCopies(s.root)

	rows := evaluateSeedCheck(in)
	failed := 0
	for _, r := range rows {
		if r.Verdict == verdictFail {
			failed++
		}
	}
	printSeedRows(s.o.Stdout, rows)
	if failed > 0 {
		return fmt.Errorf("seed-check: %d of %d criteria failed", failed, countCriteria(rows))
	}
	return nil
}

// runAll starts the escrows at once and waits for each.
func (s *seedCheck) runAll(ctx context.Context, ids []string) []seedRun {
	runs := make([]seedRun, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			r := seedRun{EscrowID: id, Started: s.o.Now()}
			if _, err := s.c.Start(ctx, id); err != nil {
				r.Err = err
			} else {
				r.Result, r.Err = s.c.Wait(ctx, id)
			}
			r.Finished = s.o.Now()
			runs[i] = r
		})
	}
	wg.Wait()
	return runs
}

func describeRun(r seedRun) string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%s %s after %s: %v", r.EscrowID, escrow.StateFailed, instrument.Wall(r.wall()), r.Err)
	case !r.Result.Confirmed():
		return fmt.Sprintf("%s %s after %s, address NOT confirmed by every role", r.EscrowID, escrow.StateCompleted, instrument.Wall(r.wall()))
	}
	return fmt.Sprintf("%s %s after %s, %s", r.EscrowID, escrow.StateCompleted, instrument.Wall(r.wall()), r.Result.MultisigAddress)
}
