package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
)

// diskFullSize is the default size of the disk-full trial's tmpfs. Every
// wallet copy is ~0.4 MB (mostly its cache), and each role keeps a working
// copy plus one snapshot per committing round until the escrow completes:
// two escrows at once peak at ~12 MB, end with 2.5 MB (three final
// snapshots each), and run out of 7 MiB around MAKING/EXCHANGING_1.
// EnvTmpfsKiB overrides it.
const diskFullSize = 7 << 20

// EnvTmpfsKiB overrides the size (KiB) of the disk-full trial's tmpfs.
const EnvTmpfsKiB = "ESCROWFLOW_CHAOS_TMPFS_KIB"

// whenString formats the escrows' states at a fault: "1:MAKING 2:CREATING".
func whenString(states []string) string {
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%d:%s", i+1, s)
	}
	return strings.Join(parts, " ")
}

// killRounds are the points a worker kill aims at: the moment a step of an
// escrow in one of these rounds has leased its wallet-rpc process, plus a
// random jitter within killJitter (none for the short rounds, which would
// be over before a jittered kill lands).
var (
	killRounds = []string{"CREATING", "PREPARING", "MAKING", "EXCHANGING_1", "EXCHANGING_2", "VERIFYING"}
	killJitter = map[string]time.Duration{"CREATING": time.Second, "MAKING": time.Second,
		"EXCHANGING_1": 500 * time.Millisecond, "EXCHANGING_2": 500 * time.Millisecond}
)

// roundIndex orders an escrow's progress as the setup goes through it.
func roundIndex(state string) int {
	for i, r := range killRounds {
		if state == r {
			return i
		}
	}
	switch state {
	case string(escrow.StateCompleted), string(escrow.StateFailed):
		return len(killRounds)
	case "CLAIMED":
		return -1
	}
	return -2
}

// trialWorkerKill starts the escrows staggered over a few seconds, picks
// one of them and a round at random, follows the worker's log until a step
// of that escrow in that round has leased its process, waits a random
// jitter, and SIGKILLs the worker by PID. It checks that the worker's
// wallet-rpc processes die with it and starts a new worker over the same
// wallet dir. The other escrows are wherever their head start put them;
// the log tells where each was at the kill.
func (h *harness) trialWorkerKill(t *testing.T, tr *trialResult) {
	t.Helper()
	w := h.mainWorker(t)
	escrows := ids(tr.n, tr.kind, h.cfg.escrows)
	victim := h.rng.IntN(len(escrows))
	target := killRounds[h.rng.IntN(len(killRounds))]
	var jitter time.Duration
	if j := killJitter[target]; j > 0 {
		jitter = time.Duration(h.rng.Int64N(int64(j)))
	}
	t0 := time.Now()
	h.startStaggered(t, escrows, 4*time.Second)()
	if !w.waitRound(escrows[victim], target, 3*time.Minute) {
		tr.notes = append(tr.notes, fmt.Sprintf("escrow %d never reached %s on this worker", victim+1, target))
	}
	time.Sleep(jitter)
	children := w.poolPIDs()
	w.kill(t)
	tr.when = whenString(w.escrowRounds(escrows))
	tr.notes = append(tr.notes, fmt.Sprintf("worker pid %d killed %.1fs after the first start (aimed at escrow %d in %s +%dms)",
		w.pid, time.Since(t0).Seconds(), victim+1, target, jitter.Milliseconds()))
	var pids []int
	for pid := range children {
		pids = append(pids, pid)
	}
	if alive := childrenGone(pids, 15*time.Second); len(alive) > 0 {
		tr.notes = append(tr.notes, fmt.Sprintf("wallet-rpc %v outlived the killed worker by 15 s", alive))
	}
	if temps := tempFiles(h.mainDir); len(temps) > 0 {
		tr.notes = append(tr.notes, fmt.Sprintf("the kill left %d temp files (FinishEscrow removes them)", len(temps)))
	}
	h.main = h.startWorker(t, h.mainDir)
	tr.outcomes = h.await(t, escrows, h.mainDir)
	tr.expectCompleted()
	h.check(tr, h.mainDir, h.main)
}

