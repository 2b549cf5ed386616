// Package spawn starts child processes that cannot outlive this one.
//
// Linux delivers a child's parent-death signal (Pdeathsig) when the OS
// thread that forked it exits, not when the process does. The Go runtime
// destroys a thread whenever a goroutine locked to it returns, and any
// goroutine may be locked to a thread that earlier forked some child: a
// stopped pool, for one, used to take the Temporal dev server of a test down
// with it. So every child is forked from one goroutine locked, for the life
// of the process, to a thread that never exits.
package spawn

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

type request struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	once     sync.Once
	requests = make(chan request)
)

// Start starts cmd in its own process group with SIGKILL as its
// parent-death signal, from the package's spawner thread. Other fields of
// cmd.SysProcAttr are kept.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	once.Do(func() { go spawner() })
	done := make(chan error, 1)
	requests <- request{cmd: cmd, done: done}
	return <-done
}

func spawner() {
	runtime.LockOSThread() // never unlocked, never returns: the thread lives as long as the process
	for r := range requests {
		r.done <- r.cmd.Start()
	}
}
