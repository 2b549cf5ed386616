package activities

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
)

// Addresses from a regtest chain (mainnet format) and testnet.
const (
	regtestMultisig = "42aUwTdGTXi19yajNe5R771V241k71mSn4DMcP8bAAiUQ1XmYuNGM2JiWtT9sNfVF3fy91AdFWD4racfNhk2ea4NQuD8ekb"
	regtestFaucet   = "45feh8RDwP6hJx1Ns3xJXAM5uLtuoWmDcVnm6CWfP4a7WdHhJHBFgxrERhqSKhvxM4d2J6UJW5siQEqfHAi4okc3PmGurXw"
	testnetAddress  = "9wviCeWe2D8XS82k2ovp5EUYLzBt9pYNW2LXUFsZiv8S3Mt21FZ5qQaAroko1enzw3eGr9qC7X1D7Geoo2RrAotYPwq9Gm8"
)

func TestCheckAddress(t *testing.T) {
	require.NoError(t, CheckAddress("regtest", "vendorAddress", regtestMultisig))
	require.NoError(t, CheckAddress("mainnet", "vendorAddress", regtestFaucet))
	require.NoError(t, CheckAddress("testnet", "vendorAddress", testnetAddress))

	bad := []struct{ network, addr, want string }{
		{"testnet", regtestFaucet, "not a testnet address"},
		{"mainnet", testnetAddress, "not a mainnet address"},
		{"regtest", regtestFaucet[:94] + "x", "bad checksum"},
		{"regtest", regtestFaucet[:94] + "0", "not base58"},
		{"regtest", regtestFaucet[:90], "length"},
		{"regtest", "", "length"},
		{"moon", regtestFaucet, "unknown network"},
	}
	for _, b := range bad {
		err := CheckAddress(b.network, "vendorAddress", b.addr)
		require.ErrorContains(t, err, b.want, "%s %s", b.network, b.addr)
		require.ErrorContains(t, err, "vendorAddress")
		require.Equal(t, escrow.TypeInvalidInput, typeOf(classify(err)))
	}
}

// typeOf returns the ApplicationError type of err, or "".
func typeOf(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func TestIsScalar(t *testing.T) {
	assert.True(t, isScalar("fd3274f7af8c3fd043febc4953e33da070cf3b5b0f36e0455cb32f1495112a09"), "a real tx key")
	assert.True(t, isScalar(strings.Repeat("00", 32)))
	assert.True(t, isScalar("ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"), "l-1")
	assert.False(t, isScalar("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"), "l")
	assert.False(t, isScalar(strings.Repeat("11", 32)))
	assert.False(t, isScalar(strings.Repeat("0", 63)))
	assert.False(t, isScalar(strings.ToUpper("fd3274f7af8c3fd043febc4953e33da070cf3b5b0f36e0455cb32f1495112a09")))
}

func TestWellFormedAnnouncement(t *testing.T) {
	key := "fd3274f7af8c3fd043febc4953e33da070cf3b5b0f36e0455cb32f1495112a09"
	txid := strings.Repeat("ab", 32)
	for _, ok := range []escrow.DepositAnnouncement{
		{TxID: txid, TxKey: key},
		{TxID: strings.ToUpper(txid), TxKey: strings.ToUpper(key)},
		{TxID: txid, TxKey: key + key},
	} {
		assert.True(t, wellFormed(&ok), "%+v", ok)
		assert.Equal(t, strings.ToLower(ok.TxKey), ok.TxKey)
	}
	for _, bad := range []escrow.DepositAnnouncement{
		{TxID: txid, TxKey: strings.Repeat("11", 32)},
		{TxID: txid, TxKey: key + strings.Repeat("11", 32)},
		{TxID: txid, TxKey: key[:60]},
		{TxID: txid[:62], TxKey: key},
		{TxID: txid},
	} {
		assert.False(t, wellFormed(&bad), "%+v", bad)
	}
}
