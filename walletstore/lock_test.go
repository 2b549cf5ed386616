package walletstore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLockExclusive: a second Lock on a locked dir fails with ErrLocked
// until the first is released.
func TestLockExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	require.NoError(t, err)
	_, err = Lock(dir)
	require.ErrorIs(t, err, ErrLocked)
	require.NoError(t, unlock())
	unlock, err = Lock(dir)
	require.NoError(t, err)
	require.NoError(t, unlock())
}