// cpuTicks returns the user+system CPU ticks of pid so far.
func cpuTicks(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	return u + st, err1 == nil && err2 == nil
}

// busyWalletRPCs returns w's wallet-rpc processes that use CPU right now
// (in the middle of a call), sampling for up to within.
func busyWalletRPCs(w *workerProc, within time.Duration) []int {
	deadline := time.Now().Add(within)
	for {
		before := map[int]uint64{}
		for _, p := range walletRPCsOver(w.dir) {
			if p.ppid != w.pid {
				continue
			}
			if ticks, ok := cpuTicks(p.pid); ok {
				before[p.pid] = ticks
			}
		}
		time.Sleep(150 * time.Millisecond)
		var busy []int
		for pid, t0 := range before {
			if t1, ok := cpuTicks(pid); ok && t1 > t0 {
				busy = append(busy, pid)
			}
		}
		if len(busy) > 0 || time.Now().After(deadline) {
			sort.Ints(busy)
			return busy
		}
	}
}

// trialWalletRPCKill waits until an escrow is in a busy round (CREATING,
// MAKING or EXCHANGING, drawn at random), then SIGKILLs one to three
// wallet-rpc processes that are in the middle of a call (they use CPU).
// The pool restarts them; the steps that used them fail, are retried and
// resume from their snapshots.
func (h *harness) trialWalletRPCKill(t *testing.T, tr *trialResult) {
	t.Helper()
	w := h.mainWorker(t)
	escrows := ids(tr.n, tr.kind, h.cfg.rpcKill)
	targets := []string{string(escrow.StateCreating), string(escrow.StateMaking), string(escrow.StateExchanging)}
	target := targets[h.rng.IntN(len(targets))]
	h.startStaggered(t, escrows, 3*time.Second)()
	if i, _ := h.waitAnyState(escrows, []string{target}, 3*time.Minute); i < 0 {
		tr.notes = append(tr.notes, "no escrow seen in "+target+"; killed at the next busy moment")
	}
	victims := busyWalletRPCs(w, 5*time.Second)
	states := h.states(escrows)
	idle := false
	if len(victims) == 0 {
		idle = true
		for pid := range w.poolPIDs() {
			victims = append(victims, pid)
		}
		sort.Ints(victims)
	}
	if len(victims) == 0 {
		tr.problem = "no wallet-rpc process of the worker found"
	} else {
		h.rng.Shuffle(len(victims), func(i, j int) { victims[i], victims[j] = victims[j], victims[i] })
		victims = victims[:1+h.rng.IntN(min(3, len(victims)))]
		sort.Ints(victims)
		var killed []int
		for _, pid := range victims {
			// Only a child of our worker: never a recycled pid.
			if parentPID(pid) != w.pid {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed = append(killed, pid)
			}
		}
		what := "busy"
		if idle {
			what = "idle (none busy)"
		}
		tr.notes = append(tr.notes, fmt.Sprintf("killed %s wallet-rpc pids %v", what, killed))
		if len(killed) == 0 {
			tr.problem = "no wallet-rpc process could be killed"
		}
		states = append(states, fmt.Sprintf("(%d %s wallet-rpc killed)", len(killed), strings.Fields(what)[0]))
	}
	tr.when = whenString(states[:len(escrows)]) + " " + strings.Join(states[len(escrows):], " ")
	tr.outcomes = h.await(t, escrows, h.mainDir)
	// The pool replaced the killed processes.
	if got := len(w.poolPIDs()); got != h.cfg.poolSize {
		tr.notes = append(tr.notes, fmt.Sprintf("pool runs %d wallet-rpc processes after the trial, want %d", got, h.cfg.poolSize))
	}
	tr.expectCompleted()
	h.check(tr, h.mainDir, w)
}

