// Package walletstore is the atomic, crash-safe store of Monero wallet files
// for escrowflow.
//
// A wallet NAME lives in one flat directory as up to three files:
//
//	NAME              the wallet cache (optional for Snapshot)
//	NAME.keys         the encrypted spend/view keys (required; it defines
//	                  whether the wallet exists)
//	NAME.address.txt  the primary address (optional)
//
// A snapshot is a wallet that additionally has a manifest NAME.sha256 (JSON,
// see Manifest) listing the size and SHA-256 of each of its files. The
// manifest is written last and atomically, so a snapshot is committed if
// and only if its manifest exists; files without a manifest are the
// leftovers of an interrupted Snapshot and are never trusted by Restore.
//
// These files guard real money, so every write in this package follows the
// same rules: data goes to a temporary file in the same directory, is
// fsynced, and is only then published under its final name; publishing
// uses link(2) where an existing file must not be replaced (rename(2)
// silently replaces); and the directory is fsynced afterwards so the new
// name itself survives a power loss. Files are created 0600 and
// directories 0700. Temporary files are named "." + TARGET + ".<digits>.tmp"
// and can be cleaned up with Store.RemoveTemps, which also removes the
// "NAME.new" and "NAME.keys.new" files monero-wallet-rpc leaves when a save
// of its own fails half-way.
//
// The store does not lock the source wallet: callers must make sure a
// wallet is not being written (e.g. it is closed in monero-wallet-rpc)
// while it is snapshotted.
package walletstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors. Errors returned by this package wrap them with context
// (the offending name or file); match them with errors.Is.
var (
	// ErrInvalidName: a wallet name failed ValidateName. Nothing was
	// touched on disk.
	ErrInvalidName = errors.New("walletstore: invalid wallet name")
	// ErrExists: the destination (or one of its files) already exists.
	// Existing files are never modified or removed.
	ErrExists = errors.New("walletstore: already exists")
	// ErrNotFound: the source wallet or snapshot does not exist.
	ErrNotFound = errors.New("walletstore: not found")
	// ErrCorrupt: a snapshot does not match its manifest (wrong size or
	// hash, missing or unexpected file), or its manifest is missing or
	// unreadable. Corrupt data is never published by Restore.
	ErrCorrupt = errors.New("walletstore: corrupt snapshot")
)

// File name suffixes of a wallet NAME inside the store directory.
const (
	// CacheSuffix is the suffix of the wallet cache file: the file is NAME.
	CacheSuffix = ""
	// KeysSuffix is the suffix of the keys file, NAME.keys. Its presence
	// defines that wallet NAME exists.
	KeysSuffix = ".keys"
	// AddressSuffix is the suffix of the address file, NAME.address.txt.
	AddressSuffix = ".address.txt"
	// ManifestSuffix is the suffix of a snapshot manifest, NAME.sha256.
	// Its presence defines that snapshot NAME is committed.
	ManifestSuffix = ".sha256"
)

// walletSuffixes is the canonical order in which wallet files are copied.
// The keys file goes first: publishing it claims the destination name, so of
// several concurrent writers of the same destination exactly one proceeds.
var walletSuffixes = []string{KeysSuffix, CacheSuffix, AddressSuffix}

// maxNameLen is the longest valid wallet name, in bytes. With the longest
// suffix and the temp-file decoration the file name stays below 255 bytes.
const maxNameLen = 200

// maxManifestSize bounds how much of a manifest file is read.
const maxManifestSize = 1 << 20

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// ValidateName checks that name is a safe wallet name: 1 to 200 ASCII
// characters from [A-Za-z0-9._-], starting with a letter or digit, without
// "..", path separators or NUL, and not ending in a suffix this package
// uses (".keys", ".address.txt", ".sha256", ".tmp"), so that no two valid
// names can ever share a file and no name can escape the store directory.
// The returned error wraps ErrInvalidName and quotes the value (%q).
// Every Store method validates its names before touching the disk.
func ValidateName(name string) error {
	reason := ""
	switch {
	case name == "":
		reason = "empty"
	case len(name) > maxNameLen:
		reason = fmt.Sprintf("longer than %d bytes", maxNameLen)
	case strings.ContainsAny(name, "/\\\x00"):
		reason = "contains a path separator or NUL"
	case strings.Contains(name, ".."):
		reason = `contains ".."`
	case !nameRE.MatchString(name):
		reason = "must match " + nameRE.String()
	default:
		for _, suf := range []string{KeysSuffix, AddressSuffix, ManifestSuffix, ".tmp"} {
			if strings.HasSuffix(name, suf) {
				reason = fmt.Sprintf("ends in reserved suffix %q", suf)
				break
			}
		}
	}
	if reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, reason)
	}
	return nil
}

