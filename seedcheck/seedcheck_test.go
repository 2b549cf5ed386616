package seedcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
)

// seedRunOK is a confirmed run of id taking wallMs on escrowctl's clock,
// whose rounds start at +startMs.
func seedRunOK(id string, startMs, wallMs int) seedRun {
	return seedRun{EscrowID: id, Result: okResult(id, startMs), Started: ms(startMs), Finished: ms(startMs + wallMs)}
}

// allCopies is a log scan with one "atomic copy" per committed step of runs.
func allCopies(runs ...seedRun) workerLogScan {
	lg := workerLogScan{PoolSize: 9, PerStep: map[stepKey]int{}}
	for _, k := range committedSteps(runs) {
		lg.PerStep[k]++
		lg.Copies++
	}
	return lg
}

// goodSeedInput is a check in which every criterion is met.
func goodSeedInput() seedInput {
	single := seedRunOK("s", 0, 12_000)
	par := []seedRun{seedRunOK("p1", 20_000, 15_000), seedRunOK("p2", 20_050, 15_100), seedRunOK("p3", 20_100, 14_900)}
	return seedInput{Single: single, Parallel: par, Log: allCopies(append([]seedRun{single}, par...)...), GoFiles: 30}
}

func verdicts(rows []seedRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s:%s ", r.Test, r.Verdict)
	}
	return strings.TrimSpace(b.String())
}