// trialTemporalRestart restarts the Temporal dev server (stop by PID, start
// on the same ports with the same database file) while escrows are in
// MAKING or EXCHANGING. The worker is not touched: it must reconnect by
// itself, shown by its escrows completing and by an escrow started after the
// restart completing, with the same worker process.
func (h *harness) trialTemporalRestart(t *testing.T, tr *trialResult) {
	t.Helper()
	w := h.mainWorker(t)
	pid := w.pid
	escrows := ids(tr.n, tr.kind, 2)
	targets := []string{string(escrow.StateMaking), string(escrow.StateExchanging)}
	target := targets[h.rng.IntN(len(targets))]
	h.startStaggered(t, escrows, 2*time.Second)()
	h.waitAnyState(escrows, []string{target}, 3*time.Minute)
	tr.when = whenString(h.states(escrows))
	oldPID := h.tp.PID
	down := h.tp.Restart(t)
	tr.notes = append(tr.notes, fmt.Sprintf("temporal pid %d stopped, pid %d serving on %s after %s", oldPID, h.tp.PID, h.tp.HostPort, down.Round(100*time.Millisecond)))
	how := "its escrows completed"
	if h.cfg.probe {
		after := fmt.Sprintf("t%02d-tr-after", tr.n)
		h.start(t, after)
		escrows = append(escrows, after)
		how += ", and escrow " + after + " started after the restart"
	}
	tr.outcomes = h.await(t, escrows, h.mainDir)
	if !w.running() || h.main != w || w.pid != pid {
		tr.problem = fmt.Sprintf("worker pid %d did not survive the server restart", pid)
	} else {
		tr.notes = append(tr.notes, fmt.Sprintf("worker pid %d kept running and reconnected by itself (%s)", pid, how))
	}
	tr.expectCompleted()
	h.check(tr, h.mainDir, w)
}

// tmpfsRun is a trial over a tmpfs wallet dir and the worker over it.
type tmpfsRun struct {
	d    *tmpfsDir
	w    *workerProc
	stop chan struct{}
	wg   sync.WaitGroup
}

// tmpfsTrial mounts a tmpfs of size, stops the main worker and starts one
// over the tmpfs. It returns nil (and marks the trial not run) when
// mounting is not permitted; under CI=true that fails the test.
func (h *harness) tmpfsTrial(t *testing.T, tr *trialResult, size int64) *tmpfsRun {
	t.Helper()
	base := filepath.Join(h.baseDir, fmt.Sprintf("tmpfs-%02d", tr.n))
	d, err := mountTmpfs(base, size)
	if err != nil {
		tr.notRun = "cannot mount a tmpfs here: " + err.Error()
		if testenv.InCI() {
			t.Errorf("chaos: trial %d (%s): %s; under CI=true this is a failure", tr.n, tr.kind, tr.notRun)
		}
		return nil
	}
	t.Cleanup(func() { _ = d.unmount() })
	h.stopMainWorker(t)
	r := &tmpfsRun{d: d, w: h.startWorker(t, d.wallets), stop: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		h.snaps.watch(d.wallets, 500*time.Millisecond, r.stop)
	}()
	return r
}

// finish stops the worker over the tmpfs, checks that no wallet-rpc
// process outlived it and unmounts the tmpfs.
func (r *tmpfsRun) finish(t *testing.T, tr *trialResult) {
	t.Helper()
	close(r.stop)
	r.wg.Wait()
	r.w.stop(t)
	if orph := orphans(r.d.wallets, nil, 15*time.Second); len(orph) > 0 {
		tr.orphans += len(orph)
		tr.notes = append(tr.notes, fmt.Sprintf("wallet-rpc %v still running after its worker stopped", orph))
	}
	if err := r.d.unmount(); err != nil {
		tr.notes = append(tr.notes, err.Error())
	}
}

