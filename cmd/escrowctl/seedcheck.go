package main

// The seed-check command runs the old design's testing guide (Tests 1-4 and
// its success criteria) against escrowflow on a running stack: Temporal, a
// worker with its default pool of 9 wallet-rpc processes, and that worker's
// log. `make seed-check` (scripts/seed-check.sh) starts the stack and runs it.
//
// The command only measures; evaluateSeedCheck turns the measurements into
// PASS/FAIL rows, and the log and source scanners are plain functions too.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
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

func seedCheckFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	workerLog := fs.String("worker-log", ".escrowflow/worker.log", "the running worker's log `file` (console or JSON format)")
	repo := fs.String("repo", "", "repository `root` whose Go code is scanned (default: the go.mod at or above the working directory)")
	prefix := fs.String("prefix", "seed", "escrow id `prefix`")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this `duration`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("seed-check: unexpected arguments %q", args)
		}
		root, err := repoRoot(*repo)
		if err != nil {
			return err
		}
		single, parallel, err := seedIDs(*prefix, a.now(), randomTag())
		if err != nil {
			return usagef("seed-check: %v", err)
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		sc := &seedCheck{app: a, c: c, workerLog: *workerLog, root: root}
		return sc.run(ctx, single, parallel)
	}
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
	*app
	c         escrows
	workerLog string
	root      string
}

func (s *seedCheck) progress(format string, args ...any) {
	fmt.Fprintf(s.stderr, "seed-check: %s\n", fmt.Sprintf(format, args...))
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
	if s.json {
		runs := append([]seedRun{in.Single}, in.Parallel...)
		rep := seedReport{Rows: rows, Passed: failed == 0}
		for _, r := range runs {
			o := outcome{EscrowID: r.EscrowID, WorkflowID: escrow.WorkflowID(r.EscrowID)}
			o.setResult(r.Result, r.Err)
			rep.Escrows = append(rep.Escrows, seedEscrow{outcome: o, WallMs: r.wall().Milliseconds()})
		}
		if err := printJSON(s.stdout, rep); err != nil {
			return err
		}
	} else {
		printSeedRows(s.stdout, rows)
	}
	if failed > 0 {
		return fmt.Errorf("seed-check: %d of %d criteria failed", failed, countCriteria(rows))
	}
	return nil
}

// seedReport is seed-check's JSON output.
type seedReport struct {
	Escrows []seedEscrow `json:"escrows"`
	Rows    []seedRow    `json:"criteria"`
	Passed  bool         `json:"passed"`
}

type seedEscrow struct {
	outcome
	// WallMs is escrowctl's clock from the Start call to the result.
	WallMs int64 `json:"wallMs"`
}

// runAll starts the escrows at once and waits for each.
func (s *seedCheck) runAll(ctx context.Context, ids []string) []seedRun {
	runs := make([]seedRun, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			r := seedRun{EscrowID: id, Started: s.now()}
			if _, err := s.c.Start(ctx, id); err != nil {
				r.Err = err
			} else {
				r.Result, r.Err = s.c.Wait(ctx, id)
			}
			r.Finished = s.now()
			runs[i] = r
		})
	}
	wg.Wait()
	return runs
}

func describeRun(r seedRun) string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%s %s after %s: %v", r.EscrowID, escrow.StateFailed, wall(r.wall()), r.Err)
	case !r.Result.Confirmed():
		return fmt.Sprintf("%s %s after %s, address NOT confirmed by every role", r.EscrowID, escrow.StateCompleted, wall(r.wall()))
	}
	return fmt.Sprintf("%s %s after %s, %s", r.EscrowID, escrow.StateCompleted, wall(r.wall()), r.Result.MultisigAddress)
}

// --- evaluation --------------------------------------------------------------

// verdict is a row's outcome.
type verdict string

const (
	verdictPass verdict = "PASS"
	verdictFail verdict = "FAIL"
	// verdictInfo marks a figure shown for comparison, not a criterion.
	verdictInfo verdict = "INFO"
)

// seedRow is one line of the check's report.
type seedRow struct {
	Test      string  `json:"test"`
	Criterion string  `json:"criterion"`
	Measured  string  `json:"measured"`
	Verdict   verdict `json:"verdict"`
}

