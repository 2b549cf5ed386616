package walletstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCopyAtomic(t *testing.T) {
	content := randBytes(200, 70_000)
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string)
		give     string // src base name
		wantErr  error  // nil: success
		wantStep string // step named in a non-sentinel error
	}{
		{name: "new file", setup: func(*testing.T, string) {}, give: "src"},
		{
			name: "dst exists",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "dst"), []byte("committed"), 0o600))
			},
			give: "src", wantErr: ErrExists,
		},
		{
			name: "dst is a dangling symlink",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dst")))
			},
			give: "src", wantErr: ErrExists,
		},
		{name: "src missing", setup: func(*testing.T, string) {}, give: "missing", wantErr: fs.ErrNotExist, wantStep: "open"},
		{
			name: "src is a directory",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "subdir"), 0o700))
			},
			give: "subdir", wantStep: "not a regular file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "src"), content, 0o644))
			tt.setup(t, dir)
			before := readTree(t, dir)

			size, sum, err := CopyAtomic(filepath.Join(dir, tt.give), filepath.Join(dir, "dst"))
			if tt.wantErr == nil && tt.wantStep == "" {
				require.NoError(t, err)
				require.Equal(t, int64(len(content)), size)
				require.Equal(t, sha256Hex(content), sum)
				got, err := os.ReadFile(filepath.Join(dir, "dst"))
				require.NoError(t, err)
				require.Equal(t, content, got)
				requirePerm(t, filepath.Join(dir, "dst"), filePerm)
				requireNoTemps(t, dir)
				return
			}
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.ErrorContains(t, err, tt.wantStep)
			require.Zero(t, size)
			require.Empty(t, sum)
			require.Equal(t, before, readTree(t, dir))
			requireNoTemps(t, dir)
		})
	}
}

func TestCopyAtomicLinkFailures(t *testing.T) {
	tests := []struct {
		name    string
		give    error // error returned by link
		wantErr error // nil: success via the rename fallback
	}{
		{name: "EPERM falls back to rename", give: syscall.EPERM},
		{name: "EOPNOTSUPP falls back to rename", give: syscall.EOPNOTSUPP},
		{name: "ENOSYS falls back to rename", give: syscall.ENOSYS},
		{name: "EIO fails", give: syscall.EIO, wantErr: syscall.EIO},
		{name: "late EEXIST is ErrExists", give: syscall.EEXIST, wantErr: ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := linkFile
			linkFile = func(oldname, newname string) error {
				return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: tt.give}
			}
			t.Cleanup(func() { linkFile = orig })

			dir := t.TempDir()
			content := randBytes(201, 5000)
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			require.NoError(t, os.WriteFile(src, content, 0o600))

			_, _, err := CopyAtomic(src, dst)
			if tt.wantErr == nil {
				require.NoError(t, err)
				got, err := os.ReadFile(dst)
				require.NoError(t, err)
				require.Equal(t, content, got)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
				_, err := os.Lstat(dst)
				require.ErrorIs(t, err, fs.ErrNotExist)
			}
			requireNoTemps(t, dir)
		})
	}
}

func TestAtomicWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no existing file
		give     []byte
		perm     os.FileMode
	}{
		{name: "create", give: []byte("hello"), perm: 0o600},
		{name: "replace", existing: []byte("old content, longer"), give: []byte("new"), perm: 0o600},
		{name: "empty", existing: []byte("x"), give: []byte{}, perm: 0o600},
		{name: "other perm", give: []byte("p"), perm: 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "marker")
			if tt.existing != nil {
				require.NoError(t, os.WriteFile(p, tt.existing, 0o644))
			}
			require.NoError(t, AtomicWriteFile(p, tt.give, tt.perm))
			got, err := os.ReadFile(p)
			require.NoError(t, err)
			require.Equal(t, tt.give, got)
			requirePerm(t, p, tt.perm)
			requireNoTemps(t, dir)
		})
	}
}

func TestAtomicCreateFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "marker")
	require.NoError(t, AtomicCreateFile(p, []byte("first"), filePerm))
	requirePerm(t, p, filePerm)

	err := AtomicCreateFile(p, []byte("second"), filePerm)
	require.ErrorIs(t, err, ErrExists)
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, []byte("first"), got)
	requireNoTemps(t, dir)

	err = AtomicCreateFile(filepath.Join(dir, "no-such-dir", "f"), []byte("x"), filePerm)
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "create-temp")
}

func TestIsDiskFull(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "nil", give: nil, want: false},
		{name: "ENOSPC", give: syscall.ENOSPC, want: true},
		{name: "wrapped ENOSPC", give: fmt.Errorf("a: %w", &os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}), want: true},
		{name: "EDQUOT", give: &os.PathError{Op: "write", Path: "f", Err: syscall.EDQUOT}, want: true},
		{name: "joined", give: errors.Join(errors.New("x"), syscall.ENOSPC), want: true},
		{name: "EIO", give: &os.PathError{Op: "write", Path: "f", Err: syscall.EIO}, want: false},
		{name: "corrupt", give: ErrCorrupt, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsDiskFull(tt.give))
		})
	}
}