// failedRounds describes, per escrow, the round and role in which it failed
// (from the status query) or its final state.
func (h *harness) failedRounds(escrows []string) string {
	states := make([]string, len(escrows))
	for i, id := range escrows {
		st, err := h.statusOf(id)
		if err != nil {
			states[i] = "?"
			continue
		}
		states[i] = describeState(st)
		if st.State != escrow.StateFailed {
			continue
		}
		if len(st.Roles) == 0 {
			states[i] = "claim" // failed before any wallet step
		}
		for _, role := range escrow.Roles {
			if rs, ok := st.Roles[role]; ok && rs.Step == "failed" {
				states[i] = fmt.Sprintf("%s(%s)", rs.Round, role)
				break
			}
		}
	}
	return whenString(states)
}

// trialDiskFull runs escrows over a tmpfs too small for them: the setup
// runs out of space part-way and must end FAILED with a type (DiskFull is
// the right one; an escrow that still fits completes), nothing stuck, no
// committed snapshot touched.
func (h *harness) trialDiskFull(t *testing.T, tr *trialResult) {
	t.Helper()
	size := h.cfg.tmpfsFull
	if v := os.Getenv(EnvTmpfsKiB); v != "" {
		if kib, err := strconv.ParseInt(v, 10, 64); err == nil && kib > 0 {
			size = kib << 10
		}
	}
	r := h.tmpfsTrial(t, tr, size)
	if r == nil {
		return
	}
	defer r.finish(t, tr)
	escrows := ids(tr.n, tr.kind, 2)
	// Track the peak usage while the escrows run.
	var peak int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if used, _ := r.d.usage(); used > peak {
				peak = used
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	h.startStaggered(t, escrows, 0)()
	tr.outcomes = h.await(t, escrows, r.d.wallets)
	close(stop)
	wg.Wait()
	tr.when = "ran out at " + h.failedRounds(escrows)
	used, total := r.d.usage()
	tr.notes = append(tr.notes, fmt.Sprintf("tmpfs %d KiB: peak %d KiB used, %d KiB at the end", total>>10, peak>>10, used>>10))
	failed := 0
	for _, o := range tr.outcomes {
		if !o.completed && !o.stuck {
			failed++
		}
	}
	if failed == 0 {
		tr.notes = append(tr.notes, "every escrow fitted: no disk-full failure (tmpfs too big for this run)")
	}
	tr.expectType(escrow.TypeDiskFull)
	h.parkedCheck(tr, r.d.wallets)
	h.check(tr, r.d.wallets, r.w)
}

// parkedCheck notes, for every escrow of the trial that failed, whether its
// wallets were parked (<escrowId>.parked.json).
func (h *harness) parkedCheck(tr *trialResult, dir string) {
	var parked, notParked []string
	for _, o := range tr.outcomes {
		if o.completed || o.stuck {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, o.id+".parked.json")); err == nil {
			parked = append(parked, o.id)
		} else {
			notParked = append(notParked, o.id)
		}
	}
	if len(parked) > 0 {
		tr.notes = append(tr.notes, fmt.Sprintf("parked: %v", parked))
	}
	if len(notParked) > 0 {
		tr.notes = append(tr.notes, fmt.Sprintf("no parked.json (the dir refused it): %v", notParked))
	}
}

// killQuiescent freezes the worker (SIGSTOP) and SIGKILLs it at a moment
// when it has no walletstore temp file in flight (at most within; it
// resumes it briefly between tries). It returns the temp files present at
// the kill.
func (w *workerProc) killQuiescent(t *testing.T, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_ = syscall.Kill(w.pid, syscall.SIGSTOP)
		for i := 0; i < 100 && !stopped(w.pid); i++ {
			time.Sleep(5 * time.Millisecond)
		}
		temps := tempFiles(w.dir)
		if len(temps) == 0 || time.Now().After(deadline) {
			w.kill(t)
			return temps
		}
		_ = syscall.Kill(w.pid, syscall.SIGCONT)
		time.Sleep(50 * time.Millisecond)
	}
}

// stopped reports whether pid is in the stopped state (T).
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}

