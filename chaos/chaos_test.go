package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/walletstore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// masterSecret is the chaos workers' master secret; the run derives the
// wallet passwords from it to open the final wallets itself.
const masterSecret = "chaos-master-secret-0123456789abcdef0123456789abcdef"

// Environment variables (and flags, which win) that drive the run.
const (
	// EnvTrials: empty for the short run (one trial of each fault kind, what
	// `make test` runs); a number N for N worker-kill trials, N/4 (at least
	// one) wallet-rpc-kill trials, 3 Temporal SIGKILLs and one trial of each
	// other kind (what `make chaos` runs, N=20); or an explicit plan such as
	// "worker-kill=3,disk-full=1".
	EnvTrials = "ESCROWFLOW_CHAOS_TRIALS"
	// EnvSeed: the seed of every random choice (order, victims, rounds,
	// jitters);
	// printed at the start of every run so a run can be reproduced.
	EnvSeed = "ESCROWFLOW_CHAOS_SEED"
	// EnvReport: when set, the final table is also written to this file.
	EnvReport = "ESCROWFLOW_CHAOS_REPORT"
	// EnvReportJSON: when set, the raw report (every trial, outcome and
	// total, see jsonReport) is written to this file as JSON.
	EnvReportJSON = "ESCROWFLOW_CHAOS_REPORT_JSON"
	// EnvLogDir: when set, the worker logs are written to (and kept in)
	// this directory instead of a temporary one.
	EnvLogDir = "ESCROWFLOW_CHAOS_LOGDIR"
)

var (
	flagTrials = flag.String("chaos.trials", "", "trial plan (overrides $"+EnvTrials+")")
	flagSeed   = flag.String("chaos.seed", "", "random seed (overrides $"+EnvSeed+")")
)

// faultKind is one kind of injected fault.
type faultKind string

const (
	faultWorkerKill      faultKind = "worker-kill"
	faultWalletRPCKill   faultKind = "wallet-rpc-kill"
	faultTemporalRestart faultKind = "temporal-restart"
	faultTemporalKill    faultKind = "temporal-kill"
	faultRestoreDrill    faultKind = "restore-drill"
	faultDiskFull        faultKind = "disk-full"
	faultReadOnly        faultKind = "read-only"
)

var allFaults = []faultKind{faultWorkerKill, faultWalletRPCKill, faultTemporalRestart, faultTemporalKill, faultRestoreDrill, faultDiskFull, faultReadOnly}

// maxTrialAttempts bounds how often a trial whose fault did not land (the
// target round was never reached, only idle processes were there to kill,
// every escrow fitted on the disk, nothing recovered) is run again, with
// fresh escrows; after that the run fails.
const maxTrialAttempts = 3

// config is the run's plan.
type config struct {
	plan     map[faultKind]int
	seed     uint64 // of every random choice
	escrows  int    // escrows per worker-kill trial
	rpcKill  int    // escrows per wallet-rpc-kill trial
	poolSize int    // wallet-rpc processes per worker
	// probe starts one more escrow after a Temporal restart to show that
	// new work is picked up too.
	probe bool
	// waitTimeout bounds the wait for a trial's escrows to end once the
	// fault is over: an escrow still running then is stuck.
	waitTimeout time.Duration
	// tmpfsFull is the size of the disk-full trial's tmpfs.
	tmpfsFull int64
}