// seedInput is what the check measured.
type seedInput struct {
	// OthersRunning is the number of escrows that ran when Test 1 started.
	OthersRunning int
	Single        seedRun
	Parallel      []seedRun
	Log           workerLogScan
	LogErr        error
	GoFiles       int
	Plain         []plainCopy
	ScanErr       error
}

func verdictOf(ok bool) verdict {
	if ok {
		return verdictPass
	}
	return verdictFail
}

func countCriteria(rows []seedRow) int {
	n := 0
	for _, r := range rows {
		if r.Verdict != verdictInfo {
			n++
		}
	}
	return n
}

// evaluateSeedCheck turns the measurements into the report's rows: the old
// design's success criteria with the figures measured here.
func evaluateSeedCheck(in seedInput) []seedRow {
	var rows []seedRow
	add := func(test, criterion, measured string, v verdict) {
		rows = append(rows, seedRow{Test: test, Criterion: criterion, Measured: measured, Verdict: v})
	}

	// Test 1: single escrow timing.
	single := in.Single
	crit1 := fmt.Sprintf("single escrow COMPLETED, address confirmed by all roles, in < %s", seconds(seedSingleLimit))
	switch {
	case single.Err != nil:
		add("1", crit1, fmt.Sprintf("%s failed after %s: %v", single.EscrowID, seconds(single.wall()), single.Err), verdictFail)
	case !single.ok():
		add("1", crit1, fmt.Sprintf("%s: address not confirmed by every role", single.EscrowID), verdictFail)
	default:
		m := fmt.Sprintf("%s wall = %.2f × %s", seconds(single.wall()), ratio(single.wall(), seedSingleLimit), seconds(seedSingleLimit))
		if s, ok := escrowSpan(roundSpans(single.Result.Rounds)); ok {
			m += fmt.Sprintf(" (rounds %s)", seconds(s.duration()))
		}
		if in.OthersRunning > 0 {
			m += fmt.Sprintf("; %d other escrows were running", in.OthersRunning)
		}
		add("1", crit1, m, verdictOf(single.wall() < seedSingleLimit))
	}

	// Test 2: parallel escrows.
	par := in.Parallel
	okCount := 0
	var spans []span
	var failures []string
	for _, r := range par {
		if r.ok() {
			okCount++
		} else if r.Err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", r.EscrowID, r.Err))
		} else {
			failures = append(failures, r.EscrowID+": not confirmed")
		}
		if r.Result != nil {
			if s, ok := escrowSpan(roundSpans(r.Result.Rounds)); ok {
				spans = append(spans, s)
			}
		}
	}
	m := fmt.Sprintf("%d of %d", okCount, len(par))
	if len(failures) > 0 {
		m += "; " + strings.Join(failures, "; ")
	}
	add("2", fmt.Sprintf("%d escrows at once all COMPLETED, address confirmed by all roles", seedParallel), m,
		verdictOf(len(par) == seedParallel && okCount == len(par)))

	critOverlap := "the setups overlap in time (max start < min finish)"
	if len(spans) < 2 || len(spans) != len(par) {
		add("2", critOverlap, fmt.Sprintf("round timings of %d of %d escrows", len(spans), len(par)), verdictFail)
	} else {
		common, ok := overlap(spans)
		first := spans[0].Start
		for _, s := range spans {
			if s.Start.Before(first) {
				first = s.Start
			}
		}
		rel := "<"
		if !ok {
			rel = "is not before"
		}
		add("2", critOverlap, fmt.Sprintf("max start +%s %s min finish +%s", seconds(common.Start.Sub(first)), rel, seconds(common.End.Sub(first))),
			verdictOf(ok))
	}

	if len(par) > 0 {
		batch := runsSpan(par)
		m := fmt.Sprintf("%s for %d; old design: ~%s sequential, claimed ~%s (%.1fx)",
			seconds(batch), len(par), seconds(seedOldSequential), seconds(seedOldParallel), seedOldSpeedup)
		if single.ok() && batch > 0 {
			seq := time.Duration(len(par)) * single.wall()
			m += fmt.Sprintf("; ours %.1fx vs %d × single (%s)", ratio(seq, batch), len(par), seconds(seq))
		}
		add("2", "batch wall time (first start to last result)", m, verdictInfo)
	}

	// Test 3: lease contention.
	var waits []int64
	for _, r := range par {
		if r.Result != nil {
			for _, t := range r.Result.Rounds {
				waits = append(waits, t.LeaseWaitMs)
			}
		}
	}
	crit3 := fmt.Sprintf("no lease wait over %d ms (%d escrows at once, pool of %d)", seedLeaseLimit.Milliseconds(), seedParallel, seedPoolSize)
	if len(waits) == 0 {
		add("3", crit3, "no round timings", verdictFail)
	} else {
		maxWait, p95 := maxAndP95(waits)
		pool := "pool size not in the worker log"
		if in.Log.PoolSize > 0 {
			pool = fmt.Sprintf("worker pool %d", in.Log.PoolSize)
		}
		add("3", crit3, fmt.Sprintf("max %d ms, p95 %d ms over %d role steps; %s", maxWait, p95, len(waits), pool),
			verdictOf(maxWait <= seedLeaseLimit.Milliseconds()))
	}

	// Test 4: atomic file operations.
	crit4a := `every "atomic copy" succeeded (worker log, this check's escrows)`
	crit4b := `at least one "atomic copy" per committed step`
	if in.LogErr != nil {
		add("4", crit4a, in.LogErr.Error(), verdictFail)
		add("4", crit4b, in.LogErr.Error(), verdictFail)
	} else {
		lg := in.Log
		m := fmt.Sprintf(`%d "atomic copy", %d "atomic copy failed"`, lg.Copies, lg.Failed)
		if len(lg.FailedLines) > 0 {
			m += ": " + strings.Join(lg.FailedLines, "; ")
		}
		add("4", crit4a, m, verdictOf(lg.Copies > 0 && lg.Failed == 0))

		steps, missing := committedSteps(append([]seedRun{single}, par...)), []string(nil)
		for _, k := range steps {
			if lg.PerStep[k] == 0 {
				missing = append(missing, k.String())
			}
		}
		m = fmt.Sprintf("%d of %d committed steps (%s × 3 roles × %d escrows)",
			len(steps)-len(missing), len(steps), roundNames(committingRounds), len(par)+1)
		if len(missing) > 0 {
			m += "; none for " + strings.Join(firstN(missing, 5), ", ")
		}
		add("4", crit4b, m, verdictOf(len(steps) > 0 && len(missing) == 0))
	}

	// The old design's "no std::fs::copy calls (only atomic)".
	crit5 := "no plain copy of a wallet file: no io.Copy/os.WriteFile/os.Rename/os.Link outside walletstore"
	if in.ScanErr != nil {
		add("code", crit5, in.ScanErr.Error(), verdictFail)
	} else {
		var plain, exempt []string
		for _, p := range in.Plain {
			if p.Exempt {
				exempt = append(exempt, p.String())
			} else {
				plain = append(plain, p.String())
			}
		}
		m := fmt.Sprintf("%s in %d non-test .go files outside walletstore", plural(len(plain), "call"), in.GoFiles)
		if len(plain) > 0 {
			m += ": " + strings.Join(firstN(plain, 5), ", ")
		}
		if len(exempt) > 0 {
			m += fmt.Sprintf("; %d marked %q: %s", len(exempt), notWalletFileMarker, strings.Join(firstN(exempt, 5), ", "))
		}
		add("code", crit5, m, verdictOf(in.GoFiles > 0 && len(plain) == 0))
	}
	return rows
}

