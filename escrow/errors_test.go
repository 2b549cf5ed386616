package escrow_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/escrowflow/escrowflow/escrow"
)

func TestValidateEscrowID(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"order-42", true},
		{"A", true},
		{"_x", false},
		{"", false},
		{"a/b", false},
		{"a.b", false},
		{string(make([]byte, 65)), false},
	}
	for _, tt := range tests {
		err := escrow.ValidateEscrowID(tt.give)
		var invalid *escrow.InvalidEscrowIDError
		assert.Equal(t, tt.want, err == nil, "%q", tt.give)
		assert.Equal(t, !tt.want, errors.As(err, &invalid), "%q", tt.give)
	}
}

func TestDuplicateEscrowError(t *testing.T) {
	cause := errors.New("already started")
	fromStart := &escrow.DuplicateEscrowError{EscrowID: "e1", RunID: "r1", Err: cause}
	fromClaim := &escrow.DuplicateEscrowError{EscrowID: "e1", Detail: "its wallets exist"}
	for _, err := range []error{fromStart, fromClaim} {
		assert.ErrorIs(t, err, escrow.ErrDuplicateEscrow)
	}
	assert.ErrorIs(t, fromStart, cause)
	assert.Equal(t, `escrow "e1" already exists (workflow escrow-e1, run r1)`, fromStart.Error())
	assert.Equal(t, `escrow "e1" already exists: its wallets exist`, fromClaim.Error())

	failed := &escrow.EscrowFailedError{EscrowID: "e1", Type: escrow.TypeDuplicateEscrow}
	assert.ErrorIs(t, failed, escrow.ErrDuplicateEscrow)
	failed.Type = escrow.TypeCancelled
	assert.NotErrorIs(t, failed, escrow.ErrDuplicateEscrow)
}

func TestRoundsAndRoles(t *testing.T) {
	assert.True(t, escrow.RoundExchange2.Valid())
	assert.False(t, escrow.Round(escrow.StateExchanging).Valid(), "a state is not a round")
	assert.True(t, escrow.Arbiter.Valid())
	assert.False(t, escrow.Role("judge").Valid())
}
