package activities

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/escrowflow/escrowflow/escrow"
)

// MultisigRound refuses a round that is not make or exchange before any
// wallet call (a nil Wallet would panic if one were made).
func TestProtocolMultisigRoundRejectsOtherRounds(t *testing.T) {
	for _, r := range []escrow.Round{escrow.RoundCreate, escrow.RoundPrepare, escrow.RoundVerify, "BOGUS"} {
		_, err := Protocol{}.MultisigRound(context.Background(), r, nil)
		assert.ErrorContains(t, err, "is not a multisig round", r)
	}
	prep, verify := slices.Index(escrow.Rounds, escrow.RoundPrepare), slices.Index(escrow.Rounds, escrow.RoundVerify)
	assert.Equal(t, escrow.Rounds[prep+1:verify], MultisigRounds, "the rounds between prepare and verify, in order")
}