func TestEvaluateSeedCheck(t *testing.T) {
	const allPass = "1:PASS 2:PASS 2:PASS 2:INFO 3:PASS 4:PASS 4:PASS code:PASS"
	tests := []struct {
		name   string
		change func(in *seedInput)
		want   string
		// wantMeasured are substrings of the rows' measured figures, by row.
		wantMeasured map[int]string
	}{
		{
			name: "all met", change: func(*seedInput) {}, want: allPass,
			wantMeasured: map[int]string{
				0: "12 s wall = 0.34 × 35 s (rounds 9.2 s)",
				1: "3 of 3",
				2: "max start +0.1 s < min finish +9.2 s",
				3: "15.15 s for 3; old design: ~100 s sequential, claimed ~35 s (2.8x); ours 2.4x vs 3 × single (36 s)",
				4: "max 0 ms, p95 0 ms over 54 role steps; worker pool 9",
				5: `48 "atomic copy", 0 "atomic copy failed"`,
				6: "48 of 48 committed steps (CREATING/MAKING/EXCHANGING_1/EXCHANGING_2 × 3 roles × 4 escrows)",
				7: "0 calls in 30 non-test .go files outside walletstore",
			},
		},
		{
			name: "single escrow too slow",
			change: func(in *seedInput) {
				in.Single.Finished = in.Single.Started.Add(35 * time.Second)
				in.OthersRunning = 2
			},
			want:         strings.Replace(allPass, "1:PASS", "1:FAIL", 1),
			wantMeasured: map[int]string{0: "35 s wall = 1.00 × 35 s (rounds 9.2 s); 2 other escrows were running"},
		},
		{
			name: "single escrow failed",
			change: func(in *seedInput) {
				in.Single.Result, in.Single.Err = nil, errors.New("boom")
				in.Log = allCopies(in.Parallel...)
			},
			want:         strings.Replace(allPass, "1:PASS", "1:FAIL", 1),
			wantMeasured: map[int]string{0: "s failed after 12 s: boom", 3: "15.15 s for 3; old design: ~100 s sequential, claimed ~35 s (2.8x)", 6: "36 of 36"},
		},
		{
			name: "single escrow not confirmed",
			change: func(in *seedInput) {
				w := in.Single.Result.Wallets[escrow.Vendor]
				w.Address = "other"
				in.Single.Result.Wallets[escrow.Vendor] = w
			},
			want:         strings.Replace(allPass, "1:PASS", "1:FAIL", 1),
			wantMeasured: map[int]string{0: "address not confirmed by every role"},
		},
		{
			name: "a parallel escrow failed",
			change: func(in *seedInput) {
				in.Parallel[1].Result, in.Parallel[1].Err = nil, errors.New("WalletRejected")
			},
			// Two escrows' timings cannot show that all three overlapped.
			want:         "1:PASS 2:FAIL 2:FAIL 2:INFO 3:PASS 4:PASS 4:PASS code:PASS",
			wantMeasured: map[int]string{1: "2 of 3; p2: WalletRejected", 2: "round timings of 2 of 3 escrows"},
		},
		{
			name: "escrows ran one after the other",
			change: func(in *seedInput) {
				for i := range in.Parallel {
					in.Parallel[i].Result = okResult(in.Parallel[i].EscrowID, 20_000+i*10_000)
				}
			},
			want:         strings.Replace(allPass, "2:PASS 2:PASS", "2:PASS 2:FAIL", 1),
			wantMeasured: map[int]string{2: "max start +20 s is not before min finish +9.2 s"},
		},
		{
			name: "lease wait over 100 ms",
			change: func(in *seedInput) {
				in.Parallel[2].Result.Rounds[4].LeaseWaitMs = 101
				in.Parallel[0].Result.Rounds[0].LeaseWaitMs = 40
				in.Log.PoolSize = 0
			},
			want:         strings.Replace(allPass, "3:PASS", "3:FAIL", 1),
			wantMeasured: map[int]string{4: "max 101 ms, p95 0 ms over 54 role steps; pool size not in the worker log"},
		},
		{
			name: "lease wait of exactly 100 ms passes",
			change: func(in *seedInput) {
				in.Parallel[2].Result.Rounds[4].LeaseWaitMs = 100
			},
			want: allPass,
		},
		{
			name: "a failed atomic copy",
			change: func(in *seedInput) {
				in.Log.Failed = 1
				in.Log.FailedLines = []string{"p1/buyer/MAKING: disk full"}
			},
			want:         strings.Replace(allPass, "4:PASS 4:PASS", "4:FAIL 4:PASS", 1),
			wantMeasured: map[int]string{5: `48 "atomic copy", 1 "atomic copy failed": p1/buyer/MAKING: disk full`},
		},
		{
			name: "a committed step without a copy",
			change: func(in *seedInput) {
				delete(in.Log.PerStep, stepKey{EscrowID: "p2", Role: "arbiter", Round: "EXCHANGING_2"})
			},
			want:         strings.Replace(allPass, "4:PASS 4:PASS", "4:PASS 4:FAIL", 1),
			wantMeasured: map[int]string{6: "47 of 48 committed steps (CREATING/MAKING/EXCHANGING_1/EXCHANGING_2 × 3 roles × 4 escrows); none for p2/arbiter/EXCHANGING_2"},
		},
		{
			name: "no worker log",
			change: func(in *seedInput) {
				in.Log, in.LogErr = workerLogScan{}, errors.New("worker log: no such file")
			},
			want:         "1:PASS 2:PASS 2:PASS 2:INFO 3:PASS 4:FAIL 4:FAIL code:PASS",
			wantMeasured: map[int]string{5: "worker log: no such file", 4: "pool size not in the worker log"},
		},
		{
			name: "plain copies in the code",
			change: func(in *seedInput) {
				in.Plain = []plainCopy{{File: "cmd/x/main.go", Line: 12, Call: "os.WriteFile"}, {File: "a/b.go", Line: 3, Call: "io.Copy"},
					{File: "cmd/x/report.go", Line: 7, Call: "os.WriteFile", Exempt: true}}
			},
			want:         strings.Replace(allPass, "code:PASS", "code:FAIL", 1),
			wantMeasured: map[int]string{7: `2 calls in 30 non-test .go files outside walletstore: cmd/x/main.go:12 os.WriteFile, a/b.go:3 io.Copy; 1 marked "seed-check: not a wallet file": cmd/x/report.go:7 os.WriteFile`},
		},
		{
			name:         "one plain copy",
			change:       func(in *seedInput) { in.Plain = []plainCopy{{File: "a/b.go", Line: 3, Call: "os.Link"}} },
			want:         strings.Replace(allPass, "code:PASS", "code:FAIL", 1),
			wantMeasured: map[int]string{7: "1 call in 30 non-test .go files outside walletstore: a/b.go:3 os.Link"},
		},
		{
			name: "only calls marked as not writing wallet files",
			change: func(in *seedInput) {
				in.Plain = []plainCopy{{File: "cmd/x/report.go", Line: 7, Call: "os.WriteFile", Exempt: true}}
			},
			want:         allPass,
			wantMeasured: map[int]string{7: `0 calls in 30 non-test .go files outside walletstore; 1 marked "seed-check: not a wallet file": cmd/x/report.go:7 os.WriteFile`},
		},
		{
			name:         "code not scanned",
			change:       func(in *seedInput) { in.GoFiles, in.ScanErr = 0, errors.New("scan Go code: permission denied") },
			want:         strings.Replace(allPass, "code:PASS", "code:FAIL", 1),
			wantMeasured: map[int]string{7: "scan Go code: permission denied"},
		},
		{
			name:   "no Go files found",
			change: func(in *seedInput) { in.GoFiles = 0 },
			want:   strings.Replace(allPass, "code:PASS", "code:FAIL", 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := goodSeedInput()
			tt.change(&in)
			rows := evaluateSeedCheck(in)
			assert.Equal(t, tt.want, verdicts(rows))
			for i, want := range tt.wantMeasured {
				require.Less(t, i, len(rows))
				assert.Contains(t, rows[i].Measured, want, "row %d (%s)", i, rows[i].Criterion)
			}
		})
	}
}

