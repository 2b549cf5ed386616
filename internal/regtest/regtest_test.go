package regtest

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}

// TestFaucetPaysAnIndependentWallet: the faucet's payment shows in the
// recipient's own wallet with the exact amount, and its tx key proves it.
func TestFaucetPaysAnIndependentWallet(t *testing.T) {
	c := Shared(t)
	f := c.Faucet(t)
	info, err := c.Daemon.GetInfo(context.Background())
	require.NoError(t, err)
	require.Equal(t, "fakechain", info.Nettype)

	r := c.NewWallet(t, "recipient")
	defer r.Close()
	const amount = 1_234_567_890_123
	txid, key := f.Pay(t, r.Address, amount)
	require.Len(t, txid, 64)
	require.Len(t, key, 64)

	got, n := r.Received(t, 1)
	require.Zero(t, got, "nothing is confirmed before a block is mined")
	require.Zero(t, n)
	c.Mine(t, 1)
	got, n = r.Received(t, 1)
	require.Equal(t, uint64(amount), got)
	require.Equal(t, 1, n)

	chk, err := r.CheckTxKey(context.Background(), txid, key, r.Address)
	require.NoError(t, err)
	require.Equal(t, uint64(amount), chk.Received)
	require.Equal(t, uint64(1), chk.Confirmations)

	// A second payment right away: the faucet has several unlocked outputs.
	f.Pay(t, r.Address, 1)
}
