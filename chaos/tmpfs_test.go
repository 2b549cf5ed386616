package chaos

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tmpfsDir is a small tmpfs mounted for one trial as a worker's wallet dir.
//
// The worker keeps its wallet-rpc processes' logs and shared ring database
// in <wallet dir>/.walletrpc. Here that name is a symlink to a directory
// on the ordinary disk, so that only wallet files use the tmpfs (the run
// decides how full it gets) and so that the open log files do not keep the
// tmpfs from being remounted read-only (the kernel refuses that with EBUSY
// while a file on it is open for writing).
type tmpfsDir struct {
	mnt     string // mount point
	wallets string // the worker's wallet dir: mnt/wallets
	runDir  string // where mnt/wallets/.walletrpc points
	mounted bool
}

// mountTmpfs mounts a tmpfs of size bytes on base/mnt (mode 0700) and
// prepares the wallet dir. It returns an error when mounting is not
// permitted (not root, or a container without CAP_SYS_ADMIN).
func mountTmpfs(base string, size int64) (*tmpfsDir, error) {
	d := &tmpfsDir{mnt: filepath.Join(base, "mnt"), runDir: filepath.Join(base, "walletrpc")}
	d.wallets = filepath.Join(d.mnt, "wallets")
	for _, p := range []string{d.mnt, d.runDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("size=%d,mode=0700", size)
	if err := syscall.Mount("tmpfs", d.mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("mount -t tmpfs -o %s %s: %w", opts, d.mnt, err)
	}
	d.mounted = true
	if err := os.Mkdir(d.wallets, 0o700); err != nil {
		_ = d.unmount()
		return nil, err
	}
	if err := os.Symlink(d.runDir, filepath.Join(d.wallets, ".walletrpc")); err != nil {
		_ = d.unmount()
		return nil, err
	}
	return d, nil
}

// remountRO makes the tmpfs read-only (mount -o remount,ro): as root,
// chmod alone would not stop the worker from writing.
func (d *tmpfsDir) remountRO() error {
	return syscall.Mount("tmpfs", d.mnt, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV, "")
}

// remountRW makes it writable again.
func (d *tmpfsDir) remountRW() error {
	return syscall.Mount("tmpfs", d.mnt, "tmpfs", syscall.MS_REMOUNT|syscall.MS_NOSUID|syscall.MS_NODEV, "")
}

// usage returns the bytes used and the size of the file system.
func (d *tmpfsDir) usage() (used, total int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.mnt, &st); err != nil {
		return 0, 0
	}
	total = int64(st.Blocks) * st.Bsize
	return total - int64(st.Bfree)*st.Bsize, total
}

// unmount unmounts the tmpfs, retrying for a few seconds while it is busy
// and detaching it lazily as a last resort.
func (d *tmpfsDir) unmount() error {
	if !d.mounted {
		return nil
	}
	var err error
	for range 20 {
		if err = syscall.Unmount(d.mnt, 0); err == nil || errors.Is(err, syscall.EINVAL) {
			d.mounted = false
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	if derr := syscall.Unmount(d.mnt, syscall.MNT_DETACH); derr == nil {
		d.mounted = false
		return fmt.Errorf("unmount %s: %w (detached lazily)", d.mnt, err)
	}
	return fmt.Errorf("unmount %s: %w", d.mnt, err)
}

// openFilesUnder lists the open file descriptors of every process that
// point under dir, as "pid:fd path flags=0NNN" (for diagnosing a remount
// that the kernel refuses with EBUSY).
func openFilesUnder(dir string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(target, dir) {
				continue
			}
			flags := ""
			if b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "fdinfo", fd.Name())); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "flags:"); ok {
						flags = strings.TrimSpace(v)
					}
				}
			}
			out = append(out, fmt.Sprintf("%s:%s %s flags=%s", p.Name(), fd.Name(), target, flags))
		}
	}
	return out
}
