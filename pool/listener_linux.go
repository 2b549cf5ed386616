package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// errPortTaken: the port the child was to listen on is bound by another
// process.
var errPortTaken = errors.New("its port is bound by another process")

// awaitOwnListener waits until a socket listens on 127.0.0.1:port and
// checks that it is one of pid's descriptors (its inode, from
// /proc/net/tcp, among /proc/<pid>/fd). It fails with errPortTaken when
// another process holds the listening socket, with errExited when the
// child exits first.
func (p *Pool) awaitOwnListener(ctx context.Context, pid, port int, exited <-chan struct{}) error {
	for {
		inode, err := listenerInode(port)
		if err != nil {
			return err
		}
		if inode != 0 {
			if ownsSocket(pid, inode) {
				return nil
			}
			// The child may not have bound yet while a stranger has; a
			// child that cannot bind exits, one that could is ours.
			select {
			case <-exited:
				return fmt.Errorf("%w: %w", errExited, errPortTaken)
			default:
			}
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			if inode != 0 {
				return fmt.Errorf("%w: %w", errPortTaken, ctx.Err())
			}
			return fmt.Errorf("did not listen: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listenerInode returns the inode of the TCP socket listening on
// 127.0.0.1:port, or 0 when there is none.
func listenerInode(port int) (uint64, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, fmt.Errorf("listener check: %w", err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[1] != want || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		return strconv.ParseUint(fields[9], 10, 64)
	}
	return 0, sc.Err()
}

// ownsSocket reports whether socket inode is among pid's descriptors.
func ownsSocket(pid int, inode uint64) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := fmt.Sprintf("socket:[%d]", inode)
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == want {
			return true
		}
	}
	return false
}