// trialReadOnly makes the tmpfs wallet dir read-only (mount -o
// remount,ro; as root, chmod would not stop anything) under escrows in
// MAKING or EXCHANGING. The kernel refuses a read-only remount while a file
// on it is open for writing, and monero-wallet-rpc holds every open
// wallet's NAME.keys open read-write, so the trial
//
//  1. shows that refusal (live remount: EBUSY);
//  2. freezes and kills the worker (its wallet-rpc processes die with it)
//     at a moment without temp files in flight, and remounts read-only;
//  3. checks that a worker does not start over the read-only dir (it
//     makes its wallet dir 0700 first), notes what it said;
//  4. remounts read-write, starts a worker and, as soon as it runs and
//     before a retried step has reopened a wallet, remounts read-only:
//     the dir turns read-only under a running worker.
//
// The escrows, and one started afterwards, must end FAILED with a type
// (WalletDirUnwritable), never stuck.
func (h *harness) trialReadOnly(t *testing.T, tr *trialResult) {
	t.Helper()
	r := h.tmpfsTrial(t, tr, 256<<20)
	if r == nil {
		return
	}
	defer r.finish(t, tr)
	escrows := ids(tr.n, tr.kind, 2)
	targets := []string{string(escrow.StateMaking), string(escrow.StateExchanging)}
	target := targets[h.rng.IntN(len(targets))]
	h.startStaggered(t, escrows, 2*time.Second)()
	h.waitAnyState(escrows, []string{target}, 3*time.Minute)
	tr.when = whenString(h.states(escrows))
	if err := r.d.remountRO(); err == nil {
		tr.notes = append(tr.notes, "live remount read-only succeeded")
	} else {
		tr.notes = append(tr.notes, fmt.Sprintf("live remount refused (%v): %d files open for writing", err, len(openFilesUnder(r.d.mnt))))
		if temps := r.w.killQuiescent(t, 10*time.Second); len(temps) > 0 {
			tr.notes = append(tr.notes, fmt.Sprintf("temp files in flight at the kill: %v", temps))
		}
		var pids []int
		for pid := range r.w.poolPIDs() {
			pids = append(pids, pid)
		}
		childrenGone(pids, 15*time.Second)
		if err := retryRemount(r.d.remountRO, 15*time.Second); err != nil {
			tr.problem = fmt.Sprintf("mount -o remount,ro after the kill: %v; open files: %v", err, openFilesUnder(r.d.mnt))
		} else if w, err := h.tryStartWorker(t, r.d.wallets); err == nil {
			r.w = w
			tr.notes = append(tr.notes, "a worker ran over the read-only dir")
		} else {
			// The last line of the log the error quotes is the worker's own.
			lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
			tr.notes = append(tr.notes, "a worker over the read-only dir refuses to start: "+lines[len(lines)-1])
			if err := r.d.remountRW(); err != nil {
				tr.problem = "mount -o remount,rw: " + err.Error()
			}
			r.w = h.startWorker(t, r.d.wallets)
			if err := retryRemount(r.d.remountRO, 10*time.Second); err != nil {
				tr.problem = fmt.Sprintf("mount -o remount,ro under the new worker: %v; open files: %v", err, openFilesUnder(r.d.mnt))
			} else {
				tr.notes = append(tr.notes, fmt.Sprintf("remounted read-only %.1fs after the new worker came up", time.Since(r.w.startedAt).Seconds()))
			}
		}
		tr.when += " (worker killed; dir read-only under a new worker)"
	}
	after := fmt.Sprintf("t%02d-ro-after", tr.n)
	h.start(t, after)
	escrows = append(escrows, after)
	tr.outcomes = h.await(t, escrows, r.d.wallets)
	for _, o := range tr.outcomes {
		if o.completed {
			tr.notes = append(tr.notes, o.id+" completed before the dir turned read-only")
		}
	}
	tr.expectType(escrow.TypeWalletDirUnwritable)
	tr.notes = append(tr.notes, "failed in "+h.failedRounds(escrows))
	h.parkedCheck(tr, r.d.wallets)
	h.check(tr, r.d.wallets, r.w)
}

// retryRemount calls remount until it succeeds or within has passed (the
// kernel answers EBUSY while a file is open for writing).
func retryRemount(remount func() error, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := remount()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
