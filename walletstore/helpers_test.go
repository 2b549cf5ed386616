package walletstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// newTestStore returns a store in <tmp>/store and the parent <tmp>.
func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	parent := t.TempDir()
	s, err := Open(filepath.Join(parent, "store"))
	require.NoError(t, err)
	return s, parent
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// walletFiles maps suffix ("", ".keys", ".address.txt") to content.
type walletFiles map[string][]byte

func testWallet(seed uint64, cacheSize int) walletFiles {
	return walletFiles{
		KeysSuffix:    randBytes(seed, 1500),
		CacheSuffix:   randBytes(seed+1, cacheSize),
		AddressSuffix: []byte("4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge"),
	}
}

// writeWallet writes the files with mode 0644 (deliberately not 0600, to
// prove the store sets its own permissions on copies).
func writeWallet(t *testing.T, s *Store, name string, files walletFiles) {
	t.Helper()
	for suf, b := range files {
		require.NoError(t, os.WriteFile(s.path(name, suf), b, 0o644))
	}
}

// readTree returns path (relative to root) -> content ("<dir>" for dirs)
// of everything below root (symlinks as "<symlink> TARGET").
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = "<dir>"
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "<symlink> " + target
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = string(b)
		return nil
	})
	require.NoError(t, err)
	return out
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func requireNoTemps(t *testing.T, dir string) {
	t.Helper()
	for _, n := range dirNames(t, dir) {
		require.False(t, strings.HasSuffix(n, ".tmp"), "leftover temp file %q", n)
		require.False(t, strings.HasPrefix(n, "."), "leftover hidden file %q", n)
	}
}

// requireNoWallet asserts that none of name's files exist.
func requireNoWallet(t *testing.T, s *Store, name string) {
	t.Helper()
	for _, suf := range []string{CacheSuffix, KeysSuffix, AddressSuffix, ManifestSuffix} {
		_, err := os.Lstat(s.path(name, suf))
		require.ErrorIs(t, err, fs.ErrNotExist, "%s%s must not exist", name, suf)
	}
}

func requireWalletEqual(t *testing.T, s *Store, name string, want walletFiles) {
	t.Helper()
	for _, suf := range []string{CacheSuffix, KeysSuffix, AddressSuffix} {
		got, err := os.ReadFile(s.path(name, suf))
		if w, ok := want[suf]; ok {
			require.NoError(t, err)
			require.Equal(t, w, got, "content of %s%s", name, suf)
		} else {
			require.ErrorIs(t, err, fs.ErrNotExist, "%s%s must not exist", name, suf)
		}
	}
}

func requirePerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, info.Mode().Perm(), "mode of %s", path)
}

func readManifestFile(t *testing.T, s *Store, name string) Manifest {
	t.Helper()
	b, err := os.ReadFile(s.path(name, ManifestSuffix))
	require.NoError(t, err)
	var m Manifest
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// failingWriter writes at most left bytes and then fails like a full disk.
type failingWriter struct {
	f    *os.File
	left int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.left {
		w.left -= len(p)
		return w.f.Write(p)
	}
	n, err := w.f.Write(p[:w.left])
	w.left = 0
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: w.f.Name(), Err: syscall.ENOSPC}
}

// injectENOSPC makes the index-th file written from now on (0-based, in
// creation order) fail with ENOSPC after `after` bytes.
func injectENOSPC(t *testing.T, index, after int) {
	t.Helper()
	orig := newWriter
	var mu sync.Mutex
	calls := 0
	newWriter = func(f *os.File) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls-1 == index {
			return &failingWriter{f: f, left: after}
		}
		return f
	}
	t.Cleanup(func() { newWriter = orig })
}
