//go:build linux

package walletstore

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/internal/testenv"
)

// TestRealDiskFull runs Snapshot on a real, tiny tmpfs so the ENOSPC comes
// from the kernel rather than from the injected writer. It needs root (or
// CAP_SYS_ADMIN) and a kernel/container that permits mounting; otherwise it
// fails under CI (testenv.InCI) and skips locally – TestInterruptedCopy
// covers the same paths with an injected fault.
func TestRealDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "skipping real tmpfs ENOSPC test: needs root to mount a tmpfs (TestInterruptedCopy covers this with an injected fault)")
	}
	mnt := filepath.Join(t.TempDir(), "tiny")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	// 96 KiB = 24 pages of 4 KiB.
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=96k,mode=0700"); err != nil {
		testenv.Missing(t, "skipping real tmpfs ENOSPC test: mount -t tmpfs not permitted here (%v); TestInterruptedCopy covers this with an injected fault", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})

	s, err := Open(filepath.Join(mnt, "wallets"))
	require.NoError(t, err)
	// 12 pages of wallet (1 keys + 10 cache + 1 address): it fits once
	// but not twice.
	live := testWallet(300, 38_000)
	writeWallet(t, s, "live", live)

	_, err = s.Snapshot("live", "snap")
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.True(t, IsDiskFull(err))
	requireWalletEqual(t, s, "live", live)
	requireNoWallet(t, s, "snap")
	requireNoTemps(t, s.Dir())

	// The rollback freed the space: a small wallet (3 pages) and its
	// snapshot (3 pages + 1 manifest page) still fit.
	small := testWallet(301, 4000)
	writeWallet(t, s, "small", small)
	_, err = s.Snapshot("small", "small-snap")
	require.NoError(t, err)
	_, err = s.Verify("small-snap")
	require.NoError(t, err)
	requireWalletEqual(t, s, "small-snap", small)
}

// TestDirFault checks DirFault on a roomy dir, on a tmpfs with less than
// MinFree left, and on the same tmpfs remounted read-only.
func TestDirFault(t *testing.T) {
	require.NoError(t, DirFault(t.TempDir()), "an ordinary temp dir has room")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "skipping the tmpfs cases: needs root to mount a tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "tiny")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=2m,mode=0700"); err != nil {
		testenv.Missing(t, "skipping the tmpfs cases: mount -t tmpfs not permitted here (%v)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	require.NoError(t, DirFault(mnt), "2 MiB free")

	require.NoError(t, os.WriteFile(filepath.Join(mnt, "fill"), make([]byte, 1536<<10), 0o600))
	err := DirFault(mnt)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.True(t, IsDiskFull(err))

	require.NoError(t, os.Remove(filepath.Join(mnt, "fill")))
	require.NoError(t, syscall.Mount("", mnt, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
	require.ErrorIs(t, DirFault(mnt), syscall.EROFS)
}
