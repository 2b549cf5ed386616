package walletstore

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLink: the linked wallet keeps the files' content when the source is
// removed; an existing destination is refused and left alone.
func TestLink(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	w := testWallet(7, 5000)
	writeWallet(t, s, "live", w)
	require.NoError(t, s.Link("live", "parked"))
	require.NoError(t, s.Remove("live"))
	requireWalletEqual(t, s, "parked", w)
	writeWallet(t, s, "other", testWallet(8, 100))
	require.ErrorIs(t, s.Link("other", "parked"), os.ErrExist)
	requireWalletEqual(t, s, "parked", w)
}