func parseConfig(t *testing.T) config {
	t.Helper()
	cfg := config{
		plan:        map[faultKind]int{},
		escrows:     2,
		rpcKill:     1,
		poolSize:    6,
		waitTimeout: 4 * time.Minute,
		tmpfsFull:   diskFullSize,
	}
	spec := os.Getenv(EnvTrials)
	if *flagTrials != "" {
		spec = *flagTrials
	}
	spec = strings.TrimSpace(spec)
	switch n, err := strconv.Atoi(spec); {
	case spec == "":
		for _, k := range allFaults {
			cfg.plan[k] = 1
		}
	case err == nil:
		if n < 1 {
			t.Fatalf("chaos: %s=%q: want at least 1", EnvTrials, spec)
		}
		cfg.escrows, cfg.rpcKill, cfg.poolSize, cfg.probe = 3, 2, 9, true
		cfg.plan[faultWorkerKill] = n
		cfg.plan[faultWalletRPCKill] = max(1, n/4)
		cfg.plan[faultTemporalRestart] = 1
		cfg.plan[faultTemporalKill] = 3
		cfg.plan[faultRestoreDrill] = 1
		cfg.plan[faultDiskFull] = 1
		cfg.plan[faultReadOnly] = 1
	default:
		cfg.escrows, cfg.rpcKill, cfg.poolSize, cfg.probe = 3, 2, 9, true
		for _, part := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			n, err := strconv.Atoi(v)
			known := false
			for _, f := range allFaults {
				known = known || f == faultKind(k)
			}
			if !ok || err != nil || n < 0 || !known {
				t.Fatalf("chaos: %s=%q: want a number or kind=N,… with kinds %v", EnvTrials, spec, allFaults)
			}
			cfg.plan[faultKind(k)] = n
		}
	}
	seed := os.Getenv(EnvSeed)
	if *flagSeed != "" {
		seed = *flagSeed
	}
	if seed == "" {
		cfg.seed = uint64(time.Now().UnixNano())
	} else {
		s, err := strconv.ParseUint(seed, 10, 64)
		if err != nil {
			t.Fatalf("chaos: %s=%q: want an unsigned integer", EnvSeed, seed)
		}
		cfg.seed = s
	}
	return cfg
}

// harness is the state of one chaos run.
type harness struct {
	cfg       config
	rng       *rand.Rand
	tp        *testenv.Temporal
	tc        client.Client
	sc        *starter.Client
	workerBin string
	walletRPC string
	baseDir   string
	logDir    string
	mainDir   string // the wallet dir of the kill and restart trials
	workerSeq int
	main      *workerProc  // the worker over mainDir, nil when stopped
	cur       *trialResult // the trial running now
	snaps     *snapTracker
	verifier  *verifier
}

// TestChaos is the fault-injection run. See the package doc and
// docs/RELIABILITY.md.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes minutes; not with -short")
	}
	cfg := parseConfig(t)
	plan := planTrials(cfg)
	fmt.Printf("chaos: seed %d (reproduce with %s=%d), %d trials: %s\n", cfg.seed, EnvSeed, cfg.seed, len(plan), planString(cfg))

	h := &harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))}
	h.walletRPC = testenv.RequireBinary(t, "monero-wallet-rpc")
	h.tp = testenv.StartTemporal(t)
	h.workerBin = testenv.BuildBinary(t, "./cmd/escrow-worker")
	h.tc = h.tp.Client(t)
	h.sc = starter.New(h.tc)
	h.baseDir = t.TempDir()
	h.logDir = filepath.Join(h.baseDir, "logs")
	if d := os.Getenv(EnvLogDir); d != "" {
		h.logDir = d
		// Keep the Temporal server's log too.
		t.Cleanup(func() {
			if b, err := os.ReadFile(h.tp.LogPath); err == nil {
				_ = os.WriteFile(filepath.Join(d, "temporal.log"), b, 0o644)
			}
		})
	}
	h.mainDir = filepath.Join(h.baseDir, "wallets")
	for _, d := range []string{h.logDir, h.mainDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h.snaps = newSnapTracker()
	v, err := newVerifier(h.walletRPC, filepath.Join(h.baseDir, "verify"))
	if err != nil {
		t.Fatal(err)
	}
	h.verifier = v
	t.Cleanup(h.verifier.stop)

	// Watch the main wallet dir for committed snapshots all along.
	stopWatch := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		h.snaps.watch(h.mainDir, 500*time.Millisecond, stopWatch)
	}()
	defer func() {
		close(stopWatch)
		watchWG.Wait()
	}()

	started := time.Now()
	var rows []*trialResult
	// The table and the final checks run even when a helper ends the test
	// with t.Fatal: a missing trial then shows as not accounted for.
	defer h.finish(t, plan, &rows, started)
	for i, kind := range plan {
		for _, tr := range h.runTrial(t, i+1, kind) {
			rows = append(rows, tr)
			fmt.Println("chaos: " + tr.line())
		}
	}
}