// FileSum records one file of a snapshot.
type FileSum struct {
	// File is the suffix of the file relative to the wallet name: ""
	// (cache), ".keys" or ".address.txt".
	File string `json:"file"`
	// Size is the file size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the file content.
	SHA256 string `json:"sha256"`
}

// Manifest is the content of NAME.sha256, the commit record of snapshot
// NAME. It lists exactly the files the snapshot has (the keys file always,
// the cache and address files when the source had them).
type Manifest struct {
	// Name is the snapshot's wallet name.
	Name string `json:"name"`
	// Source is the name of the wallet the snapshot was taken from.
	Source string `json:"source"`
	// Files lists the snapshot's files in the order keys, cache, address.
	Files []FileSum `json:"files"`
	// Created is when the snapshot was taken (UTC).
	Created time.Time `json:"created"`
}

// Store is a directory of wallet files. All methods are safe for
// concurrent use, also by several processes: correctness relies on the
// file system's atomic link/rename, not on in-process locks.
type Store struct {
	dir string
}

// Open returns the store in dir, creating dir (and missing parents) with
// mode 0700 if it does not exist. It fails if dir exists but is not a
// directory. The permissions of an existing directory are left alone:
// it is the operator's job to keep the wallet directory private (0700).
// dir is made absolute, so later changes of the working directory do not
// matter.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("walletstore: open: empty directory path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("walletstore: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("walletstore: open %s: %w", abs, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("walletstore: open %s: %w", abs, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("walletstore: open %s: not a directory", abs)
	}
	return &Store{dir: abs}, nil
}

// Dir returns the absolute path of the store directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name, suffix string) string {
	return filepath.Join(s.dir, name+suffix)
}

// Exists reports whether wallet name exists, i.e. whether NAME.keys is
// present. It does not say whether name is a committed snapshot.
func (s *Store) Exists(name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	_, err := os.Lstat(s.path(name, KeysSuffix))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("walletstore: exists %q: %w", name, err)
	}
}

// created is a file published by the current call, remembered so that a
// failed call removes exactly the files it created and nothing else.
type created struct {
	path string
	info os.FileInfo
}

func (s *Store) rollback(files []created) {
	for i := len(files) - 1; i >= 0; i-- {
		removeIfSame(files[i].path, files[i].info)
	}
	if len(files) > 0 {
		_ = syncDir(s.dir)
	}
}

// Snapshot copies wallet src to the new snapshot dst and returns its
// manifest.
//
// src.keys is required (ErrNotFound if missing); src (cache) and
// src.address.txt are copied when present and the manifest records which
// files were. Each file is copied with the same temp+fsync+link+dir-fsync
// protocol as CopyAtomic, keys first. The manifest dst.sha256 is written
// last, atomically and without replacing (AtomicCreateFile): the snapshot
// is committed exactly when the manifest exists.
//
// Snapshot refuses with ErrExists if dst.keys or dst.sha256 (or any other
// dst file) already exists; a committed snapshot is never overwritten, and
// of several concurrent Snapshot calls to the same dst exactly one
// succeeds. On any error it removes the dst files it created in this call
// (and only those) and returns the error; a full disk is detectable with
// IsDiskFull. An uncommitted leftover (dst files without a manifest, e.g.
// after a crash) also makes Snapshot fail with ErrExists; Remove it first.
func (s *Store) Snapshot(src, dst string) (m Manifest, err error) {
	if err := ValidateName(src); err != nil {
		return Manifest{}, err
	}
	if err := ValidateName(dst); err != nil {
		return Manifest{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("walletstore: snapshot %q -> %q: %w", src, dst, err)
	}
	for _, suf := range []string{ManifestSuffix, KeysSuffix} {
		if err := mustNotExist(s.path(dst, suf)); err != nil {
			return Manifest{}, wrap(err)
		}
	}

	var done []created
	defer func() {
		if err != nil {
			s.rollback(done)
			m = Manifest{}
		}
	}()

	m = Manifest{Name: dst, Source: src, Created: time.Now().UTC().Round(0)}
	for _, suf := range walletSuffixes {
		res, present, err := s.copyWalletFile(src, dst, suf)
		if err != nil {
			return m, wrap(err)
		}
		if !present {
			continue
		}
		done = append(done, created{path: s.path(dst, suf), info: res.info})
		m.Files = append(m.Files, FileSum{File: suf, Size: res.size, SHA256: res.sum})
	}

	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, wrap(err)
	}
	data = append(data, '\n')
	if _, err := writeAtomicBytes(s.path(dst, ManifestSuffix), data, filePerm, false); err != nil {
		return m, wrap(fmt.Errorf("manifest: %w", err))
	}
	return m, nil
}

