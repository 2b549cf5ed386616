package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/spawn"
)

const (
	// EscrowStateAttribute is the custom search attribute (type Keyword)
	// that every Temporal server started by StartTemporal registers.
	EscrowStateAttribute = escrow.StateSearchAttribute

	// temporalStartTimeout bounds how long StartTemporal waits for the
	// server to accept clients and show the search attribute.
	temporalStartTimeout = 60 * time.Second
	// temporalStopTimeout is how long Stop waits after SIGTERM before it
	// sends SIGKILL.
	temporalStopTimeout = 10 * time.Second
	// temporalStartAttempts is how often StartTemporal retries with fresh
	// ports when the server loses a port race with another process.
	temporalStartAttempts = 3
	logTailLines          = 60
)

// Temporal is a Temporal dev server (`temporal server start-dev`) started by
// StartTemporal for one test. It listens on 127.0.0.1 only, keeps its SQLite
// database in a temporary directory of the test and is stopped by its PID
// when the test ends.
type Temporal struct {
	// HostPort is the frontend gRPC address, "127.0.0.1:<port>".
	HostPort string
	// UIPort is the port of the Web UI on 127.0.0.1.
	UIPort int
	// Namespace is the namespace to use, always "default".
	Namespace string
	// PID is the process ID of the server.
	PID int
	// LogPath is the file that receives the server's stdout and stderr.
	LogPath string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait has returned
	waitErr  error         // result of cmd.Wait, valid after exited is closed
	stopOnce sync.Once

	// cli, args and dir are the command line and working directory the
	// server was started with; Restart starts it again with them.
	cli  string
	args []string
	dir  string
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
	var lastErr error
	for attempt := 1; attempt <= temporalStartAttempts; attempt++ {
		tp, retry, err := startTemporalOnce(t, cli)
		if err == nil {
			return tp
		}
		lastErr = err
		if !retry {
			break
		}
		t.Logf("testenv: temporal dev server start attempt %d failed, retrying with new ports: %v", attempt, err)
	}
	t.Fatalf("testenv: start temporal dev server: %v", lastErr)
	return nil
}

// startTemporalOnce makes one start attempt. On error the process is already
// stopped; retry reports whether the failure looks like a lost port race.
func startTemporalOnce(t testing.TB, cli string) (tp *Temporal, retry bool, err error) {
	t.Helper()
	dir := t.TempDir()
	port, uiPort := FreePort(t), FreePort(t)
	logPath := filepath.Join(dir, "temporal.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	args := []string{
		"server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--ui-port", strconv.Itoa(uiPort),
		"--db-filename", filepath.Join(dir, "t.db"),
		"--search-attribute", EscrowStateAttribute + "=Keyword",
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true",
		"--log-level", "warn",
	}
	cmd := exec.Command(cli, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := spawn.Start(cmd); err != nil {
		return nil, false, fmt.Errorf("start %s: %w", cli, err)
	}
	tp = &Temporal{
		HostPort:  fmt.Sprintf("127.0.0.1:%d", port),
		UIPort:    uiPort,
		Namespace: "default",
		PID:       cmd.Process.Pid,
		LogPath:   logPath,
		cmd:       cmd,
		exited:    make(chan struct{}),
		cli:       cli,
		args:      args,
		dir:       dir,
	}
	go func() {
		tp.waitErr = cmd.Wait()
		close(tp.exited)
	}()

	if err := tp.waitReady(); err != nil {
		tp.Stop()
		log := tail(logPath, logTailLines)
		retry = strings.Contains(log, "address already in use")
		return nil, retry, fmt.Errorf("%w\n--- %s (last %d lines) ---\n%s", err, logPath, logTailLines, log)
	}

	t.Cleanup(func() {
		tp.Stop()
		if t.Failed() {
			t.Logf("temporal dev server log %s (last %d lines):\n%s", logPath, logTailLines, tail(logPath, logTailLines))
		}
	})
	return tp, false, nil
}

// waitReady polls until the server accepts a client in the default
// namespace and lists EscrowState as a Keyword search attribute.
func (tp *Temporal) waitReady() error {
	deadline := time.Now().Add(temporalStartTimeout)
	lastErr := errors.New("not checked yet")
	for time.Now().Before(deadline) {
		select {
		case <-tp.exited:
			return fmt.Errorf("temporal dev server (pid %d) exited before it was ready: %v", tp.PID, tp.waitErr)
		default:
		}
		if lastErr = tp.probe(); lastErr == nil {
			return nil
		}
		select {
		case <-tp.exited:
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("temporal dev server on %s not ready after %s: %v", tp.HostPort, temporalStartTimeout, lastErr)
}

func (tp *Temporal) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  tp.HostPort,
		Namespace: tp.Namespace,
		Logger:    quietLogger(io.Discard),
	})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: tp.Namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	typ, ok := resp.GetCustomAttributes()[EscrowStateAttribute]
	if !ok {
		return fmt.Errorf("search attribute %s not registered yet", EscrowStateAttribute)
	}
	if typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		return fmt.Errorf("search attribute %s has type %s, want Keyword", EscrowStateAttribute, typ)
	}
	return nil
}

// UIAddress returns the Web UI base URL, "http://127.0.0.1:<UIPort>".
func (tp *Temporal) UIAddress() string {
	return fmt.Sprintf("http://127.0.0.1:%d", tp.UIPort)
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
		Logger:    quietLogger(os.Stderr),
	})
	if err != nil {
		t.Fatalf("testenv: dial temporal at %s: %v", tp.HostPort, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Stop stops the server by its PID: SIGTERM to its process group (which it
// leads), up to 10 s grace, then SIGKILL; it returns once the process is
// reaped. It is safe to call more than once and is called by the cleanup
// that StartTemporal registers.
func (tp *Temporal) Stop() {
	tp.stopOnce.Do(func() {
		select {
		case <-tp.exited:
			return
		default:
		}
		signalGroup(tp.PID, syscall.SIGTERM)
		select {
		case <-tp.exited:
			return
		case <-time.After(temporalStopTimeout):
		}
		signalGroup(tp.PID, syscall.SIGKILL)
		<-tp.exited
	})
}

// signalGroup sends sig to the process group led by pid, or to pid alone
// when that group does not exist.
func signalGroup(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// quietLogger is an SDK logger that only passes warnings and errors to w.
func quietLogger(w io.Writer) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})))
}
