package walletstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Fault-injection and portability hooks. They are package variables only so
// that tests can replace them; production code never reassigns them.
var (
	// newWriter returns the writer that file contents are streamed into.
	// Tests swap it for a writer that fails after N bytes with ENOSPC.
	newWriter = func(f *os.File) io.Writer { return f }

	// linkFile creates dst as a new hard link to src and fails with
	// EEXIST if dst exists. Tests swap it to simulate file systems
	// without hard-link support.
	linkFile = os.Link
)

const (
	filePerm os.FileMode = 0o600
	dirPerm  os.FileMode = 0o700
)

// IsDiskFull reports whether err (or anything it wraps) says that the file
// system ran out of space (ENOSPC) or the user ran out of quota (EDQUOT).
// Every write error returned by this package keeps the underlying errno in
// its chain, so callers can tell "disk full, free space and retry" apart from
// corruption or programming errors.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// MinFree is the free space below which DirFault calls a wallet dir full:
// a little more than two copies of a wallet on testnet (≈ 0.4 MB each).
const MinFree = 1 << 20

// DirFault tells whether the file system under dir can no longer take
// wallet writes: it returns an error wrapping syscall.EROFS when it is
// mounted read-only, one wrapping syscall.ENOSPC when fewer than MinFree
// bytes are free to unprivileged users, and nil otherwise (also when statfs
// itself fails). Call it after a write by another program (monero-wallet-rpc)
// failed, to tell a disk fault from that program's own refusal.
func DirFault(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	if st.Flags&stRdonly != 0 {
		return fmt.Errorf("walletstore: wallet dir %s: %w", dir, syscall.EROFS)
	}
	if free := st.Bavail * uint64(st.Bsize); free < MinFree {
		return fmt.Errorf("walletstore: wallet dir %s has %d bytes free: %w", dir, free, syscall.ENOSPC)
	}
	return nil
}

// stRdonly is ST_RDONLY of statfs(2)'s f_flags.
const stRdonly = 0x1

// AtomicWriteFile writes data to path so that readers (and a crash) observe
// either the complete old content or the complete new content, never a
// mixture or a truncated file: temp file in the same directory, write,
// chmod perm, fsync, close, rename over path, fsync the directory (so the
// new name survives a crash). It MAY replace an existing file; use
// AtomicCreateFile where an existing file must never be overwritten (the
// snapshot manifests written by Store.Snapshot use that variant).
//
// On failure the temporary file is removed and path is left untouched,
// except when only the final directory fsync fails: the rename has then
// already happened and cannot be undone, so path holds the new content but
// its durability is unknown. Errors name the failing step and wrap the
// cause (see IsDiskFull).
func AtomicWriteFile(path string, data []byte, perm os.FileMode) error {
	if _, err := writeAtomicBytes(path, data, perm, true); err != nil {
		return fmt.Errorf("walletstore: write %s: %w", path, err)
	}
	return nil
}

// AtomicCreateFile is the no-replace variant of AtomicWriteFile: it
// publishes the fsynced temporary file with a hard link (see CopyAtomic for
// why link and not rename), so it fails with an error wrapping ErrExists if
// path already exists and never overwrites it. On any failure path is left
// absent.
func AtomicCreateFile(path string, data []byte, perm os.FileMode) error {
	if _, err := writeAtomicBytes(path, data, perm, false); err != nil {
		return fmt.Errorf("walletstore: create %s: %w", path, err)
	}
	return nil
}

func writeAtomicBytes(path string, data []byte, perm os.FileMode, replace bool) (writeResult, error) {
	return writeAtomic(bytes.NewReader(data), path, perm, replace, nil)
}

type writeResult struct {
	size int64
	sum  string
	info os.FileInfo // identity of the committed file, for safe rollback
}

// stepError labels which step of an atomic write failed.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func step(name string, err error) error { return &stepError{step: name, err: err} }

