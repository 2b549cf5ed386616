package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture this runs on).
const ClockTicks = 100

// ProcStat is the part of /proc/<pid>/stat the bench uses.
type ProcStat struct {
	PID, PPID    int
	Comm         string
	UTime, STime uint64 // clock ticks
}

// CPU is the process's user + system time.
func (s ProcStat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * time.Second / ClockTicks
}

// ParseStat parses the contents of /proc/<pid>/stat. The command name is
// in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func ParseStat(b []byte) (ProcStat, error) {
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return ProcStat{}, errors.New("proc stat: no command name")
	}
	var s ProcStat
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: pid: %w", err)
	}
	s.PID, s.Comm = pid, string(b[open+1:closing])
	// Fields after the name, numbered as in proc(5): 3 state, 4 ppid, …,
	// 14 utime, 15 stime.
	f := strings.Fields(string(b[closing+1:]))
	if len(f) < 13 {
		return ProcStat{}, fmt.Errorf("proc stat: %d fields after the name, want at least 13", len(f))
	}
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	if s.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	if s.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	return s, nil
}

// ParseVmHWM returns the VmHWM line (peak resident set size) of
// /proc/<pid>/status in KiB.
func ParseVmHWM(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status: VmHWM %q", rest)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, errors.New("proc status: no VmHWM")
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (ProcStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, err
	}
	return ParseStat(b)
}

// ReadVmHWM reads the peak resident set size of pid in KiB.
func ReadVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseVmHWM(b)
}

// Children lists the running processes whose parent is ppid.
func Children(ppid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := ReadStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		if st.PPID == ppid {
			out = append(out, pid)
		}
	}
	return out, nil
}

// SelfCPU returns the user + system time of this process (all threads).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUTracker measures the CPU time a set of processes uses between a
// baseline and a final sample, and their peak RSS. A process missing from
// the baseline (started later) counts from zero.
type CPUTracker struct {
	base map[int]time.Duration
}

// Baseline records the CPU time of pids so far.
func (t *CPUTracker) Baseline(pids []int) {
	t.base = map[int]time.Duration{}
	for _, pid := range pids {
		if st, err := ReadStat(pid); err == nil {
			t.base[pid] = st.CPU()
		}
	}
}

// Sample returns the CPU time pids used since the baseline, summed, and
// their largest VmHWM in KiB. Call it before the processes exit.
func (t *CPUTracker) Sample(pids []int) (cpu time.Duration, peakKiB int64) {
	for _, pid := range pids {
		st, err := ReadStat(pid)
		if err != nil {
			continue
		}
		cpu += max(st.CPU()-t.base[pid], 0)
		if hwm, err := ReadVmHWM(pid); err == nil {
			peakKiB = max(peakKiB, hwm)
		}
	}
	return cpu, peakKiB
}