// finish stops the main worker, runs the final checks over the main wallet
// dir, prints the table (and writes it to $ESCROWFLOW_CHAOS_REPORT) and
// fails the test for every must-be-zero figure that is not.
func (h *harness) finish(t *testing.T, plan []faultKind, rowsp *[]*trialResult, started time.Time) {
	rows := *rowsp
	if h.main != nil {
		h.main.stop(t)
		h.main = nil
	}
	// Every committed snapshot seen in the main dir is unchanged and
	// verifies, and nothing runs over the dir any more.
	h.snaps.scan(h.mainDir, true)
	finalOrphans := orphans(h.mainDir, nil, 15*time.Second)
	finalTemps := tempFiles(h.mainDir)

	tot := totals(rows, len(plan))
	tot.snapshotsChanged = len(h.snaps.changed())
	tot.orphans += len(finalOrphans)
	tot.temps += len(finalTemps)
	tot.snapshotsSeen = h.snaps.recorded()
	report := renderReport(rows, tot, h.cfg, time.Since(started))
	fmt.Print(report)
	fmt.Printf("chaos: worker logs in %s\n", h.logDir)
	if p := os.Getenv(EnvReport); p != "" {
		if err := os.WriteFile(p, []byte(report), 0o644); err != nil {
			t.Errorf("chaos: write report: %v", err)
		}
	}
	if p := os.Getenv(EnvReportJSON); p != "" {
		b, err := json.MarshalIndent(newJSONReport(rows, tot, h.cfg, time.Since(started)), "", "  ")
		if err == nil {
			err = os.WriteFile(p, append(b, '\n'), 0o644)
		}
		if err != nil {
			t.Errorf("chaos: write JSON report: %v", err)
		}
	}
	for _, c := range h.snaps.changed() {
		t.Errorf("chaos: committed snapshot changed: %s", c)
	}
	if len(finalOrphans) > 0 {
		t.Errorf("chaos: wallet-rpc processes over %s still running after the last worker stopped: %v", h.mainDir, finalOrphans)
	}
	if len(finalTemps) > 0 {
		t.Errorf("chaos: temp files left in %s at the end: %v", h.mainDir, finalTemps)
	}
	for _, f := range tot.failures() {
		t.Error("chaos: " + f)
	}
	for _, tr := range rows {
		if tr.notRun != "" && testenv.InCI() {
			t.Errorf("chaos: trial %d (%s) not run under CI=true: %s", tr.n, tr.kind, tr.notRun)
		}
	}
}

// planTrials orders the trials: the worker and wallet-rpc kills in a random
// order with the Temporal restart(s) somewhere in the middle, then the
// tmpfs trials (they need a worker over another wallet dir).
func planTrials(cfg config) []faultKind {
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	var kills []faultKind
	for range cfg.plan[faultWorkerKill] {
		kills = append(kills, faultWorkerKill)
	}
	for range cfg.plan[faultWalletRPCKill] {
		kills = append(kills, faultWalletRPCKill)
	}
	rng.Shuffle(len(kills), func(i, j int) { kills[i], kills[j] = kills[j], kills[i] })
	for _, k := range []faultKind{faultTemporalRestart, faultTemporalKill} {
		for range cfg.plan[k] {
			pos := len(kills) / 2
			if len(kills) > 2 {
				pos = 1 + rng.IntN(len(kills)-1)
			}
			kills = append(kills[:pos], append([]faultKind{k}, kills[pos:]...)...)
		}
	}
	for range cfg.plan[faultRestoreDrill] {
		kills = append(kills, faultRestoreDrill)
	}
	for range cfg.plan[faultDiskFull] {
		kills = append(kills, faultDiskFull)
	}
	for range cfg.plan[faultReadOnly] {
		kills = append(kills, faultReadOnly)
	}
	return kills
}

func planString(cfg config) string {
	var parts []string
	for _, k := range allFaults {
		if cfg.plan[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, cfg.plan[k]))
		}
	}
	return strings.Join(parts, ",")
}

// ---------------------------------------------------------------------------
// Trials.

// outcome is how one escrow of a trial ended.
type outcome struct {
	id        string
	completed bool
	verifyErr error    // completed, but its wallets did not verify
	failType  string   // FAILED: the failure type
	stuck     bool     // still running at the deadline (then terminated)
	lastState string   // stuck: its state at the deadline
	recovered int      // rounds resumed from a snapshot or retried
	finals    []string // completed: the three final snapshots
	// pastBackup: a restore drill's escrow that completed after the backup
	// was taken, so the restored dir holds its earlier snapshots and not its
	// final ones (README: only escrows completed before the copy are whole).
	pastBackup bool
}

func (o outcome) String() string {
	switch {
	case o.stuck:
		return "STUCK in " + o.lastState
	case o.pastBackup:
		return "COMPLETED after the backup (not in it)"
	case o.completed && o.verifyErr == nil:
		return "COMPLETED verified"
	case o.completed:
		return "COMPLETED NOT-VERIFIED"
	default:
		return "FAILED " + o.failType
	}
}