// runsSpan is the earliest Start call to the latest result.
func runsSpan(runs []seedRun) time.Duration {
	first, last := runs[0].Started, runs[0].Finished
	for _, r := range runs[1:] {
		if r.Started.Before(first) {
			first = r.Started
		}
		if r.Finished.After(last) {
			last = r.Finished
		}
	}
	return last.Sub(first)
}

// maxAndP95 returns the largest value and the 95th percentile (nearest
// rank) of vs, which must not be empty.
func maxAndP95(vs []int64) (maxV, p95 int64) {
	s := append([]int64(nil), vs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(0.95 * float64(len(s))))
	return s[len(s)-1], s[max(rank, 1)-1]
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// seconds formats d as seconds to two decimals without trailing zeros:
// "12.34 s", "35 s".
func seconds(d time.Duration) string {
	v := strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
	if strings.Contains(v, ".") {
		v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
	}
	return v + " s"
}

// plural returns "1 call", "2 calls".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
}

func roundNames(rs []escrow.Round) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = string(r)
	}
	return strings.Join(names, "/")
}

// stepKey names one role's step of one escrow.
type stepKey struct {
	EscrowID string
	Role     string
	Round    string
}

func (k stepKey) String() string { return k.EscrowID + "/" + k.Role + "/" + k.Round }