// recordingWriter remembers the first error of the underlying writer so a
// failed io.Copy can be attributed to the read or the write side.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// writeAtomic streams r into a temp file next to dst and publishes it as dst,
// either replacing (rename) or not (link). check, if not nil, is called
// after the data is synced and before it is published; a non-nil result
// aborts the write. On error nothing new remains at dst or at the temp path.
//
// Without replace, the write is all-or-nothing and never overwrites (dstPath
// is dst):
//
//  1. the data is streamed into a temporary file created next to dstPath
//     (same directory, so same file system) named
//     "." + base(dstPath) + ".<random>.tmp" with mode 0600;
//  2. the temporary file is fsynced and closed, so its data is on stable
//     storage before it gets its final name;
//  3. it is published under dstPath with a hard link (link(2)), not with
//     rename(2). rename silently replaces an existing target, so two
//     racing writers could clobber each other's committed file; link
//     fails with EEXIST instead, so an existing dstPath – in particular a
//     committed wallet file – is never replaced, even by a concurrent
//     process. The temporary name is then removed;
//  4. the directory is fsynced. A file's name lives in its directory, not
//     in the file: without this step a power loss right after a
//     "successful" copy can make dstPath vanish (or, for the rename
//     fallback, reappear as the old state), although the data blocks were
//     synced.
//
// If the file system does not support hard links (link fails with EPERM,
// ENOTSUP/EOPNOTSUPP or ENOSYS, as on FAT), writeAtomic without replace
// falls back to checking that dstPath does not exist and renaming the
// temporary file onto it. That fallback has a small check-then-rename race window in which a
// concurrent writer of the same dstPath could be replaced; wallet
// directories should live on a POSIX file system where this never happens.
//
// If dstPath already exists the error wraps ErrExists and nothing is written.
// On any other failure the temporary file is removed, dstPath is left absent
// (if writeAtomic had already published it, for example when the final
// directory fsync fails, it removes it again, but only if it is still the
// file it created), and the returned error names the failing step ("open",
// "create-temp", "read", "write", "fsync", "close", "link", "rename",
// "fsync-dir", ...) and wraps the underlying error, e.g. syscall.ENOSPC
// (see IsDiskFull). A partially written dstPath is never visible.
func writeAtomic(r io.Reader, dst string, perm os.FileMode, replace bool, check func(size int64, sum string) error) (res writeResult, err error) {
	dir, base := filepath.Dir(dst), filepath.Base(dst)
	if !replace {
		if err := mustNotExist(dst); err != nil {
			return res, err
		}
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return res, step("create-temp", err)
	}
	tmp := f.Name()
	closed, published := false, false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
		if published && res.info != nil {
			removeIfSame(dst, res.info)
			_ = syncDir(dir)
		}
	}()

	if err = f.Chmod(perm); err != nil {
		return res, step("chmod", err)
	}
	h := sha256.New()
	rw := &recordingWriter{w: newWriter(f)}
	n, err := io.Copy(io.MultiWriter(rw, h), r)
	if err != nil {
		if rw.err != nil {
			return res, step("write", err)
		}
		return res, step("read", err)
	}
	if err = f.Sync(); err != nil {
		return res, step("fsync", err)
	}
	info, err := f.Stat()
	if err != nil {
		return res, step("stat", err)
	}
	closed = true
	if err = f.Close(); err != nil {
		return res, step("close", err)
	}
	res.size, res.sum, res.info = n, hex.EncodeToString(h.Sum(nil)), info
	if check != nil {
		if err = check(res.size, res.sum); err != nil {
			return res, step("verify", err)
		}
	}

	if replace {
		if err = os.Rename(tmp, dst); err != nil {
			return res, step("rename", err)
		}
		// The temp name is gone; nothing to roll back after this point.
		if err = syncDir(dir); err != nil {
			return res, step("fsync-dir", err)
		}
		return res, nil
	}

	if err = publishNoReplace(tmp, dst); err != nil {
		return res, err
	}
	published = true
	if err = os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, step("remove-temp", err)
	}
	if err = syncDir(dir); err != nil {
		return res, step("fsync-dir", err)
	}
	return res, nil
}

// publishNoReplace gives the complete temp file the name dst without ever
// replacing an existing dst: link(2) fails with EEXIST if dst exists.
func publishNoReplace(tmp, dst string) error {
	err := linkFile(tmp, dst)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrExists, dst)
	}
	if !linkUnsupported(err) {
		return step("link", err)
	}
	// Fallback for file systems without hard links: check, then rename.
	// Not race-free against a concurrent writer of the same dst.
	if err := mustNotExist(dst); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return step("rename", err)
	}
	return nil
}

func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOSYS)
}

func mustNotExist(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrExists, path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return step("stat", err)
	}
}

// removeIfSame removes path only if it is still the file described by info,
// so a rollback never deletes a file this package did not create.
func removeIfSame(path string, info os.FileInfo) {
	cur, err := os.Lstat(path)
	if err != nil || !os.SameFile(cur, info) {
		return
	}
	_ = os.Remove(path)
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

func checkRegular(f *os.File, path string) error {
	info, err := f.Stat()
	if err != nil {
		return step("stat", err)
	}
	if !info.Mode().IsRegular() {
		return step("open", fmt.Errorf("%s is not a regular file (mode %v)", path, info.Mode()))
	}
	return nil
}