// untypedFailure reports a failure without an application error type.
func (o outcome) untypedFailure() bool {
	return !o.completed && !o.stuck && (o.failType == "" || o.failType == escrow.TypeUnknown)
}

// trialResult is one row of the table.
type trialResult struct {
	n       int
	kind    faultKind
	attempt int    // 1, or more when earlier attempts' faults did not land
	missed  string // the fault did not land (see maxTrialAttempts)
	// superseded: the fault did not land and a later attempt was made;
	// its checks still count, the trial does not.
	superseded bool
	when       string // the escrows' states at the fault
	outcomes   []outcome
	dur        time.Duration
	notes      []string
	notRun     string // why the trial did not run (no tmpfs)
	problem    string // the fault could not be injected as planned
	// Must-be-zero figures found by the checks after the trial.
	snapsChanged, temps, orphans int
	// lost lists escrows that ended FAILED after a fault they must recover
	// from (worker or wallet-rpc killed, Temporal restarted): must be none.
	lost []string
	// mistyped lists escrows that failed because of a disk or directory
	// fault with a type other than the fault's (DiskFull,
	// WalletDirUnwritable): typed, but misleading. Reported, not fatal.
	mistyped []string
	// strays lists files of ended escrows that nothing will remove and
	// that are neither wallets, snapshots, claims nor parking notes.
	strays []string
	// startFailures lists worker starts that failed (and were retried).
	startFailures []string
	// duplicated lists escrows with more than one run after a Temporal
	// crash: must be none.
	duplicated []string
}

func (tr *trialResult) recovered() int {
	n := 0
	for _, o := range tr.outcomes {
		n += o.recovered
	}
	return n
}

func (tr *trialResult) line() string {
	var outs []string
	for _, o := range tr.outcomes {
		outs = append(outs, o.String())
	}
	s := fmt.Sprintf("trial %d%s %s at [%s]: %s; recovered %d; %s", tr.n, tr.attemptTag(), tr.kind, tr.when, strings.Join(outs, ", "),
		tr.recovered(), tr.dur.Round(time.Second))
	if tr.superseded {
		s += "; FAULT DID NOT LAND, retried: " + tr.missed
	}
	if tr.notRun != "" {
		s += "; NOT RUN: " + tr.notRun
	}
	if tr.problem != "" {
		s += "; PROBLEM: " + tr.problem
	}
	if n := len(tr.startFailures); n > 0 {
		s += fmt.Sprintf("; a worker start failed %d× (retried)", n)
	}
	for _, n := range tr.notes {
		s += "; " + n
	}
	return s
}

// attemptTag is "" for a first attempt, "b", "c", … for later ones.
func (tr *trialResult) attemptTag() string {
	if tr.attempt <= 1 {
		return ""
	}
	return string(rune('a' + tr.attempt - 1))
}

// ids returns k fresh escrow ids for the trial's attempt.
func (tr *trialResult) ids(k int) []string { return ids(tr.n, tr.attemptTag(), tr.kind, k) }

// escrowID is one more escrow id of the trial's attempt, named by what.
func (tr *trialResult) escrowID(what string) string {
	return fmt.Sprintf("t%02d%s-%s-%s", tr.n, tr.attemptTag(), shortKind[tr.kind], what)
}

// runTrial runs trial n of kind and its checks, again with fresh escrows
// while its fault does not land (at most maxTrialAttempts times); a fault
// that never lands is a problem of the trial, which fails the run. It
// returns a row per attempt.
func (h *harness) runTrial(t *testing.T, n int, kind faultKind) []*trialResult {
	t.Helper()
	var rows []*trialResult
	for attempt := 1; ; attempt++ {
		tr := h.runAttempt(t, n, kind, attempt)
		rows = append(rows, tr)
		if tr.missed == "" {
			return rows
		}
		if attempt == maxTrialAttempts {
			tr.problem = fmt.Sprintf("the fault did not land in %d attempts (last: %s)", attempt, tr.missed)
			return rows
		}
		tr.superseded = true
	}
}

