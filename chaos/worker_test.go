package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/worker"
)

// workerProc is one escrow-worker process started by the run. It is stopped
// by its PID only; its wallet-rpc children die with it (parent-death
// signal) or are stopped by it on SIGTERM.
type workerProc struct {
	n         int
	dir       string // wallet dir
	pid       int
	logPath   string
	cmd       *exec.Cmd
	logFile   *os.File
	exited    chan struct{}
	waitErr   error
	startedAt time.Time
}

// workerStartTimeout bounds the wait for the worker's /readyz (the pool of
// wallet-rpc processes must answer first).
const workerStartTimeout = 2 * time.Minute

// workerStartAttempts is how often startWorker tries: a deployment's
// supervisor (systemd, Kubernetes) restarts a worker that exits at startup
// too. Every failed start is reported.
const workerStartAttempts = 3

// startWorker starts the worker binary over walletDir with a JSON log and
// waits until its /readyz answers 200. A worker that exits during startup
// is noted in the current trial and started again; after
// workerStartAttempts failures the test fails.
func (h *harness) startWorker(t *testing.T, walletDir string) *workerProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		w, err := h.tryStartWorker(t, walletDir)
		if err == nil {
			return w
		}
		// The error quotes the log; its last line is the worker's own word.
		lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
		msg := fmt.Sprintf("%s — %s", lines[0], lines[len(lines)-1])
		if h.cur != nil {
			h.cur.startFailures = append(h.cur.startFailures, msg)
		}
		if attempt == workerStartAttempts {
			t.Fatalf("chaos: worker did not start in %d attempts; last: %v", attempt, err)
		}
		time.Sleep(time.Second)
	}
}

// tryStartWorker starts the worker binary over walletDir with a JSON log
// and waits until its /readyz answers 200; it returns an error (with the
// log's tail) when the worker exits first or does not start in time.
func (h *harness) tryStartWorker(t *testing.T, walletDir string) (*workerProc, error) {
	t.Helper()
	h.workerSeq++
	logPath := filepath.Join(h.logDir, fmt.Sprintf("worker-%02d.log", h.workerSeq))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create worker log: %w", err)
	}
	cmd := exec.Command(h.workerBin, "--pool-size", strconv.Itoa(h.cfg.poolSize), "--log-format", "json")
	// The worker's configuration is ours alone: no ESCROWFLOW_* or
	// TEMPORAL_* setting of the caller's shell leaks in, and no fixed port
	// (the metrics endpoint's default 9464) collides with a demo stack or another
	// test's worker.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ESCROWFLOW_") && !strings.HasPrefix(kv, "TEMPORAL_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"TEMPORAL_ADDRESS="+h.tp.HostPort,
		"ESCROWFLOW_WALLET_DIR="+walletDir,
		"ESCROWFLOW_WALLET_RPC="+h.walletRPC,
		"ESCROWFLOW_MASTER_SECRET="+masterSecret,
		"ESCROWFLOW_METRICS_ADDRESS="+metricsAddr,
	)
	cmd.Stdout, cmd.Stderr = f, f
	// The worker dies with the test process.
	if err := spawn.Start(cmd); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	w := &workerProc{n: h.workerSeq, dir: walletDir, pid: cmd.Process.Pid, logPath: logPath, cmd: cmd,
		logFile: f, exited: make(chan struct{}), startedAt: time.Now()}
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() { w.stop(t) })
	deadline := time.Now().Add(workerStartTimeout)
	for !worker.Ready(context.Background(), metricsAddr) {
		select {
		case <-w.exited:
			_ = f.Close()
			return nil, fmt.Errorf("worker %d (pid %d) exited before it started: %v\n%s", w.n, w.pid, w.waitErr, tailFile(logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			w.stop(t)
			return nil, fmt.Errorf("worker %d (pid %d) not started after %s\n%s", w.n, w.pid, workerStartTimeout, tailFile(logPath, 30))
		}
	}
	return w, nil
}

func (w *workerProc) running() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the worker (by PID) and waits until it is reaped.
func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	if !w.running() {
		return
	}
	if err := syscall.Kill(w.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("chaos: SIGKILL worker pid %d: %v", w.pid, err)
	}
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("chaos: worker pid %d not reaped 30 s after SIGKILL", w.pid)
	}
	_ = w.logFile.Close()
}