func TestMaxAndP95(t *testing.T) {
	tests := []struct {
		give          []int64
		wantMax, want int64
	}{
		{give: []int64{7}, wantMax: 7, want: 7},
		{give: []int64{3, 1, 2}, wantMax: 3, want: 3},
		// 20 values: the 95th percentile is the 19th smallest.
		{give: []int64{20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, wantMax: 20, want: 19},
		{give: append(make([]int64, 54), 500), wantMax: 500, want: 0},
	}
	for _, tt := range tests {
		gotMax, got := maxAndP95(tt.give)
		assert.Equal(t, tt.wantMax, gotMax, "%v", tt.give)
		assert.Equal(t, tt.want, got, "%v", tt.give)
	}
}

func TestSeconds(t *testing.T) {
	for give, want := range map[time.Duration]string{
		35 * time.Second: "35 s", 12345 * time.Millisecond: "12.35 s", 100 * time.Millisecond: "0.1 s", 0: "0 s",
	} {
		assert.Equal(t, want, seconds(give))
	}
}

func TestSeedIDs(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	single, par, err := seedIDs("seed", now, "ab12")
	require.NoError(t, err)
	assert.Equal(t, "seed-20260102-030405-ab12-single", single)
	assert.Equal(t, []string{"seed-20260102-030405-ab12-par1", "seed-20260102-030405-ab12-par2", "seed-20260102-030405-ab12-par3"}, par)
	_, _, err = seedIDs("bad.prefix", now, "ab12")
	require.Error(t, err)
}

// Log lines as the worker writes them: zap's development console encoder
// (the default) and its production JSON encoder.
const (
	consoleConfig = "2026-11-27T16:23:36.566Z\tINFO\tworker/worker.go:72\tconfiguration\t{\"temporal_address\": \"127.0.0.1:7233\", \"pool_size\": 9, \"master_secret\": \"***\"}\n"
	consoleCopy   = "2026-11-27T16:12:40.001Z\tINFO\tactivities\tactivities/activities.go:364\tatomic copy\t{\"escrow_id\": %q, \"role\": %q, \"round\": %q, \"attempt\": 1, \"slot\": 3, \"src\": \"w\", \"dst\": \"s\"}\n"
	consoleFailed = "2026-11-27T16:12:40.002Z\tERROR\tactivities\tactivities/activities.go:361\tatomic copy failed\t{\"escrow_id\": %q, \"role\": %q, \"round\": %q, \"error\": \"no space left on device\"}\n"
	jsonCopy      = `{"level":"info","ts":1764259960.1,"logger":"activities","caller":"activities/activities.go:379","msg":"atomic copy","escrow_id":%q,"role":%q,"round":%q,"src":"s","dst":"w"}` + "\n"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		give      string
		wantOK    bool
		wantMsg   string
		wantField map[string]any
	}{
		{give: fmt.Sprintf(consoleCopy, "e1", "buyer", "MAKING"), wantOK: true, wantMsg: "atomic copy",
			wantField: map[string]any{"escrow_id": "e1", "role": "buyer", "round": "MAKING"}},
		{give: fmt.Sprintf(jsonCopy, "e1", "vendor", "CREATING"), wantOK: true, wantMsg: "atomic copy",
			wantField: map[string]any{"escrow_id": "e1", "role": "vendor"}},
		{give: consoleConfig, wantOK: true, wantMsg: "configuration", wantField: map[string]any{"pool_size": 9.0}},
		{give: "2026-11-27T16:12:55.610Z\tINFO\tworker/worker.go:165\tworker stopping\n", wantOK: true, wantMsg: "worker stopping"},
		{give: "2026-11-27T16:12:55.610Z\tINFO\ttemporal\tStopped Worker\t{\"Namespace\": \"default\"}", wantOK: true, wantMsg: "Stopped Worker"},
		{give: "goroutine 1 [running]:\n"},
		{give: "\tmain.go:12\n"},
		{give: "{not json\n"},
		{give: "not a time\tINFO\tx.go:1\tatomic copy\n"},
		{give: ""},
	}
	for _, tt := range tests {
		msg, fields, ok := parseLogLine([]byte(tt.give))
		assert.Equal(t, tt.wantOK, ok, "%q", tt.give)
		assert.Equal(t, tt.wantMsg, msg, "%q", tt.give)
		for k, v := range tt.wantField {
			assert.Equal(t, v, fields[k], "%q: field %s", tt.give, k)
		}
	}
}