// runAttempt runs one attempt of trial n.
func (h *harness) runAttempt(t *testing.T, n int, kind faultKind, attempt int) *trialResult {
	t.Helper()
	tr := &trialResult{n: n, kind: kind, attempt: attempt}
	h.cur = tr
	defer func() { h.cur = nil }()
	start := time.Now()
	before := len(h.snaps.changed())
	switch kind {
	case faultWorkerKill:
		h.trialWorkerKill(t, tr)
	case faultWalletRPCKill:
		h.trialWalletRPCKill(t, tr)
	case faultTemporalRestart:
		h.trialTemporalRestart(t, tr)
	case faultTemporalKill:
		h.trialTemporalKill(t, tr)
	case faultRestoreDrill:
		h.trialRestoreDrill(t, tr)
	case faultDiskFull:
		h.trialDiskFull(t, tr)
	case faultReadOnly:
		h.trialReadOnly(t, tr)
	}
	tr.snapsChanged += len(h.snaps.changed()) - before
	tr.dur = time.Since(start)
	return tr
}

// shortKind abbreviates a fault kind in escrow ids.
var shortKind = map[faultKind]string{faultWorkerKill: "wk", faultWalletRPCKill: "rk", faultTemporalRestart: "tr",
	faultTemporalKill: "tk", faultRestoreDrill: "rd", faultDiskFull: "df", faultReadOnly: "ro"}

// ids returns k fresh escrow ids for trial n's attempt tag.
func ids(n int, tag string, kind faultKind, k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("t%02d%s-%s-%d", n, tag, shortKind[kind], i+1)
	}
	return out
}

// mainWorker returns the worker over the main wallet dir, starting one if
// none runs.
func (h *harness) mainWorker(t *testing.T) *workerProc {
	t.Helper()
	if h.main == nil || !h.main.running() {
		h.main = h.startWorker(t, h.mainDir)
	}
	return h.main
}

// stopMainWorker stops the main worker gracefully (before a trial that
// needs a worker over another wallet dir: only one worker polls the task
// queue at a time).
func (h *harness) stopMainWorker(t *testing.T) {
	t.Helper()
	if h.main != nil {
		h.main.stop(t)
		h.main = nil
	}
}

// start starts escrow id, failing the test on error.
func (h *harness) start(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.sc.Start(ctx, id); err != nil {
		t.Fatalf("chaos: start escrow %s: %v", id, err)
	}
}

// startStaggered starts ids[0] now and each other id at a random offset in
// [0, within) on its own goroutine; the returned function waits for all
// starts and fails the test if one failed.
func (h *harness) startStaggered(t *testing.T, ids []string, within time.Duration) func() {
	t.Helper()
	h.start(t, ids[0])
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for _, id := range ids[1:] {
		off := time.Duration(0)
		if within > 0 {
			off = time.Duration(h.rng.Int64N(int64(within)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(off)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := h.sc.Start(ctx, id); err != nil {
				errs <- fmt.Errorf("start escrow %s: %w", id, err)
			}
		}()
	}
	return func() {
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("chaos: %v", err)
		}
	}
}

// state returns escrow id's state as the status query reports it, with the
// exchange round spelled out ("EXCHANGING_2"), or "?" without an answer.
func (h *harness) state(id string) string {
	// Longer than starter.QueryTimeout, so that without a worker the
	// status still comes from the search attribute.
	ctx, cancel := context.WithTimeout(context.Background(), starter.QueryTimeout+5*time.Second)
	defer cancel()
	st, err := h.sc.Status(ctx, id)
	if err != nil {
		return "?"
	}
	return describeState(st)
}

// statusOf returns escrow id's status.
func (h *harness) statusOf(id string) (escrow.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), starter.QueryTimeout+5*time.Second)
	defer cancel()
	return h.sc.Status(ctx, id)
}

func describeState(st escrow.Status) string {
	if st.State == escrow.StateExchanging {
		r := escrow.RoundExchange1
		for _, rs := range st.Roles {
			if rs.Round == escrow.RoundExchange2 {
				r = escrow.RoundExchange2
			}
		}
		return string(r)
	}
	if st.State == escrow.StateFailed && st.ReasonType != "" {
		return "FAILED"
	}
	return string(st.State)
}

// states returns the states of ids, in order.
func (h *harness) states(ids []string) []string {
	out := make([]string, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h.state(id)
		}()
	}
	wg.Wait()
	return out
}

