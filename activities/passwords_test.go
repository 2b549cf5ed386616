package activities

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testMaster is a 32-byte master secret whose bytes are all printable, so
// a leak shows up as text as well as in hex or as a byte list.
var testMaster = []byte("MASTER-SECRET-0123456789abcdefgh")

func mustPasswords(t *testing.T, master []byte) *Passwords {
	t.Helper()
	p, err := NewPasswords(master)
	require.NoError(t, err)
	return p
}

func mustFor(t *testing.T, p *Passwords, escrowID, role string) string {
	t.Helper()
	pw, err := p.For(escrowID, role)
	require.NoError(t, err)
	return pw
}

func TestPasswordsDeterministic(t *testing.T) {
	a := mustPasswords(t, testMaster)
	b := mustPasswords(t, append([]byte(nil), testMaster...))
	first := mustFor(t, a, "e1", "buyer")
	assert.Equal(t, first, mustFor(t, a, "e1", "buyer"), "same Passwords, same input")
	assert.Equal(t, first, mustFor(t, b, "e1", "buyer"), "a worker restarted with the same secret derives the same password")
}

func TestPasswordsFormat(t *testing.T) {
	p := mustPasswords(t, testMaster)
	for _, role := range []string{"buyer", "vendor", "arbiter"} {
		pw := mustFor(t, p, "escrow-42", role)
		require.Len(t, pw, 64, role)
		raw, err := hex.DecodeString(pw)
		require.NoError(t, err, "%s: password is hex", role)
		require.Len(t, raw, 32)
		assert.Equal(t, strings.ToLower(pw), pw, "lowercase hex")
	}
}

func TestPasswordsDiffer(t *testing.T) {
	base := mustFor(t, mustPasswords(t, testMaster), "e1", "buyer")
	otherMaster := bytes.Clone(testMaster)
	otherMaster[len(otherMaster)-1] ^= 1
	tests := []struct {
		name   string
		master []byte
		id     string
		role   string
	}{
		{"other escrow id", testMaster, "e2", "buyer"},
		{"escrow id that is a prefix", testMaster, "e", "buyer"},
		{"escrow id that extends", testMaster, "e10", "buyer"},
		{"other role vendor", testMaster, "e1", "vendor"},
		{"other role arbiter", testMaster, "e1", "arbiter"},
		{"master secret differing in one bit", otherMaster, "e1", "buyer"},
		{"longer master secret", append(bytes.Clone(testMaster), 'x'), "e1", "buyer"},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustFor(t, mustPasswords(t, tt.master), tt.id, tt.role)
			if prev, dup := seen[got]; dup {
				t.Fatalf("password equals the one of %q", prev)
			}
			seen[got] = tt.name
		})
	}
}

func TestPasswordsCopiesMaster(t *testing.T) {
	master := bytes.Clone(testMaster)
	p := mustPasswords(t, master)
	want := mustFor(t, p, "e1", "buyer")
	for i := range master {
		master[i] = 0 // the caller wipes its copy
	}
	assert.Equal(t, want, mustFor(t, p, "e1", "buyer"))
}

func TestNewPasswordsRefusesShortSecret(t *testing.T) {
	tests := []struct {
		name string
		give []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"one byte", []byte{1}, false},
		{"31 bytes", bytes.Repeat([]byte{'k'}, MinMasterSecretLen-1), false},
		{"32 bytes", bytes.Repeat([]byte{'k'}, MinMasterSecretLen), true},
		{"64 bytes", bytes.Repeat([]byte{'k'}, 64), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPasswords(tt.give)
			if tt.ok {
				require.NoError(t, err)
				require.NotNil(t, p)
				return
			}
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), "too short")
			if len(tt.give) > 0 {
				assert.NotContains(t, err.Error(), string(tt.give), "the error does not quote the secret")
			}
		})
	}
}

func TestNilPasswordsFails(t *testing.T) {
	var p *Passwords
	pw, err := p.For("e1", "buyer")
	require.Error(t, err)
	assert.Empty(t, pw)
}

func TestPasswordsDoNotLeak(t *testing.T) {
	p := mustPasswords(t, testMaster)
	pw := mustFor(t, p, "e1", "buyer")
	tests := []struct {
		name string
		give string
	}{
		{"String", p.String()},
		{"%v", fmt.Sprintf("%v", p)},
		{"%s", fmt.Sprintf("%s", p)},
		{"%+v", fmt.Sprintf("%+v", p)},
		{"%#v", fmt.Sprintf("%#v", p)},
		{"%q", fmt.Sprintf("%q", p)},
		{"in a struct %+v", fmt.Sprintf("%+v", struct{ P *Passwords }{p})},
		{"in a struct %#v", fmt.Sprintf("%#v", struct{ P *Passwords }{p})},
	}
	leaks := []string{
		string(testMaster),
		string(testMaster[:8]),
		hex.EncodeToString(testMaster),
		fmt.Sprint(testMaster[:8])[1:20],                             // byte list, e.g. "77 65 83 ..."
		strings.Trim(fmt.Sprintf("%#v", testMaster[:4]), "[]byte{}"), // "0x4d, 0x41, ..."
		pw,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEmpty(t, tt.give)
			for _, leak := range leaks {
				assert.NotContains(t, tt.give, leak)
			}
			assert.Contains(t, tt.give, "***", "the redacted form is what is shown")
		})
	}
}