// committedSteps lists the steps of the completed runs that commit a
// snapshot: every role's committing rounds.
func committedSteps(runs []seedRun) []stepKey {
	var out []stepKey
	for _, r := range runs {
		if r.Result == nil {
			continue
		}
		for _, round := range committingRounds {
			for _, role := range escrow.Roles {
				out = append(out, stepKey{EscrowID: r.EscrowID, Role: string(role), Round: string(round)})
			}
		}
	}
	return out
}

// printSeedRows prints each row as its verdict, test and criterion, with
// the measured figure on the next line.
func printSeedRows(w io.Writer, rows []seedRow) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The old design's success criteria, measured on escrowflow:")
	failed := 0
	for _, r := range rows {
		test := "Test " + r.Test
		if _, err := strconv.Atoi(r.Test); err != nil {
			test = r.Test
		}
		fmt.Fprintf(w, "  %-4s  %-6s  %s\n", r.Verdict, test, r.Criterion)
		fmt.Fprintf(w, "  %-4s  %-6s  measured: %s\n", "", "", r.Measured)
		if r.Verdict == verdictFail {
			failed++
		}
	}
	if failed == 0 {
		fmt.Fprintf(w, "seed-check: PASS, all %d criteria met\n", countCriteria(rows))
	} else {
		fmt.Fprintf(w, "seed-check: FAIL, %d of %d criteria not met\n", failed, countCriteria(rows))
	}
}

// --- worker log --------------------------------------------------------------

// workerLogScan is what the worker log says about the check.
type workerLogScan struct {
	// PoolSize is pool_size of the last "configuration" line (0 if none).
	PoolSize int
	// Copies and Failed count "atomic copy" and "atomic copy failed" lines
	// of the check's escrows.
	Copies, Failed int
	// PerStep counts "atomic copy" lines per escrow, role and round.
	PerStep map[stepKey]int
	// FailedLines describes the first failures.
	FailedLines []string
}

// readWorkerLog scans the log file at path (see scanWorkerLog). A log
// shorter than from was replaced meanwhile and is read from its start.
func readWorkerLog(path string, from int64, ids map[string]bool) (workerLogScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return workerLogScan{}, fmt.Errorf("worker log: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < from {
		from = 0
	}
	return scanWorkerLog(f, from, ids)
}

