package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/walletstore"
	"github.com/escrowflow/escrowflow/worker"
)

// corpusBadIDs are escrow ids that must never reach a file name.
var corpusBadIDs = []struct {
	name string
	id   string
}{
	{"dot-dot slash", "../x"},
	{"dot-dot slashes", "../../etc/passwd"},
	{"slash", "a/b"},
	{"absolute path", "/tmp/x"},
	{"backslash", `..\x`},
	{"NUL", "a\x00b"},
	{"space", "a b"},
	{"tab", "a\tb"},
	{"newline", "order-1\n"},
	{"unicode", "ñandú"},
	{"unicode look-alike", "оrder-1"}, // Cyrillic о
	{"empty", ""},
	{"65 characters", strings.Repeat("x", 65)},
	{"leading dash", "-order"},
	{"leading underscore", "_order"},
	{"dot", "a.b"},
	{"only dots", ".."},
	{"percent-encoded dots", "%2e%2e"},
	{"percent-encoded slash", "..%2fx"},
}

// TestCorpusBadInput feeds bad escrow ids and bad workflow inputs through
// every way in (the starter, escrowctl, the raw Temporal CLI and a raw SDK
// payload) to one Temporal dev server and one in-process worker. Every case
// ends in a clear typed error, no workflow is left running, and nothing is
// written beside the wallet dir or under a name a bad id could have made.
// One real escrow runs, to make the duplicate-id cases real.
func TestCorpusBadInput(t *testing.T) {
	tp := testenv.StartTemporal(t)
	parent := t.TempDir()
	walletDir := filepath.Join(parent, "wallets")
	require.NoError(t, os.Mkdir(walletDir, 0o700))
	workDir := t.TempDir() // the working directory of the CLIs
	// No warm stock: it writes wallet files of its own while the corpus
	// checks that bad input writes none.
	inProcessWorker(t, tp.HostPort, walletDir, 3, func(c *worker.Config) { c.WalletStock = 0 })
	tc := tp.Client(t)
	sc := starter.New(tc)
	escrowctl := testenv.BuildBinary(t, "./cmd/escrowctl")
	temporalCLI := testenv.TemporalCLI(t)
	ctx := context.Background()

	// The one real escrow; it runs while the bad ids are tried.
	const doneID = "corpus-done-1"
	_, err := sc.Start(ctx, doneID)
	require.NoError(t, err)

	cases := 0
	rawRun := 0
	// created lists every workflow id this test started a workflow for.
	created := map[string]bool{escrow.WorkflowID(doneID): true}
	// startRaw runs `temporal workflow start` with a fresh workflow id and
	// returns it with the CLI's exit error and output. An empty input
	// passes no --input at all.
	startRaw := func(t *testing.T, input string) (wfID string, out []byte, err error) {
		t.Helper()
		rawRun++
		wfID = fmt.Sprintf("corpus-raw-%02d", rawRun)
		args := []string{"workflow", "start", "--address", tp.HostPort, "--task-queue", escrow.TaskQueue,
			"--type", escrow.WorkflowName, "--workflow-id", wfID}
		if input != "" {
			args = append(args, "--input", input)
		}
		cmd := exec.Command(temporalCLI, args...)
		cmd.Dir = workDir
		out, err = cmd.CombinedOutput()
		return wfID, out, err
	}
	// requireFailedFast waits at most 30 s for workflow wfID to close and
	// requires it FAILED with a non-retryable application error of type
	// wantType ("" for any type), which it returns.
	requireFailedFast := func(t *testing.T, wfID, wantType string) *temporal.ApplicationError {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := tc.GetWorkflow(wctx, wfID, "").Get(wctx, nil)
		require.Error(t, err, "workflow %s must fail", wfID)
		require.NoError(t, wctx.Err(), "workflow %s still open after 30 s: %v", wfID, err)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr, "workflow %s", wfID)
		if wantType != "" {
			require.Equal(t, wantType, appErr.Type(), "failure type of %s: %v", wfID, err)
			require.True(t, appErr.NonRetryable(), "%s", wfID)
		}
		d, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
		require.NoError(t, err)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, d.GetWorkflowExecutionInfo().GetStatus(), "%s", wfID)
		return appErr
	}
	// requireNoWorkflow checks that Temporal has no workflow wfID. The SDK
	// sends the workflow id in a gRPC header, which cannot carry bytes
	// outside printable ASCII: such an id is refused by the client itself
	// (the final visibility check covers it).
	requireNoWorkflow := func(t *testing.T, wfID string) {
		t.Helper()
		_, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
		if strings.IndexFunc(wfID, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			require.ErrorContains(t, err, "non-printable ASCII", "workflow id %q cannot reach Temporal", wfID)
			return
		}
		var notFound *serviceerror.NotFound
		require.ErrorAs(t, err, &notFound, "no workflow %q was created", wfID)
	}

	t.Run("bad escrow ids", func(t *testing.T) {
		for _, tt := range corpusBadIDs {
			t.Run(tt.name, func(t *testing.T) {
				require.Error(t, escrow.ValidateEscrowID(tt.id), "the corpus holds bad ids only")

				// (a) The starter refuses it before it reaches Temporal.
				_, err := sc.Start(ctx, tt.id)
				var bad *escrow.InvalidEscrowIDError
				require.ErrorAs(t, err, &bad)
				require.Equal(t, tt.id, bad.ID)
				requireNoWorkflow(t, escrow.WorkflowID(tt.id))
				cases++

				// (b) escrowctl says so and exits 1. An argv cannot hold
				// a NUL byte, and ids starting with '-' need "--" (without
				// it they are an unknown flag: a usage error, exit 2).
				if !strings.Contains(tt.id, "\x00") {
					args := []string{"--address", tp.HostPort, "start"}
					if strings.HasPrefix(tt.id, "-") {
						out, code := runCorpusCmd(t, workDir, escrowctl, append(args, tt.id)...)
						require.Equal(t, 2, code, "%s", out)
						require.Contains(t, out, "flag provided but not defined: "+tt.id)
						args = append(args, "--")
					}
					out, code := runCorpusCmd(t, workDir, escrowctl, append(args, tt.id)...)
					require.Equal(t, 1, code, "%s", out)
					require.Contains(t, out, "invalid escrow id "+strconv.Quote(tt.id), "the error names the problem")
					requireNoWorkflow(t, escrow.WorkflowID(tt.id))
					cases++
				}

				// (c) A raw start reaches the workflow, which fails
				// InvalidInput at once.
				input, err := json.Marshal(map[string]string{"escrowId": tt.id})
				require.NoError(t, err)
				wfID, out, err := startRaw(t, string(input))
				require.NoError(t, err, "%s", out)
				created[wfID] = true
				appErr := requireFailedFast(t, wfID, escrow.TypeInvalidInput)
				require.Contains(t, appErr.Error(), "invalid escrow id "+strconv.Quote(tt.id))
				cases++
			})
		}
	})

	// The real escrow completes; remember its files.
	res, err := sc.Wait(ctx, doneID)
	require.NoError(t, err)
	require.NotEmpty(t, res.MultisigAddress) // (TestEscrowSetup checks real escrows in depth)
	doneFiles := corpusFileSums(t, walletDir)
	require.NotEmpty(t, doneFiles)

	t.Run("duplicate id through the starter", func(t *testing.T) {
		_, err := sc.Start(ctx, doneID)
		require.ErrorIs(t, err, starter.ErrDuplicateEscrow)
		var dup *starter.DuplicateEscrowError
		require.ErrorAs(t, err, &dup)
		require.Equal(t, doneID, dup.EscrowID)
		cases++
	})

	t.Run("bad raw inputs", func(t *testing.T) {
		tests := []struct {
			name  string
			input string // "": no --input
			// wantType is the failure type; "" when the CLI refuses the
			// input itself and no workflow starts.
			wantType string
			// wantMsg is part of the failure message (or the CLI's).
			wantMsg string
		}{
			{"truncated JSON", `{"escrowId":`, "", "not valid JSON"},
			{"not JSON", `escrowId=x`, "", "not valid JSON"},
			{"array", `[]`, escrow.TypeInvalidInput, `invalid workflow input: got a JSON array, want {"escrowId":"…"}`},
			{"string", `"str"`, escrow.TypeInvalidInput, "got a JSON string"},
			{"number id", `{"escrowId":5}`, escrow.TypeInvalidInput, "escrowId is a JSON number, want a string"},
			{"object id", `{"escrowId":{"path":"../"}}`, escrow.TypeInvalidInput, "escrowId is a JSON object"},
			{"null", `null`, escrow.TypeInvalidInput, `invalid escrow id ""`},
			{"empty object", `{}`, escrow.TypeInvalidInput, `invalid escrow id ""`},
			{"no input", ``, escrow.TypeInvalidInput, `invalid escrow id ""`},
			{"NUL escape", `{"escrowId":"a\u0000b"}`, escrow.TypeInvalidInput, `invalid escrow id "a\x00b"`},
			{"lone surrogate", `{"escrowId":"\ud800"}`, escrow.TypeInvalidInput, "invalid escrow id " + strconv.Quote("\uFFFD")},
			{"duplicate key, the last wins", `{"escrowId":"corpus-ok-1","escrowId":"../x"}`, escrow.TypeInvalidInput, `invalid escrow id "../x"`},
			{"case-folded key", `{"ESCROWID":"../x"}`, escrow.TypeInvalidInput, `invalid escrow id "../x"`},
			// Unknown fields are ignored: on a claimed id the run fails
			// DuplicateEscrow (an unclaimed one would run a full escrow).
			{"extra fields on a claimed id", `{"escrowId":"` + doneID + `","evil":"../","x":1}`, escrow.TypeDuplicateEscrow, "already exists"},
			{"claimed id", `{"escrowId":"` + doneID + `"}`, escrow.TypeDuplicateEscrow, "already exists"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wfID, out, err := startRaw(t, tt.input)
				if tt.wantType == "" {
					require.Error(t, err, "the CLI refuses it: %s", out)
					require.Contains(t, string(out), tt.wantMsg)
					requireNoWorkflow(t, wfID)
				} else {
					require.NoError(t, err, "%s", out)
					created[wfID] = true
					appErr := requireFailedFast(t, wfID, tt.wantType)
					require.Contains(t, appErr.Error(), tt.wantMsg)
				}
				cases++
			})
		}
	})

	t.Run("malformed JSON payload through the SDK", func(t *testing.T) {
		// The CLI validates JSON; a client that does not can deliver a
		// payload the worker cannot decode at all. The SDK fails such a run
		// before EscrowSetup runs (untyped); what matters is that it fails
		// at once instead of retrying.
		payload := &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
			Data:     []byte(`{"escrowId":`),
		}
		const wfID = "corpus-sdk-1"
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: escrow.TaskQueue},
			escrow.WorkflowName, converter.NewRawValue(payload))
		require.NoError(t, err)
		created[wfID] = true
		appErr := requireFailedFast(t, wfID, "")
		require.Contains(t, appErr.Error(), "unable to decode")
		cases++
	})

	t.Run("nothing left running or written", func(t *testing.T) {
		testenv.WaitFor(t, 30*time.Second, "no open workflow in visibility", func() bool {
			resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: tp.Namespace, Query: `ExecutionStatus="Running"`,
			})
			return err == nil && len(resp.GetExecutions()) == 0
		})
		open, err := tc.ListOpenWorkflow(ctx, &workflowservice.ListOpenWorkflowExecutionsRequest{
			Namespace: tp.Namespace, MaximumPageSize: 100,
		})
		require.NoError(t, err)
		require.Empty(t, open.GetExecutions(), "ListOpenWorkflow")
		// Every workflow that exists is one this test started: no bad id
		// made one of its own (also those no Describe could ask for).
		var all map[string]bool
		testenv.WaitFor(t, 30*time.Second, "visibility lists every workflow started", func() bool {
			all = map[string]bool{}
			var token []byte
			for {
				resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
					Namespace: tp.Namespace, PageSize: 1000, NextPageToken: token,
				})
				if err != nil {
					return false
				}
				for _, ex := range resp.GetExecutions() {
					all[ex.GetExecution().GetWorkflowId()] = true
				}
				if token = resp.GetNextPageToken(); len(token) == 0 {
					return len(all) >= len(created)
				}
			}
		})
		require.Equal(t, created, all, "the workflows that exist")

		assert.Equal(t, []string{"wallets"}, corpusNames(t, parent), "nothing beside the wallet dir")
		assert.Empty(t, corpusNames(t, workDir), "nothing in the CLIs' working directory")
		assert.Equal(t, doneFiles, corpusFileSums(t, walletDir), "the wallet dir holds the real escrow's files, unchanged")
		for _, name := range corpusNames(t, walletDir) {
			if name == ".walletrpc" || name == ".worker-id" {
				continue // the pool's run dir (logs, ring db); the worker's id
			}
			wallet := name
			for _, suf := range []string{walletstore.KeysSuffix, walletstore.AddressSuffix, walletstore.ManifestSuffix} {
				wallet = strings.TrimSuffix(wallet, suf)
			}
			id, _, ok := strings.Cut(name, ".")
			assert.True(t, ok && id == doneID && walletstore.ValidateName(wallet) == nil,
				"%q: every file belongs to the one real escrow and has a valid name", name)
		}
	})
	t.Logf("%d bad-input cases end to end", cases)
}

// runCorpusCmd runs bin with args in dir and returns its combined output
// and exit code.
func runCorpusCmd(t *testing.T, dir, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "run %s", bin)
	return string(out), 0
}

// corpusNames returns the sorted names of the entries of dir.
func corpusNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// corpusFileSums returns the sha256 of every regular file directly in dir,
// by name.
func corpusFileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	sums := map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		sums[e.Name()] = hex.EncodeToString(sum[:])
	}
	return sums
}