func TestScanWorkerLog(t *testing.T) {
	before := consoleConfig + fmt.Sprintf(consoleCopy, "e1", "buyer", "CREATING") + fmt.Sprintf(consoleFailed, "e1", "buyer", "MAKING")
	after := fmt.Sprintf(consoleCopy, "e1", "buyer", "CREATING") +
		fmt.Sprintf(consoleCopy, "e1", "buyer", "MAKING") +
		"2026-11-27T16:12:40.003Z\tWARN\tactivities\tactivities/activities.go:290\trpc call failed\t{\"escrow_id\": \"e1\"}\n" +
		fmt.Sprintf(jsonCopy, "e2", "arbiter", "EXCHANGING_1") +
		fmt.Sprintf(consoleCopy, "other", "buyer", "CREATING") + // not this check's escrow
		fmt.Sprintf(consoleFailed, "e2", "vendor", "EXCHANGING_2") +
		fmt.Sprintf(consoleFailed, "other", "vendor", "MAKING") +
		"a stray line\n" +
		strings.TrimSuffix(fmt.Sprintf(consoleCopy, "e2", "arbiter", "EXCHANGING_1"), "\n") // no final newline
	ids := map[string]bool{"e1": true, "e2": true}

	got, err := scanWorkerLog(strings.NewReader(before+after), int64(len(before)), ids)
	require.NoError(t, err)
	assert.Equal(t, workerLogScan{
		PoolSize: 9, Copies: 4, Failed: 1,
		PerStep: map[stepKey]int{
			{EscrowID: "e1", Role: "buyer", Round: "CREATING"}:       1,
			{EscrowID: "e1", Role: "buyer", Round: "MAKING"}:         1,
			{EscrowID: "e2", Role: "arbiter", Round: "EXCHANGING_1"}: 2,
		},
		FailedLines: []string{"e2/vendor/EXCHANGING_2: no space left on device"},
	}, got)

	// From the start, the earlier lines count too.
	got, err = scanWorkerLog(strings.NewReader(before+after), 0, ids)
	require.NoError(t, err)
	assert.Equal(t, 5, got.Copies)
	assert.Equal(t, 2, got.Failed)

	// readWorkerLog reads a log that was replaced (shorter than from) from
	// its start.
	path := filepath.Join(t.TempDir(), "worker.log")
	require.NoError(t, os.WriteFile(path, []byte(after), 0o600))
	got, err = readWorkerLog(path, int64(len(before+after)), ids)
	require.NoError(t, err)
	assert.Equal(t, 4, got.Copies)
	assert.Equal(t, 0, got.PoolSize)

	_, err = readWorkerLog(filepath.Join(t.TempDir(), "missing.log"), 0, ids)
	require.ErrorContains(t, err, "worker log")
}