// stop stops the worker gracefully: SIGTERM by PID (it stops its pool),
// SIGKILL after 60 s. It is safe to call more than once.
func (w *workerProc) stop(t *testing.T) {
	t.Helper()
	if w.running() {
		_ = syscall.Kill(w.pid, syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(60 * time.Second):
			t.Logf("chaos: worker pid %d ignored SIGTERM for 60 s; SIGKILL", w.pid)
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
			<-w.exited
		}
	}
	_ = w.logFile.Close()
}

// logLine is the part of a worker JSON log line the run reads.
type logLine struct {
	Msg      string `json:"msg"`
	PID      int    `json:"pid"`
	EscrowID string `json:"escrow_id"`
	Round    string `json:"round"`
}

// escrowProgress folds one log line into the progress of its escrow: the
// latest round a step of it leased a process for, or COMPLETED / FAILED
// once the worker finished it.
func escrowProgress(cur string, l logLine) string {
	switch {
	case l.Msg == "multisig setup succeeded":
		return string(escrow.StateCompleted)
	case l.Msg == "multisig setup failed":
		return string(escrow.StateFailed)
	case l.Msg == "lease acquired" && roundIndex(l.Round) > roundIndex(cur):
		return l.Round
	case l.Msg == "multisig setup started" && cur == "":
		return "CLAIMED"
	}
	return cur
}

// escrowRounds reads the worker's log and returns, for each escrow, how
// far it got on this worker ("" when the worker never saw it). Right after
// a SIGKILL this is where each escrow was when the worker died: the JSON log
// is written unbuffered.
func (w *workerProc) escrowRounds(ids []string) []string {
	progress := map[string]string{}
	f, err := os.Open(w.logPath)
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.EscrowID != "" {
				progress[l.EscrowID] = escrowProgress(progress[l.EscrowID], l)
			}
		}
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = progress[id]
		if out[i] == "" {
			out[i] = "QUEUED"
		}
	}
	return out
}

// waitRound follows the worker's log until a step of escrow id in round
// target or a later one leases its process, or the escrow is finished. It
// reports false after timeout or when the worker exits.
func (w *workerProc) waitRound(id, target string, timeout time.Duration) bool {
	f, err := os.Open(w.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	r := bufio.NewReader(f)
	deadline := time.Now().Add(timeout)
	var pending []byte
	cur := ""
	for {
		chunk, err := r.ReadBytes('\n')
		pending = append(pending, chunk...)
		if err != nil { // no complete line yet
			if time.Now().After(deadline) || !w.running() {
				return false
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var l logLine
		if json.Unmarshal(pending, &l) == nil && l.EscrowID == id {
			cur = escrowProgress(cur, l)
			if roundIndex(cur) >= roundIndex(target) {
				return true
			}
		}
		pending = pending[:0]
	}
}

// poolPIDs reads the worker's JSON log: the pids of its "wallet-rpc ready"
// lines minus those of its "wallet-rpc exited, restarting" lines, i.e. the
// wallet-rpc processes its pool currently runs (as far as it has logged).
func (w *workerProc) poolPIDs() map[int]bool {
	f, err := os.Open(w.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	pids := map[int]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.PID == 0 {
			continue
		}
		switch l.Msg {
		case "wallet-rpc ready":
			pids[l.PID] = true
		case "wallet-rpc exited, restarting":
			delete(pids, l.PID)
		}
	}
	return pids
}

// childrenGone waits (at most timeout) until every pid is gone and returns
// those still running.
func childrenGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if !testenv.ProcessGone(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
