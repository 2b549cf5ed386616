package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/internal/devserver"
)

// Temporal is a Temporal dev server (`temporal server start-dev`, started by
// package devserver with the project's flags) for one test. It listens on
// 127.0.0.1 only, keeps its SQLite database in a temporary directory of the
// test and is stopped by its PID when the test ends.
type Temporal struct {
	*devserver.Server
	// Namespace is the namespace to use, always "default".
	Namespace string
}

// StartTemporal starts a Temporal dev server on free 127.0.0.1 ports with a
// database in t.TempDir(), the EscrowState Keyword search attribute and the
// project's dynamic config, and waits (at most 60 s) until a client can dial
// it and EscrowState is visible. The server runs in its own process group
// and gets SIGKILL if the test process dies. A t.Cleanup stops it (see Stop)
// and, when the test failed, logs the tail of the server log.
//
// The Temporal CLI comes from TemporalCLI, so a missing CLI fails the test
// under CI and skips it otherwise.
func StartTemporal(t testing.TB) *Temporal {
	t.Helper()
	cli := TemporalCLI(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "temporal.log")
	s, err := devserver.Start(context.Background(), cli, dir, logPath, devserver.Options{DBFile: filepath.Join(dir, "t.db")})
	if err != nil {
		t.Fatalf("testenv: start temporal dev server: %v", err)
	}
	tp := &Temporal{Server: s, Namespace: devserver.Namespace}
	t.Cleanup(func() {
		tp.Stop()
		if t.Failed() {
			t.Logf("temporal dev server log %s (last 60 lines):\n%s", logPath, devserver.Tail(logPath, 60))
		}
	})
	return tp
}

// Restart stops the server by its PID, as Stop does (SIGTERM to its process
// group, SIGKILL after 10 s), and starts it again with the same command
// line: the same 127.0.0.1 ports, the same SQLite database file and the same
// dynamic config, so workflows, histories, task queues and the EscrowState
// search attribute survive. Clients and workers that were connected keep
// their address and reconnect by themselves. Restart fails the test when
// the server does not come back, and returns how long the server was
// unavailable. The new process gets PID; its output is appended to LogPath.
//
// Restart must not run concurrently with Stop or another Restart.
func (tp *Temporal) Restart(t testing.TB) time.Duration {
	t.Helper()
	down, err := tp.Server.Restart(context.Background())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return down
}

// UIAddress returns the Web UI base URL, "http://127.0.0.1:<UIPort>".
func (tp *Temporal) UIAddress() string {
	return "http://" + devserver.IP + ":" + strconv.Itoa(tp.UIPort)
}

// Client dials the server in its namespace and closes the client in
// t.Cleanup. Cleanups run last-in first-out, so the client is closed before
// the server (started earlier) is stopped. The SDK logs warnings and errors
// to stderr.
func (tp *Temporal) Client(t testing.TB) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  tp.HostPort,
		Namespace: tp.Namespace,
		Logger:    devserver.QuietLogger(os.Stderr),
	})
	if err != nil {
		t.Fatalf("testenv: dial temporal at %s: %v", tp.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}