// scanWorkerLog reads a worker log in zap's console or JSON format. It takes
// the pool size from any "configuration" line and counts the "atomic copy"
// and "atomic copy failed" lines of the escrows in ids that start at byte
// from or later.
func scanWorkerLog(r io.Reader, from int64, ids map[string]bool) (workerLogScan, error) {
	out := workerLogScan{PerStep: map[stepKey]int{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var pos int64
	for {
		line, err := br.ReadBytes('\n')
		start := pos
		pos += int64(len(line))
		if len(line) > 0 {
			msg, fields, ok := parseLogLine(line)
			switch {
			case !ok:
			case msg == "configuration":
				if n, ok := fields["pool_size"].(float64); ok {
					out.PoolSize = int(n)
				}
			case start < from:
			case msg == "atomic copy" || msg == "atomic copy failed":
				id, _ := fields["escrow_id"].(string)
				if !ids[id] {
					break
				}
				role, _ := fields["role"].(string)
				round, _ := fields["round"].(string)
				if msg == "atomic copy" {
					out.Copies++
					out.PerStep[stepKey{EscrowID: id, Role: role, Round: round}]++
					break
				}
				out.Failed++
				if len(out.FailedLines) < 3 {
					e, _ := fields["error"].(string)
					out.FailedLines = append(out.FailedLines, fmt.Sprintf("%s/%s/%s: %s", id, role, round, e))
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("worker log: %w", err)
		}
	}
}

// parseLogLine splits a zap log line into its message and fields. JSON
// lines are one object with "msg"; console lines are tab-separated: time,
// level, [logger,] caller, message and, when there are fields, a JSON
// object. ok is false for anything else (e.g. a continuation line).
func parseLogLine(line []byte) (msg string, fields map[string]any, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if bytes.HasPrefix(line, []byte("{")) {
		if err := json.Unmarshal(line, &fields); err != nil {
			return "", nil, false
		}
		msg, ok = fields["msg"].(string)
		return msg, fields, ok
	}
	parts := strings.Split(string(line), "\t")
	if len(parts) < 4 {
		return "", nil, false
	}
	if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
		return "", nil, false
	}
	last := parts[len(parts)-1]
	if strings.HasPrefix(last, "{") && json.Unmarshal([]byte(last), &fields) == nil {
		return parts[len(parts)-2], fields, true
	}
	return last, map[string]any{}, true
}

// --- source scan ---------------------------------------------------------------

// plainCopy is a call that writes or moves a file outside walletstore.
type plainCopy struct {
	File string // relative to the repository root
	Line int
	Call string // "os.WriteFile", …
	// Exempt is set when a comment with notWalletFileMarker on the call's
	// line or the line above says the file written is no wallet file.
	Exempt bool
}

// notWalletFileMarker, in a comment on a call's line or the line above,
// exempts it from the plain-copy criterion: the code states that the file
// it writes is no wallet file (a report, an export).
const notWalletFileMarker = "seed-check: not a wallet file"

func (p plainCopy) String() string { return fmt.Sprintf("%s:%d %s", p.File, p.Line, p.Call) }

// plainCopyCalls are the calls that copy or replace a file without
// walletstore's temp file, fsync, link-or-rename and manifest.
var plainCopyCalls = map[string]map[string]bool{
	"io": {"Copy": true},
	"os": {"WriteFile": true, "Rename": true, "Link": true},
}

// walletstoreDir is the one package allowed to make those calls.
const walletstoreDir = "walletstore"

// skipDirs are folders that hold no project code.
var skipDirs = map[string]bool{"bin": true, "testnet-wallets": true, "vendor": true, "node_modules": true, "screenshots": true, "testdata": true}

// scanPlainCopies parses every non-test .go file under root outside
// walletstore and returns how many it parsed and the plain-copy calls in
// them.
func scanPlainCopies(root string) (files int, found []plainCopy, err error) {
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || skipDirs[d.Name()]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".go") || strings.HasSuffix(d.Name(), "_test.go") {
			return nil
		}
		if filepath.ToSlash(filepath.Dir(rel)) == walletstoreDir {
			return nil
		}
		files++
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		calls, err := plainCopiesIn(fset, rel, src)
		found = append(found, calls...)
		return err
	})
	if err != nil {
		return files, found, fmt.Errorf("scan Go code: %w", err)
	}
	return files, found, nil
}

// plainCopiesIn returns the plain-copy calls of one Go file: io.Copy (but
// io.Copy(io.Discard, …), which drains a reader), os.WriteFile, os.Rename
// and os.Link, however io and os are imported; those marked with
// notWalletFileMarker are returned as Exempt.
func plainCopiesIn(fset *token.FileSet, name string, src []byte) ([]plainCopy, error) {
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	local := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || plainCopyCalls[p] == nil {
			continue
		}
		n := p
		if imp.Name != nil {
			n = imp.Name.Name
		}
		if n != "_" && n != "." {
			local[n] = p
		}
	}
	pkgFunc := func(e ast.Expr) (pkg, fn string) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", ""
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok {
			return "", ""
		}
		return local[id.Name], sel.Sel.Name
	}
	marked := map[int]bool{}
	for _, g := range f.Comments {
		for _, c := range g.List {
			if strings.Contains(c.Text, notWalletFileMarker) {
				marked[fset.Position(c.End()).Line] = true
			}
		}
	}
	var out []plainCopy
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		pkg, fn := pkgFunc(call.Fun)
		if !plainCopyCalls[pkg][fn] {
			return true
		}
		if pkg == "io" && len(call.Args) > 0 {
			if p, v := pkgFunc(call.Args[0]); p == "io" && v == "Discard" {
				return true
			}
		}
		line := fset.Position(call.Pos()).Line
		out = append(out, plainCopy{File: name, Line: line, Call: pkg + "." + fn, Exempt: marked[line] || marked[line-1]})
		return true
	})
	return out, nil
}
