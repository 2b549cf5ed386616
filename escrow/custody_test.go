package escrow_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
)

// TestSignedBytesFormat pins the signed bytes: participants in other
// languages implement exactly this.
func TestSignedBytesFormat(t *testing.T) {
	got := escrow.SignedBytes("order-42", "buyer", "MAKING", "abc")
	want := "escrowflow-submitRound-v1\norder-42\nbuyer\nMAKING\n" +
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // SHA-256("abc")
	assert.Equal(t, want, string(got))
}

func TestSignAndVerify(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	m := escrow.SubmitRound{Role: "buyer", Round: "MAKING", Message: "MultisigxV2R1abc"}
	escrow.Sign(key, "e1", &m)
	require.True(t, escrow.Verify(pub, "e1", m))

	for name, change := range map[string]func(*escrow.SubmitRound){
		"other role":    func(m *escrow.SubmitRound) { m.Role = "vendor" },
		"other round":   func(m *escrow.SubmitRound) { m.Round = "PREPARING" },
		"other message": func(m *escrow.SubmitRound) { m.Message += "d" },
		"not hex":       func(m *escrow.SubmitRound) { m.Signature = "zz" + m.Signature[2:] },
		"short":         func(m *escrow.SubmitRound) { m.Signature = m.Signature[:10] },
	} {
		c := m
		change(&c)
		assert.False(t, escrow.Verify(pub, "e1", c), name)
	}
	assert.False(t, escrow.Verify(pub, "e2", m), "another escrow")
}

func TestCheckRoundMessage(t *testing.T) {
	addr := "9" + strings.Repeat("a", 94)
	tests := []struct {
		name string
		last bool
		give string
		ok   bool
	}{
		{"multisig info", false, "MultisigxV2R1" + strings.Repeat("b", 40), true},
		{"no prefix", false, strings.Repeat("b", 40), false},
		{"too short", false, "MultisigxV2", false},
		{"not base58", false, "MultisigxV2R1" + strings.Repeat("0", 40), false},
		{"oversized", false, "Multisig" + strings.Repeat("a", escrow.MaxRoundMessageBytes), false},
		{"address", true, addr, true},
		{"address too short", true, addr[:94], false},
		{"address not base58", true, "9" + strings.Repeat("l", 94), false},
		{"an info for the address", true, "MultisigxV2R1" + strings.Repeat("b", 82), false},
	}
	for _, tt := range tests {
		err := escrow.CheckRoundMessage(tt.last, tt.give)
		assert.Equal(t, tt.ok, err == nil, "%s: %v", tt.name, err)
	}
}

func TestParsePublicKey(t *testing.T) {
	_, err := escrow.ParsePublicKey(strings.Repeat("ab", 32))
	require.NoError(t, err)
	for _, bad := range []string{"", "ab", strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		_, err := escrow.ParsePublicKey(bad)
		assert.Error(t, err, "%q", bad)
	}
}