// copyWalletFile copies src+suf to dst+suf. present is false (and err nil)
// if an optional source file does not exist.
func (s *Store) copyWalletFile(src, dst, suf string) (res writeResult, present bool, err error) {
	srcPath := s.path(src, suf)
	f, err := os.Open(srcPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if suf != KeysSuffix {
				return res, false, nil
			}
			return res, false, fmt.Errorf("%w: wallet %q (%s)", ErrNotFound, src, srcPath)
		}
		return res, false, fmt.Errorf("%s: open: %w", srcPath, err)
	}
	defer func() { _ = f.Close() }()
	if err := checkRegular(f, srcPath); err != nil {
		return res, false, err
	}
	info, err := f.Stat()
	if err != nil {
		return res, false, fmt.Errorf("%s: stat: %w", srcPath, err)
	}
	res, err = writeAtomic(f, s.path(dst, suf), filePerm, false, func(size int64, _ string) error {
		if size != info.Size() {
			return fmt.Errorf("source %s changed while copying (size %d, copied %d); is the wallet open?", srcPath, info.Size(), size)
		}
		return nil
	})
	if err != nil {
		return res, false, fmt.Errorf("%s: %w", filepath.Base(s.path(dst, suf)), err)
	}
	return res, true, nil
}

// Restore copies committed snapshot to the new wallet dst, verifying every
// file against the manifest while copying: the SHA-256 and size are
// computed from the bytes written to the temporary file and compared before
// that file is published, so corrupt data never appears under dst.
//
// Errors: ErrNotFound if the snapshot does not exist at all; ErrCorrupt
// (naming the file) if the manifest is missing (uncommitted snapshot) or
// invalid, a listed file is missing, an unlisted wallet file is present,
// or a size or hash does not match; ErrExists if any dst file (or a
// dst.sha256) already exists – Restore never overwrites. On any error the
// dst files created by this call are removed. Restore does not write a
// manifest for dst: the result is a live wallet, not a snapshot.
func (s *Store) Restore(snapshot, dst string) (m Manifest, err error) {
	if err := ValidateName(snapshot); err != nil {
		return Manifest{}, err
	}
	if err := ValidateName(dst); err != nil {
		return Manifest{}, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("walletstore: restore %q -> %q: %w", snapshot, dst, err)
	}
	m, err = s.readManifest(snapshot)
	if err != nil {
		return Manifest{}, wrap(err)
	}
	if err := s.checkNoExtraFiles(snapshot, m); err != nil {
		return Manifest{}, wrap(err)
	}
	for _, suf := range []string{ManifestSuffix, KeysSuffix} {
		if err := mustNotExist(s.path(dst, suf)); err != nil {
			return Manifest{}, wrap(err)
		}
	}

	var done []created
	defer func() {
		if err != nil {
			s.rollback(done)
			m = Manifest{}
		}
	}()
	byFile := map[string]FileSum{}
	for _, f := range m.Files {
		byFile[f.File] = f
	}
	for _, suf := range walletSuffixes { // keys first: it claims dst
		want, ok := byFile[suf]
		if !ok {
			continue
		}
		res, err := s.restoreFile(snapshot, dst, want)
		if err != nil {
			return m, wrap(err)
		}
		done = append(done, created{path: s.path(dst, want.File), info: res.info})
	}
	return m, nil
}

func (s *Store) restoreFile(snapshot, dst string, want FileSum) (writeResult, error) {
	srcPath := s.path(snapshot, want.File)
	base := filepath.Base(srcPath)
	f, err := os.Open(srcPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return writeResult{}, fmt.Errorf("%w: %s: listed in manifest but missing", ErrCorrupt, base)
		}
		return writeResult{}, fmt.Errorf("%s: open: %w", srcPath, err)
	}
	defer func() { _ = f.Close() }()
	if err := checkRegular(f, srcPath); err != nil {
		return writeResult{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, base, err)
	}
	res, err := writeAtomic(f, s.path(dst, want.File), filePerm, false, func(size int64, sum string) error {
		return compareSum(base, want, size, sum)
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", filepath.Base(s.path(dst, want.File)), err)
	}
	return res, nil
}
