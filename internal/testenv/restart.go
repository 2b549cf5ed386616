package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/internal/spawn"
)

// temporalRestartAttempts bounds how often Restart tries to start the server
// again when its ports are not free yet.
const temporalRestartAttempts = 5

// Restart stops the server by its PID, as Stop does (SIGTERM to its process
// group, SIGKILL after 10 s), and starts it again with the same command
// line: the same 127.0.0.1 ports, the same SQLite database file and the same
// dynamic config, so workflows, histories, task queues and the EscrowState
// search attribute survive. Clients and workers that were connected keep
// their address and reconnect by themselves. Restart waits (at most 60 s per
// attempt) until the server is ready again, fails the test otherwise, and
// returns how long the server was unavailable (from the stop signal until
// it was ready). The new process gets PID and is stopped by Stop and by the
// cleanup StartTemporal registered; its output is appended to LogPath.
//
// Restart must not run concurrently with Stop or another Restart.
func (tp *Temporal) Restart(t testing.TB) time.Duration {
	t.Helper()
	return tp.restart(t, tp.Stop)
}

// Crash kills the server's process group with SIGKILL (no shutdown, no
// flush: what a power cut or the OOM killer does), waits until it is
// reaped and starts it again as Restart does, on the same ports and the
// same SQLite database. It returns how long the server was unavailable.
func (tp *Temporal) Crash(t testing.TB) time.Duration {
	t.Helper()
	return tp.restart(t, func() {
		tp.stopOnce.Do(func() {
			signalGroup(tp.PID, syscall.SIGKILL)
			<-tp.exited
		})
	})
}

func (tp *Temporal) restart(t testing.TB, stop func()) time.Duration {
	t.Helper()
	if tp.cli == "" {
		t.Fatalf("testenv: restart: this server was not started by StartTemporal")
	}
	stopped := time.Now()
	stop()
	var lastErr error
	for attempt := 1; attempt <= temporalRestartAttempts; attempt++ {
		err := tp.startAgain()
		if err == nil {
			return time.Since(stopped)
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		t.Logf("testenv: temporal restart attempt %d: ports not free yet, retrying: %v", attempt, err)
		time.Sleep(time.Duration(attempt) * time.Second)
	}
	t.Fatalf("testenv: restart temporal dev server on %s: %v", tp.HostPort, lastErr)
	return 0
}

// startAgain starts the server process once more with the recorded command
// line and waits until it is ready; on error the new process is stopped.
func (tp *Temporal) startAgain() error {
	logFile, err := os.OpenFile(tp.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	fmt.Fprintf(logFile, "\n--- testenv: restart at %s ---\n", time.Now().UTC().Format(time.RFC3339Nano))

	cmd := exec.Command(tp.cli, tp.args...)
	cmd.Dir = tp.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", tp.cli, err)
	}
	exited := make(chan struct{})
	tp.cmd, tp.PID, tp.exited, tp.waitErr = cmd, cmd.Process.Pid, exited, nil
	tp.stopOnce = sync.Once{}
	go func() {
		err := cmd.Wait()
		tp.waitErr = err
		close(exited)
	}()
	if err := tp.waitReady(); err != nil {
		tp.Stop()
		return fmt.Errorf("%w\n--- %s (last %d lines) ---\n%s", err, tp.LogPath, logTailLines, tail(tp.LogPath, logTailLines))
	}
	return nil
}
