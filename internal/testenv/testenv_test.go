package testenv

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
)

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	assert.FileExists(t, filepath.Join(root, "go.mod"))
	assert.DirExists(t, filepath.Join(root, "internal", "testenv"))
}

func TestInCI(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"true", true}, {"1", true}, {"yes", true}, {"TRUE", true}, {"github-actions", true},
		{"", false}, {"0", false}, {"false", false}, {"False", false},
	}
	for _, tt := range tests {
		t.Setenv("CI", tt.give)
		assert.Equal(t, tt.want, InCI(), "CI=%q", tt.give)
	}
}

func TestFreePortIsUniqueAndBindable(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := FreePort(t)
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
	p := FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	require.NoError(t, err)
	require.NoError(t, l.Close())
}

func TestWaitFor(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, "counter to reach 3", func() bool {
		n++
		return n >= 3
	})
	assert.Equal(t, 3, n)
}

func TestTemporalCLIFromEnv(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "temporal")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv(TemporalCLIEnv, fake)
	assert.Equal(t, fake, TemporalCLI(t))
}

func TestStartTemporal(t *testing.T) {
	tp := StartTemporal(t)
	require.NotZero(t, tp.PID)
	require.Equal(t, "default", tp.Namespace)
	require.FileExists(t, tp.LogPath)

	// The demo stack may be running on 7233/8233; the test server must not
	// use those ports.
	_, portStr, err := net.SplitHostPort(tp.HostPort)
	require.NoError(t, err)
	assert.NotEqual(t, "7233", portStr)
	assert.NotEqual(t, 8233, tp.UIPort)

	c := tp.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.CheckHealth(ctx, nil)
	require.NoError(t, err)

	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: tp.Namespace})
	require.NoError(t, err)
	typ, ok := resp.GetCustomAttributes()[escrow.StateSearchAttribute]
	require.True(t, ok, "EscrowState not registered")
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, typ)

	// The Web UI is served on 127.0.0.1 as well.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.UIPort)), 5*time.Second)
	require.NoError(t, err, "web UI not listening")
	require.NoError(t, conn.Close())

	c.Close()
	tp.Stop()
	tp.Stop() // idempotent
	err = syscall.Kill(tp.PID, 0)
	assert.True(t, errors.Is(err, syscall.ESRCH), "pid %d still exists after Stop: %v", tp.PID, err)
}

func TestBuildBinaryCaches(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	// A main package that always exists, independent of this repository's
	// (still growing) cmd/ tree.
	p1 := BuildBinary(t, "cmd/gofmt")
	p2 := BuildBinary(t, "cmd/gofmt")
	assert.Equal(t, p1, p2)
	assert.Equal(t, "gofmt", filepath.Base(p1))
	assert.FileExists(t, p1)
}

func TestMain(m *testing.M) { Main(m) }

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }

// TestMissingFailsUnderCI: a missing prerequisite fails the test for any
// CI value but "", "0" and "false", and skips it otherwise.
func TestMissingFailsUnderCI(t *testing.T) {
	for give, wantFail := range map[string]bool{"true": true, "1": true, "yes": true, "": false, "0": false, "false": false} {
		t.Setenv("CI", give)
		r := &recorder{}
		Missing(r, "no %s", "tmpfs")
		assert.Equal(t, wantFail, r.failed, "CI=%q failed", give)
		assert.Equal(t, !wantFail, r.skipped, "CI=%q skipped", give)
	}
}

// TestProcCPU: this process's CPU as read from /proc grows while it spins.
func TestProcCPU(t *testing.T) {
	before := ProcCPU(t, os.Getpid())
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for ProcCPU(t, os.Getpid()) <= before && time.Now().Before(deadline) {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
	}
	require.Greater(t, ProcCPU(t, os.Getpid()), before, "spun %d", x)
}