func TestPlainCopiesIn(t *testing.T) {
	src := `package x

import (
	"crypto/sha256"
	stdio "io"
	"net/http"
	"os"
	run "os/exec"
)

// os.WriteFile in a comment does not count, nor does "io.Copy(" in a string.
var s = "os.Rename(a, b)"

func f(resp *http.Response, dst stdio.Writer, src stdio.Reader) error {
	_, _ = stdio.Copy(stdio.Discard, resp.Body) // draining a body is fine
	h := sha256.New()
	if _, err := stdio.Copy(h, src); err != nil { // line 17
		return err
	}
	if err := os.WriteFile("w", nil, 0o600); err != nil { // line 20
		return err
	}
	_ = os.Rename("a", "b") // line 23
	return os.Link("a", "b") // line 24
}

func report(b []byte) error {
	// seed-check: not a wallet file (a report)
	if err := os.WriteFile("report.svg", b, 0o644); err != nil { // line 29
		return err
	}
	return os.WriteFile("r2", b, 0o644) // seed-check: not a wallet file; line 32
}

func later(b []byte) error {
	// seed-check: not a wallet file, but two lines up

	return os.WriteFile("w", b, 0o600) // line 38
}

func opens(ctx context.Context) {
	f, _ := os.Create("w")                               // line 42
	r, _ := os.OpenFile("w", os.O_RDONLY, 0)             // read only: fine
	a, _ := os.OpenFile("w", os.O_WRONLY|os.O_APPEND, 0) // line 44
	_ = run.Command("cp", "a", "b")                      // line 45
	_ = run.CommandContext(ctx, "/bin/cp", "a", "b")     // line 46
	_ = run.Command("ls", "a")                           // not a copy
	_, _, _ = f, r, a
}
`
	got, err := plainCopiesIn(token.NewFileSet(), "x/x.go", []byte(src))
	require.NoError(t, err)
	assert.Equal(t, []plainCopy{
		{File: "x/x.go", Line: 17, Call: "io.Copy"},
		{File: "x/x.go", Line: 20, Call: "os.WriteFile"},
		{File: "x/x.go", Line: 23, Call: "os.Rename"},
		{File: "x/x.go", Line: 24, Call: "os.Link"},
		{File: "x/x.go", Line: 29, Call: "os.WriteFile", Exempt: true},
		{File: "x/x.go", Line: 32, Call: "os.WriteFile", Exempt: true},
		{File: "x/x.go", Line: 38, Call: "os.WriteFile"},
		{File: "x/x.go", Line: 42, Call: "os.Create"},
		{File: "x/x.go", Line: 44, Call: "os.OpenFile"},
		{File: "x/x.go", Line: 45, Call: "exec.Command"},
		{File: "x/x.go", Line: 46, Call: "exec.CommandContext"},
	}, got)

	// A local identifier named like the packages is not them.
	got, err = plainCopiesIn(token.NewFileSet(), "y.go", []byte(`package y

type fake struct{}

func (fake) Copy(a, b any) {}

func g() {
	var io fake
	io.Copy(1, 2)
}
`))
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = plainCopiesIn(token.NewFileSet(), "bad.go", []byte("package"))
	require.Error(t, err)
}