// waitAnyState polls until one of ids is in one of states and returns its
// index and the states of all; after timeout it returns -1 and the states.
func (h *harness) waitAnyState(ids []string, states []string, timeout time.Duration) (int, []string) {
	deadline := time.Now().Add(timeout)
	for {
		cur := h.states(ids)
		for i, s := range cur {
			for _, want := range states {
				if strings.HasPrefix(s, want) {
					return i, cur
				}
			}
		}
		done := true
		for _, s := range cur {
			done = done && (s == string(escrow.StateCompleted) || s == string(escrow.StateFailed))
		}
		if done || time.Now().After(deadline) {
			return -1, cur
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// await waits for every escrow of ids to end (at most waitTimeout from
// now), verifies the wallets of those that completed (from walletDir) and
// terminates those still running (stuck), so later trials start clean.
func (h *harness) await(t *testing.T, ids []string, walletDir string) []outcome {
	t.Helper()
	deadline := time.Now().Add(h.cfg.waitTimeout)
	outs := make([]outcome, len(ids))
	results := make([]*escrow.SetupResult, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := outcome{id: id}
			for {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				res, err := h.sc.Wait(ctx, id)
				cancel()
				var failed *starter.EscrowFailedError
				switch {
				case err == nil:
					o.completed, results[i] = true, res
				case errors.As(err, &failed):
					o.failType = failed.Type
				case time.Now().After(deadline):
					o.stuck = true
				default:
					// A connection error (the Temporal server restarting):
					// ask again.
					time.Sleep(time.Second)
					continue
				}
				break
			}
			outs[i] = o
		}()
	}
	wg.Wait()
	for i := range outs {
		o := &outs[i]
		switch {
		case o.stuck:
			o.lastState = h.state(o.id)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := h.tc.TerminateWorkflow(ctx, escrow.WorkflowID(o.id), "", "chaos: stuck past the deadline")
			cancel()
			if err != nil {
				t.Logf("chaos: terminate stuck escrow %s: %v", o.id, err)
			}
		case o.completed:
			res := results[i]
			for _, r := range res.Rounds {
				if r.Recovered || r.Attempts > 1 {
					o.recovered++
				}
			}
			for _, role := range escrow.Roles {
				o.finals = append(o.finals, res.Wallets[role].Wallet)
			}
			o.verifyErr = h.verifier.verify(walletDir, res)
		}
	}
	// One fresh verifier wallet-rpc per trial.
	h.verifier.stop()
	return outs
}

// check runs the checks every trial ends with, on the wallet dir it used and
// the worker that runs over it now (nil: none): every committed snapshot
// is unchanged and verifies, no temp file is left, no wallet-rpc process
// over the dir is not owned by w.
func (h *harness) check(tr *trialResult, dir string, w *workerProc) {
	h.snaps.scan(dir, true)
	if temps := tempFiles(dir); len(temps) > 0 {
		tr.temps += len(temps)
		tr.notes = append(tr.notes, fmt.Sprintf("temp files left: %v", temps))
	}
	if orph := orphans(dir, w, 15*time.Second); len(orph) > 0 {
		tr.orphans += len(orph)
		tr.notes = append(tr.notes, fmt.Sprintf("orphan wallet-rpc pids: %v", orph))
	}
	for _, o := range tr.outcomes {
		if o.pastBackup {
			continue
		}
		if o.verifyErr != nil {
			tr.notes = append(tr.notes, fmt.Sprintf("%s: wallets do not verify: %v", o.id, o.verifyErr))
		}
		if !o.stuck {
			for _, f := range strayFiles(dir, o) {
				tr.strays = append(tr.strays, fmt.Sprintf("trial %d: %s", tr.n, f))
			}
		}
	}
}

// strayFiles lists the files of ended escrow o in dir that should not be
// there: for a completed escrow anything but its claim and its three final
// snapshots (what FinishEscrow keeps); for a failed one anything but its
// claim, parking note and wallet files (which are parked, never deleted).
func strayFiles(dir string, o outcome) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	prefix := o.id + "."
	wallets := map[string]bool{}
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), walletstore.KeysSuffix); ok && strings.HasPrefix(n, prefix) {
			wallets[n] = true
		}
	}
	keep := map[string]bool{o.id + ".claim": true}
	if o.completed {
		wallets = map[string]bool{}
		for _, f := range o.finals {
			wallets[f] = true
		}
	} else {
		keep[o.id+".parked.json"] = true
	}
	for n := range wallets {
		for _, suf := range []string{walletstore.CacheSuffix, walletstore.KeysSuffix, walletstore.AddressSuffix, walletstore.ManifestSuffix} {
			keep[n+suf] = true
		}
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && !keep[e.Name()] {
			out = append(out, e.Name())
		}
	}
	return out
}

