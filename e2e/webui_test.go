package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
)

const (
	// chromiumTimeout bounds one headless chromium run; it is killed (its
	// process group, by its PID) when it takes longer.
	chromiumTimeout = 2 * time.Minute
	// chromiumBudgetMs is the virtual time the page gets to load its data
	// and render before chromium dumps or shoots it (virtual time stands
	// still while requests are pending). A DOM that lacks what the test
	// looks for is dumped once more with twice the budget.
	chromiumBudgetMs = 15000
)

// TestWebUI checks that Temporal's Web UI shows an escrow: it runs one
// escrow to COMPLETED, then has headless chromium load the workflow list
// filtered by EscrowState="COMPLETED" and the escrow's workflow pages,
// checks their DOM, and saves screenshots in the ignored folder
// screenshots/ at the repository root.
func TestWebUI(t *testing.T) {
	chromium := testenv.RequireBinary(t, "chromium")
	tp := testenv.StartTemporal(t)
	ui := tp.UIAddress()
	testenv.WaitFor(t, 30*time.Second, "the Web UI serving on "+ui, func() bool {
		body, err := httpGet(ui + "/")
		return err == nil && strings.Contains(strings.ToLower(body), "<html")
	})

	walletDir := t.TempDir()
	inProcessWorker(t, tp.HostPort, walletDir, 3)
	sc := starter.New(tp.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const id = "webui-1"
	wfID := escrow.WorkflowID(id)
	run, err := sc.Start(ctx, id)
	require.NoError(t, err)
	res, err := sc.Wait(ctx, id)
	require.NoError(t, err)
	require.NotEmpty(t, res.MultisigAddress)
	testenv.WaitFor(t, 30*time.Second, "visibility lists the escrow as COMPLETED", func() bool {
		list, err := sc.List(ctx, escrow.StateCompleted, 100)
		if err != nil {
			return false
		}
		for _, s := range list {
			if s.EscrowID == id {
				return true
			}
		}
		return false
	})

	shots := filepath.Join(testenv.RepoRoot(t), "screenshots")
	require.NoError(t, os.MkdirAll(shots, 0o755))
	query := fmt.Sprintf("%s=%q", escrow.EscrowStateKey.GetName(), escrow.StateCompleted)
	listURL := fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", ui, tp.Namespace, url.QueryEscape(query))
	wfURL := fmt.Sprintf("%s/namespaces/%s/workflows/%s/%s", ui, tp.Namespace, url.PathEscape(wfID), url.PathEscape(run.RunID))
	// The status badge's text is exactly "Completed" (event names such as
	// WorkflowTaskCompleted do not match).
	completedBadge := regexp.MustCompile(`>\s*Completed\s*<`)

	t.Run("workflow list filtered by EscrowState", func(t *testing.T) {
		dom := chromiumDOM(t, chromium, listURL, wfID)
		require.Contains(t, dom, wfID, "the list filtered by %s shows the escrow", query)
		require.Contains(t, dom, run.RunID)
		chromiumScreenshot(t, chromium, listURL, filepath.Join(shots, "webui-list-completed.png"))
	})

	t.Run("workflow history page", func(t *testing.T) {
		u := wfURL + "/history"
		dom := chromiumDOM(t, chromium, u, wfID, res.MultisigAddress)
		require.Contains(t, dom, wfID)
		require.Contains(t, dom, `"`+id+`"`, "the input and result name the escrow id")
		require.Regexp(t, completedBadge, dom, "the page shows the status Completed")
		require.Contains(t, dom, res.MultisigAddress, "the result shows the multisig address")
		chromiumScreenshot(t, chromium, u, filepath.Join(shots, "webui-workflow-history.png"))
	})

	t.Run("workflow search attributes page", func(t *testing.T) {
		u := wfURL + "/search-attributes"
		dom := chromiumDOM(t, chromium, u, wfID, `"COMPLETED"`)
		require.Contains(t, dom, wfID)
		require.Regexp(t, completedBadge, dom)
		require.Regexp(t, `"EscrowState"</span>:\s*<span[^>]*>"COMPLETED"`, dom, "the search attributes show EscrowState COMPLETED")
		chromiumScreenshot(t, chromium, u, filepath.Join(shots, "webui-workflow-search-attributes.png"))
	})
}

// httpGet returns the body of a GET of u, failing on a status other than 200.
func httpGet(u string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

// chromiumDOM returns the DOM of page u after chromiumBudgetMs of virtual
// time, or, when that DOM lacks one of want, after twice as long.
func chromiumDOM(t *testing.T, chromium, u string, want ...string) string {
	t.Helper()
	var dom string
	for _, budget := range []int{chromiumBudgetMs, 2 * chromiumBudgetMs} {
		dom = runChromium(t, chromium, budget, "--dump-dom", u)
		require.Contains(t, dom, "</html>", "chromium dumped no DOM for %s", u)
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(dom, w)
		}
		if !missing {
			break
		}
		t.Logf("the DOM of %s after %d ms of virtual time lacks one of %q", u, budget, want)
	}
	return dom
}

// chromiumScreenshot saves a 1400×900 PNG of page u in file.
func chromiumScreenshot(t *testing.T, chromium, u, file string) {
	t.Helper()
	_ = os.Remove(file)
	runChromium(t, chromium, chromiumBudgetMs, "--screenshot="+file, "--window-size=1400,900", u)
	b, err := os.ReadFile(file)
	require.NoError(t, err, "chromium wrote no screenshot of %s", u)
	require.True(t, bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")), "%s is a PNG", file)
	t.Logf("screenshot of %s: %s", u, file)
}

// runChromium runs headless chromium with a fresh profile, a virtual time
// budget of budgetMs and args, and returns its stdout. chromium runs in its
// own process group, which is killed by the leader's PID when it takes
// longer than chromiumTimeout.
func runChromium(t *testing.T, chromium string, budgetMs int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		fmt.Sprintf("--virtual-time-budget=%d", budgetMs),
	}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err := spawn.Start(cmd)
	if err == nil {
		err = cmd.Wait()
	}
	if ctx.Err() != nil {
		t.Fatalf("chromium %v: killed after %s\nstderr:\n%s", args, chromiumTimeout, tailString(stderr.String(), 40))
	}
	require.NoError(t, err, "chromium %v\nstderr:\n%s", args, tailString(stderr.String(), 40))
	return stdout.String()
}

// tailString returns the last n lines of s.
func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
