package participant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"a lost answer", &rpcclient.TransportError{Method: "sign_multisig", Err: context.DeadlineExceeded}, true},
		{"a wallet refusal", fmt.Errorf("step: %w", &rpcclient.RPCError{Method: "transfer", Code: rpcclient.CodeNotEnoughMoney}), true},
		{"a wallet-rpc 500", &rpcclient.HTTPError{Method: "transfer", StatusCode: 500}, true},
		{"a refusal by this participant", fmt.Errorf("participant: %w",
			temporal.NewNonRetryableApplicationError("pays another address", escrow.TypePayoutMismatch, nil)), false},
		{"a rejection by the service", temporal.NewApplicationError("replayed", escrow.TypeReplayedMessage), false},
		{"a cancelled call", &rpcclient.TransportError{Method: "transfer", Err: context.Canceled}, false},
		{"a failed record", errors.New("write state: no space left on device"), false},
	} {
		assert.Equal(t, c.want, transient(c.err), c.name)
	}
}

func TestStaleReason(t *testing.T) {
	err := fmt.Errorf("participant: PAYOUT-SIGNED-1: %w", &rpcclient.RPCError{Method: "sign_multisig",
		Code: rpcclient.CodeMultisigSignature, Message: "stale data\n\u2026"})
	r := staleReason(err)
	assert.NoError(t, escrow.CheckPayoutMessage(escrow.PayoutStale, escrow.PayoutMessage{Message: r}))
	assert.Contains(t, r, "stale data")
	long := staleReason(errors.New(strings.Repeat("x", 2*escrow.MaxStaleReasonBytes)))
	assert.NoError(t, escrow.CheckPayoutMessage(escrow.PayoutStale, escrow.PayoutMessage{Message: long}))
	assert.NoError(t, escrow.CheckPayoutMessage(escrow.PayoutStale, escrow.PayoutMessage{Message: staleReason(errors.New(""))}))
	assert.Empty(t, staleReason(nil))
}

func TestNeedsFreshInfos(t *testing.T) {
	assert.True(t, needsFreshInfos(fmt.Errorf("x: %w", &rpcclient.RPCError{Code: rpcclient.CodeMultisigSignature})))
	assert.True(t, needsFreshInfos(&rpcclient.RPCError{Code: rpcclient.CodeTxNotPossible}))
	assert.True(t, needsFreshInfos(&rpcclient.RPCError{Code: rpcclient.CodeBadMultisigTxData}))
	assert.False(t, needsFreshInfos(&rpcclient.TransportError{Method: "sign_multisig", Err: context.DeadlineExceeded}))
	assert.False(t, needsFreshInfos(temporal.NewApplicationError("x", escrow.TypePayoutMismatch)))
}
