package spawn

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestChildOutlivesCallerThread calls Start from a goroutine locked to its
// thread and lets that goroutine return, so the runtime destroys the
// caller's thread. Had the caller's thread forked the child, the child would
// get its parent-death SIGKILL now (as it does with a plain cmd.Start); it
// must still run.
func TestChildOutlivesCallerThread(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	started := make(chan error, 1)
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 10, "no goroutine off the main thread")
		onMain := make(chan bool, 1)
		go func() {
			runtime.LockOSThread() // returns locked: this thread is destroyed
			// The main thread is never destroyed, only parked: try again.
			if syscall.Gettid() == syscall.Getpid() {
				onMain <- true
				return
			}
			onMain <- false
			started <- Start(cmd)
		}()
		if !<-onMain {
			break
		}
	}
	require.NoError(t, <-started)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.True(t, cmd.SysProcAttr.Setpgid)
	require.Equal(t, syscall.SIGKILL, cmd.SysProcAttr.Pdeathsig)

	time.Sleep(300 * time.Millisecond)
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	require.NoError(t, err)
	require.Zero(t, pid, "child exited: %v", ws)
}