// expectCompleted records every escrow that ended FAILED as lost: kills and
// restarts must be recovered from.
func (tr *trialResult) expectCompleted() {
	for _, o := range tr.outcomes {
		if !o.completed && !o.stuck {
			tr.lost = append(tr.lost, fmt.Sprintf("trial %d %s: %s ended %s", tr.n, tr.kind, o.id, o))
		}
	}
}

// expectType records every escrow that failed with a type other than want
// as mistyped.
func (tr *trialResult) expectType(want string) {
	for _, o := range tr.outcomes {
		if !o.completed && !o.stuck && o.failType != want {
			tr.mistyped = append(tr.mistyped, fmt.Sprintf("trial %d %s: %s ended FAILED %s, want %s", tr.n, tr.kind, o.id, o.failType, want))
		}
	}
}

// ---------------------------------------------------------------------------
// The table.

// figures are the run's totals.
type figures struct {
	planned, trials, notRun, problems      int
	retried                                int
	escrows, completed, verified, failed   int
	failedTyped, failedUntyped, unverified int
	pastBackup                             int // restore drills: completed after the backup
	stuck, snapshotsChanged, temps         int
	orphans, recovered, snapshotsSeen      int
	lost, mistyped, strays, startFailures  []string
	duplicated                             []string
	byType                                 map[string]int
	killPoints                             map[string]int
}

func totals(rows []*trialResult, planned int) figures {
	f := figures{planned: planned, byType: map[string]int{}, killPoints: map[string]int{}}
	for _, tr := range rows {
		if tr.notRun != "" {
			f.notRun++
			continue
		}
		if tr.superseded {
			f.retried++
		} else {
			f.trials++
		}
		if tr.problem != "" {
			f.problems++
		}
		f.temps += tr.temps
		f.orphans += tr.orphans
		f.recovered += tr.recovered()
		f.lost = append(f.lost, tr.lost...)
		f.duplicated = append(f.duplicated, tr.duplicated...)
		f.mistyped = append(f.mistyped, tr.mistyped...)
		f.strays = append(f.strays, tr.strays...)
		for _, sf := range tr.startFailures {
			f.startFailures = append(f.startFailures, fmt.Sprintf("trial %d: %s", tr.n, sf))
		}
		if tr.kind == faultWorkerKill {
			for _, s := range strings.Fields(tr.when) {
				_, st, _ := strings.Cut(s, ":")
				f.killPoints[st]++
			}
		}
		for _, o := range tr.outcomes {
			f.escrows++
			switch {
			case o.stuck:
				f.stuck++
			case o.pastBackup:
				f.completed++
				f.pastBackup++
			case o.completed:
				f.completed++
				if o.verifyErr == nil {
					f.verified++
				} else {
					f.unverified++
				}
			default:
				f.failed++
				f.byType[o.failType]++
				if o.untypedFailure() {
					f.failedUntyped++
				} else {
					f.failedTyped++
				}
			}
		}
	}
	return f
}

// failures lists the figures that must be zero and are not, and trials
// not accounted for.
func (f figures) failures() []string {
	var out []string
	add := func(n int, what string) {
		if n != 0 {
			out = append(out, fmt.Sprintf("%s: %d (must be 0)", what, n))
		}
	}
	add(f.stuck, "stuck escrows")
	add(f.snapshotsChanged, "committed snapshots changed")
	add(f.temps, "temp files left")
	add(f.orphans, "orphan wallet-rpc processes")
	add(f.unverified, "completed escrows whose wallets do not verify")
	add(f.failedUntyped, "escrows failed without a type")
	add(f.problems, "trials whose fault could not be injected")
	add(len(f.lost), "escrows lost to a fault they must recover from")
	add(len(f.duplicated), "escrows run more than once")
	add(len(f.mistyped), "disk/dir faults reported under another type")
	add(len(f.strays), "stray files of ended escrows")
	add(len(f.startFailures), "worker starts that failed")
	if f.trials+f.notRun != f.planned {
		out = append(out, fmt.Sprintf("trials accounted for: %d of %d", f.trials+f.notRun, f.planned))
	}
	return out
}