func TestScanPlainCopies(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	}
	const renames = "package p\n\nimport \"os\"\n\nfunc f() { _ = os.Rename(\"a\", \"b\") }\n"
	write("walletstore/atomic.go", renames)   // the one place allowed
	write("activities/copy_test.go", renames) // tests are not scanned
	write("bin/gen.go", renames)              // nor build output
	write(".hidden/x.go", renames)            // nor hidden folders
	write("testnet-wallets/x.go", renames)    // nor wallets
	write("cmd/tool/main.go", renames)        // found
	write("rpcclient/client.go", "package rpcclient\n")
	write("README.md", "os.Rename(")

	files, found, err := scanPlainCopies(root)
	require.NoError(t, err)
	assert.Equal(t, 2, files)
	assert.Equal(t, []plainCopy{{File: "cmd/tool/main.go", Line: 5, Call: "os.Rename"}}, found)

	write("broken/x.go", "package")
	_, _, err = scanPlainCopies(root)
	require.ErrorContains(t, err, "scan Go code")
}

func TestRepoRoot(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module "+module+"\n\ngo 1.26\n"), 0o600))
	sub := filepath.Join(root, "cmd", "escrowctl")
	require.NoError(t, os.MkdirAll(sub, 0o755))

	got, err := repoRoot(root)
	require.NoError(t, err)
	assert.Equal(t, root, got)

	t.Chdir(sub)
	got, err = repoRoot("")
	require.NoError(t, err)
	assert.Equal(t, root, got)

	other := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o600))
	_, err = repoRoot(other)
	require.ErrorContains(t, err, "is not module")
	_, err = repoRoot(t.TempDir())
	require.Error(t, err)
}

// seedWorld is a fake stack for the command: escrows complete at once and
// "the worker" logs an atomic copy per committed step as each completes.
type seedWorld struct {
	root, log string
	mu        sync.Mutex
	// failSuffix marks the escrows (by id suffix) that log a failed copy,
	// then the retry's copy.
	failSuffix string
}

