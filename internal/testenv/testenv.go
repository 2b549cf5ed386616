// Package testenv holds helpers shared by the escrowflow tests: locating the
// repository, finding (or failing on) external prerequisites such as the
// Temporal CLI and monero-wallet-rpc, picking free loopback ports, building
// the project's binaries once per test process, and running a throw-away
// Temporal dev server.
//
// Every process started here listens on 127.0.0.1 only and is stopped by the
// PID it was started with, never by name, so the tests can run while a demo
// stack (ports 7233/8233) is up.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/internal/devserver"
)

// TemporalCLIEnv is the environment variable that names the Temporal CLI
// binary used by the tests. `make test` points it at the pinned repo-local
// bin/temporal.
const TemporalCLIEnv = "ESCROWFLOW_TEMPORAL_CLI"

// RepoRoot returns the repository root: the nearest directory at or above
// the current working directory that contains go.mod. It fails the test when
// there is none.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: getwd: %v", err)
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod found at or above the working directory")
		}
		dir = parent
	}
}

// InCI reports whether the tests run in continuous integration: the
// environment variable CI is set to anything but "", "0" or "false" (any
// case). In CI a missing prerequisite fails the test instead of skipping it.
func InCI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false":
		return false
	}
	return true
}

// Missing reports a missing prerequisite (a binary, root, a tmpfs mount):
// the test fails under CI (see InCI) and is skipped otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("a missing prerequisite is a failure in CI: "+format, args...)
		return
	}
	t.Skipf(format, args...)
}

// missing reports a missing prerequisite: a failure under CI, a skip locally.
func missing(t testing.TB, name, detail string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s not installed (%s); a missing prerequisite is a failure in CI — run `make test` to install prerequisites", name, detail)
	}
	t.Skipf("%s not installed; run `make test` to install prerequisites", name)
}

// RequireBinary returns the path of the executable name found on PATH. When
// it is missing the test fails under CI (see InCI) and is skipped otherwise.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, err.Error())
	}
	return p
}

// TemporalCLI returns the path of the Temporal CLI: $ESCROWFLOW_TEMPORAL_CLI
// when set, else bin/temporal under the repository root when it exists, else
// "temporal" from PATH. When none is usable the test fails under CI and is
// skipped otherwise. A set but unusable $ESCROWFLOW_TEMPORAL_CLI counts as
// missing; it never silently falls back to another binary.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(TemporalCLIEnv); p != "" {
		if !isExecutable(p) {
			missing(t, "temporal", fmt.Sprintf("$%s=%q is not an executable file", TemporalCLIEnv, p))
		}
		return p
	}
	if p := filepath.Join(RepoRoot(t), "bin", "temporal"); isExecutable(p) {
		return p
	}
	return RequireBinary(t, "temporal")
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (the
// kernel picks it for a listener that is closed right away). Ports are never
// handed out twice within one test process; another process may still grab
// the port before it is used, so callers that start servers should retry on
// "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := devserver.FreePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

// WaitFor polls cond (about every 50-500 ms) until it returns true, and fails
// the test with "timed out after <timeout> waiting for <what>" otherwise.
// Like t.Fatalf it must be called from the goroutine running the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	sleep := 50 * time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(sleep)
		if sleep < 500*time.Millisecond {
			sleep *= 2
		}
	}
}

type buildResult struct {
	path string
	err  error
}

var (
	buildMu    sync.Mutex
	buildDir   string
	buildCache = map[string]buildResult{}
)

// BuildBinary builds the main package pkg with `go build` run from the
// repository root (so "./cmd/escrow-worker" and full import paths both work)
// and returns the path of the binary, named after the last element of pkg.
// Each package is built once per test process; later calls, also from
// parallel tests, return the cached binary (or the cached build failure).
// When the test binary runs with the race detector, the binary is built with
// -race as well.
//
// The binaries live in one temporary directory per process. It is removed by
// Main; test packages that use BuildBinary should therefore have
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	goTool := RequireBinary(t, "go")

	buildMu.Lock()
	defer buildMu.Unlock()
	if r, ok := buildCache[pkg]; ok {
		if r.err != nil {
			t.Fatalf("testenv: build %s (cached failure): %v", pkg, r.err)
		}
		return r.path
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "escrowflow-testbin-")
		if err != nil {
			t.Fatalf("testenv: create build dir: %v", err)
		}
		buildDir = dir
	}
	name := filepath.Base(strings.TrimSuffix(pkg, "/"))
	if name == "." || name == "/" || name == "" {
		name = filepath.Base(root)
	}
	out := filepath.Join(buildDir, fmt.Sprintf("%s-%d", name, len(buildCache)), name)
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", out, pkg)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = root
	output, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output)
		buildCache[pkg] = buildResult{err: err}
		t.Fatalf("testenv: build %s: %v", pkg, err)
	}
	buildCache[pkg] = buildResult{path: out}
	return out
}

// Main runs the tests of a package via m.Run, runs cleanups (e.g. stopping
// a chain shared by the package's tests), removes the binaries built by
// BuildBinary and exits with the tests' exit code. Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if err := removeBuildDir(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
	}
	os.Exit(code)
}

func removeBuildDir() error {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		return nil
	}
	err := os.RemoveAll(buildDir)
	buildDir = ""
	buildCache = map[string]buildResult{}
	if err != nil {
		return errors.Join(errors.New("remove build dir"), err)
	}
	return nil
}

// ProcCPU is process pid's user + system CPU from /proc/<pid>/stat.
func ProcCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("testenv: /proc/%d/stat: %v", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
}

// ProcessGone reports whether process pid has ended: it does not exist, or
// it is a zombie waiting for a parent (or an init that never reaps) to
// collect it.
func ProcessGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name, which may hold spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}