// renderReport renders the table of trials and the totals as Markdown
// (readable as plain text).
func renderReport(rows []*trialResult, f figures, cfg config, elapsed time.Duration) string {
	var b strings.Builder
	header := []string{"#", "fault", "when (state at fault)", "escrows", "outcome per escrow", "recovered steps", "time"}
	var table [][]string
	for _, tr := range rows {
		var outs []string
		for _, o := range tr.outcomes {
			outs = append(outs, o.String())
		}
		outcome := strings.Join(outs, "; ")
		if tr.notRun != "" {
			outcome = "NOT RUN: " + tr.notRun
		}
		if tr.problem != "" {
			outcome += " (PROBLEM: " + tr.problem + ")"
		}
		if tr.superseded {
			outcome += " (FAULT DID NOT LAND, retried: " + tr.missed + ")"
		}
		table = append(table, []string{strconv.Itoa(tr.n) + tr.attemptTag(), string(tr.kind), tr.when, strconv.Itoa(len(tr.outcomes)),
			outcome, strconv.Itoa(tr.recovered()), tr.dur.Round(time.Second).String()})
	}
	fmt.Fprintf(&b, "\nchaos run: seed %d, plan %s, %s\n\n", cfg.seed, planString(cfg), elapsed.Round(time.Second))
	writeMarkdown(&b, header, table)
	fmt.Fprintln(&b)
	var types []string
	for typ, n := range f.byType {
		types = append(types, fmt.Sprintf("%s %d", typ, n))
	}
	sort.Strings(types)
	var points []string
	for _, s := range []string{"QUEUED", "CLAIMED", "CREATING", "PREPARING", "MAKING", "EXCHANGING_1", "EXCHANGING_2", "VERIFYING", "COMPLETED", "FAILED", "?"} {
		if n := f.killPoints[s]; n > 0 {
			points = append(points, fmt.Sprintf("%s %d", s, n))
		}
	}
	tot := [][]string{
		{"trials run (planned)", fmt.Sprintf("%d (%d)", f.trials, f.planned)},
		{"trials not run", strconv.Itoa(f.notRun)},
		{"attempts retried because the fault did not land", strconv.Itoa(f.retried)},
		{"escrows", strconv.Itoa(f.escrows)},
		{"completed, wallets verified", strconv.Itoa(f.verified)},
		{"failed with a type", fmt.Sprintf("%d (%s)", f.failedTyped, strings.Join(types, ", "))},
		{"recovered steps (resumed from a snapshot or retried)", strconv.Itoa(f.recovered)},
		{"escrow states at worker kills", strings.Join(points, ", ")},
		{"committed snapshots seen and checked", strconv.Itoa(f.snapshotsSeen)},
		{"stuck (must be 0)", strconv.Itoa(f.stuck)},
		{"snapshots changed (must be 0)", strconv.Itoa(f.snapshotsChanged)},
		{"temp files left (must be 0)", strconv.Itoa(f.temps)},
		{"orphan wallet-rpc processes (must be 0)", strconv.Itoa(f.orphans)},
		{"completed but not verified (must be 0)", strconv.Itoa(f.unverified)},
		{"restore drills: completed after the backup, not in it", strconv.Itoa(f.pastBackup)},
		{"failed without a type (must be 0)", strconv.Itoa(f.failedUntyped)},
		{"lost after a kill or restart (must be 0)", strconv.Itoa(len(f.lost))},
		{"run more than once after a Temporal crash (must be 0)", strconv.Itoa(len(f.duplicated))},
		{"disk/dir faults reported under another type (must be 0)", strconv.Itoa(len(f.mistyped))},
		{"stray files of ended escrows (must be 0)", strconv.Itoa(len(f.strays))},
		{"worker starts that failed and were retried (must be 0)", strconv.Itoa(len(f.startFailures))},
	}
	writeMarkdown(&b, []string{"total", "value"}, tot)
	for _, u := range f.lost {
		fmt.Fprintln(&b, "lost: "+u)
	}
	for _, u := range f.duplicated {
		fmt.Fprintln(&b, "duplicated: "+u)
	}
	for _, u := range f.mistyped {
		fmt.Fprintln(&b, "mistyped: "+u)
	}
	for _, u := range f.strays {
		fmt.Fprintln(&b, "stray: "+u)
	}
	for _, u := range f.startFailures {
		fmt.Fprintln(&b, "worker start failed: "+u)
	}
	var notes []string
	for _, tr := range rows {
		for _, n := range tr.notes {
			notes = append(notes, fmt.Sprintf("trial %d: %s", tr.n, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(&b, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(&b, "- "+n)
		}
	}
	return b.String()
}

func writeMarkdown(b *strings.Builder, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(b, " %-*s |", width[i], c)
		}
		b.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}
