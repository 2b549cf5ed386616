package seedcheck

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
)

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
		if s, ok := instrument.EscrowSpan(instrument.RoundSpans(single.Result.Rounds)); ok {
			m += fmt.Sprintf(" (rounds %s)", seconds(s.Duration()))
		}
		if in.OthersRunning > 0 {
			m += fmt.Sprintf("; %d other escrows were running", in.OthersRunning)
		}
		add("1", crit1, m, verdictOf(single.wall() < seedSingleLimit))
	}

	// Test 2: parallel escrows.
	par := in.Parallel
	okCount := 0
	var spans []instrument.Span
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
			if s, ok := instrument.EscrowSpan(instrument.RoundSpans(r.Result.Rounds)); ok {
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
		common, ok := instrument.CommonSpan(spans)
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
	crit5 := "no plain copy of a wallet file: no io.Copy/os.WriteFile/os.Rename/os.Link/os.Create, os.OpenFile for writing or exec of cp outside walletstore"
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
