package walletstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked: another process (or another Lock in this one) holds the
// directory's lock.
var ErrLocked = errors.New("walletstore: directory locked by another worker")

// Lock takes an exclusive, non-blocking flock on dir for as long as the
// returned unlock is not called (or the process lives): one worker per
// wallet dir, since a worker's start-up sweep removes files that another
// worker's processes have open. It fails with ErrLocked when the lock is
// held elsewhere.
func Lock(dir string) (unlock func() error, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("walletstore: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("walletstore: lock %s: %w", dir, err)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
