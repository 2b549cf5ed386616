package rpcclient

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMultisigRefusals(t *testing.T) {
	stale := &RPCError{Method: "sign_multisig", Code: CodeMultisigSignature,
		Message: "Failed to sign multisig tx: This signature was made with stale data: export fresh multisig data, which other participants must then use"}
	staleText := &RPCError{Method: "sign_multisig", Code: CodeUnknown, Message: "This signature was made with Stale Data"}
	noTx := &RPCError{Method: "transfer", Code: CodeTxNotPossible, Message: "No transaction created"}
	badSet := &RPCError{Method: "describe_transfer", Code: CodeBadMultisigTxData, Message: "cannot load multisig_txset"}
	lost := &TransportError{Method: "sign_multisig", Err: fmt.Errorf("EOF")}
	other := &RPCError{Method: "transfer", Code: CodeWrongAddress}
	for _, c := range []struct {
		err                    error
		stale, nothing, unload bool
	}{
		{stale, true, false, false},
		{fmt.Errorf("wrapped: %w", staleText), true, false, false},
		{noTx, false, true, false},
		{&RPCError{Code: CodeNotEnoughUnlockedMoney}, false, true, false},
		{badSet, false, false, true},
		{&RPCError{Code: CodeBadHex}, false, false, true},
		{lost, false, false, false},
		{other, false, false, false},
		{nil, false, false, false},
	} {
		assert.Equal(t, c.stale, IsStaleMultisig(c.err), "%v", c.err)
		assert.Equal(t, c.nothing, IsNothingToSpend(c.err), "%v", c.err)
		assert.Equal(t, c.unload, IsUnloadableTxSet(c.err), "%v", c.err)
	}
}