func newSeedWorld(t *testing.T) *seedWorld {
	t.Helper()
	w := &seedWorld{root: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(w.root, "go.mod"), []byte("module "+module+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(w.root, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o600))
	w.log = filepath.Join(t.TempDir(), "worker.log")
	// An earlier escrow's failed copy, before the check starts, is not counted.
	require.NoError(t, os.WriteFile(w.log, []byte(consoleConfig+fmt.Sprintf(consoleFailed, "old", "buyer", "MAKING")), 0o600))
	return w
}

func (w *seedWorld) result(id string) (*escrow.SetupResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, err := os.OpenFile(w.log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	for _, round := range committingRounds {
		for _, role := range escrow.Roles {
			if w.failSuffix != "" && strings.HasSuffix(id, w.failSuffix) && round == escrow.RoundMake && role == escrow.Buyer {
				// A failed attempt; the retry's copy succeeds.
				if _, err := fmt.Fprintf(f, consoleFailed, id, role, round); err != nil {
					return nil, err
				}
			}
			if _, err := fmt.Fprintf(f, consoleCopy, id, role, round); err != nil {
				return nil, err
			}
		}
	}
	return okResult(id, 0), nil
}

// fakeClient answers like a *starter.Client on a stack where escrows
// complete at once with result's outcome.
type fakeClient struct {
	mu      sync.Mutex
	started []string
	result  func(id string) (*escrow.SetupResult, error)
}

func (f *fakeClient) Start(_ context.Context, id string) (starter.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, id)
	return starter.Run{EscrowID: id, WorkflowID: escrow.WorkflowID(id)}, nil
}

func (f *fakeClient) Wait(_ context.Context, id string) (*escrow.SetupResult, error) {
	return f.result(id)
}

func (f *fakeClient) List(context.Context, escrow.State, int) ([]starter.Summary, error) {
	return nil, nil
}

func runFake(t *testing.T, w *seedWorld, prefix string) (stdout, stderr string, f *fakeClient, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	f = &fakeClient{result: w.result}
	err = Run(context.Background(), Options{Client: f, WorkerLog: w.log, Root: w.root, Prefix: prefix, Tag: "abcd",
		Stdout: &out, Stderr: &errOut, Now: time.Now})
	return out.String(), errOut.String(), f, err
}

func TestRunOnAFakeStack(t *testing.T) {
	w := newSeedWorld(t)
	out, stderr, f, err := runFake(t, w, "t")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, stderr)
	assert.Contains(t, out, "The old design's success criteria, measured on escrowflow:")
	assert.Contains(t, out, "seed-check: PASS, all 7 criteria met")
	assert.Regexp(t, `(?m)^  PASS  Test 1  single escrow COMPLETED, address confirmed by all roles, in < 35 s\n\s+measured: [0-9.]+ s wall`, out)
	assert.Regexp(t, `(?m)^  PASS  Test 4  every "atomic copy" succeeded .*\n\s+measured: 48 "atomic copy", 0 "atomic copy failed"$`, out)
	assert.Regexp(t, `(?m)^  PASS  Test 3  .*\n\s+measured: max 0 ms, p95 0 ms over 54 role steps; worker pool 9$`, out)
	assert.Regexp(t, `(?m)^  PASS  code    no plain copy .*\n\s+measured: 0 calls in 1 non-test .go files outside walletstore$`, out)
	assert.Regexp(t, `(?m)^  INFO  Test 2  batch wall time`, out)
	require.Len(t, f.started, 4)
	assert.Regexp(t, `^t-\d{8}-\d{6}-abcd-single$`, f.started[0], "Test 1 runs alone, first")
	assert.Contains(t, stderr, "seed-check: Test 1: one escrow alone: "+f.started[0])

	// A failed copy fails the check.
	w = newSeedWorld(t)
	w.failSuffix = "-par2"
	out, _, _, err = runFake(t, w, "t")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 of 7 criteria failed")
	assert.Contains(t, out, "FAIL")

	// A root that is not this module.
	w = newSeedWorld(t)
	w.root = t.TempDir()
	_, _, _, err = runFake(t, w, "t")
	require.Error(t, err)
}

// TestSourceRules runs the seed-check code scan over this repository:
// every write of a file outside walletstore must go through it.
func TestSourceRules(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, found, err := scanPlainCopies(root)
	require.NoError(t, err)
	require.Greater(t, files, 20, "the scan read the code")
	for _, c := range found {
		assert.True(t, c.Exempt, "plain %s at %s:%d", c.Call, c.File, c.Line)
	}
}

// okResult is a confirmed result whose rounds start at +startMs.
func okResult(id string, startMs int) *escrow.SetupResult {
	addr := "9" + strings.Repeat("a", 10) + id
	res := &escrow.SetupResult{EscrowID: id, MultisigAddress: addr, Wallets: map[escrow.Role]escrow.WalletResult{}, Rounds: stdRounds(startMs)}
	for _, role := range escrow.Roles {
		res.Wallets[role] = escrow.WalletResult{Wallet: id + "-" + string(role) + "-final", Address: addr}
	}
	return res
}
