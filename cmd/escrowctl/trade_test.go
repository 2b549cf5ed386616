package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/starter"
)

// fakeTrades records the trade calls escrowctl makes.
type fakeTrades struct {
	fakeEscrows
	calls []string
	input escrow.TradeInput
	ann   escrow.DepositAnnouncement
	err   error
}

func (f *fakeTrades) status(call string) (escrow.TradeStatus, error) {
	f.calls = append(f.calls, call)
	return escrow.TradeStatus{EscrowID: "t1", State: escrow.TradeFunded}, f.err
}

func (f *fakeTrades) StartTrade(_ context.Context, in escrow.TradeInput) (starter.Run, error) {
	f.calls, f.input = append(f.calls, "start"), in
	return starter.Run{EscrowID: in.EscrowID, WorkflowID: "trade-" + in.EscrowID, RunID: "r1"}, f.err
}

func (f *fakeTrades) AnnounceDeposit(_ context.Context, _ string, ann escrow.DepositAnnouncement) (escrow.TradeStatus, error) {
	f.ann = ann
	return f.status("deposit")
}

func (f *fakeTrades) Release(context.Context, string) (escrow.TradeStatus, error) {
	return f.status("release")
}

func (f *fakeTrades) Refund(context.Context, string) (escrow.TradeStatus, error) {
	return f.status("refund")
}

func (f *fakeTrades) Dispute(_ context.Context, _, by, reason string) (escrow.TradeStatus, error) {
	return f.status("dispute " + by + " " + reason)
}

func (f *fakeTrades) Resolve(_ context.Context, _ string, bps int) (escrow.TradeStatus, error) {
	return f.status("resolve " + string(rune('0'+bps/1000)))
}

func (f *fakeTrades) TradeStatus(context.Context, string) (escrow.TradeStatus, error) {
	return f.status("status")
}

func (f *fakeTrades) WaitTrade(context.Context, string) (*escrow.TradeStatus, error) {
	st, err := f.status("wait")
	return &st, err
}

func runTrade(f *fakeTrades, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	dial := func(context.Context, string, string, string, io.Writer) (escrows, error) { return f, nil }
	err := run(context.Background(), append([]string{"trade"}, args...), func(string) string { return "" }, &stdout, &stderr, dialers{escrows: dial})
	return stdout.String(), err
}

func TestTradeCommands(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"deposit", "t1", "--txid", "a", "--tx-key", "b"}, "deposit"},
		{[]string{"release", "t1"}, "release"},
		{[]string{"refund", "t1"}, "refund"},
		{[]string{"dispute", "t1", "--by", "vendor", "--reason", "late"}, "dispute vendor late"},
		{[]string{"resolve", "t1", "--vendor-share-bps", "7000"}, "resolve 7"},
		{[]string{"status", "t1"}, "status"},
		{[]string{"wait", "t1"}, "wait"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			f := &fakeTrades{}
			out, err := runTrade(f, append(tt.args, "--json")...)
			require.NoError(t, err)
			assert.Equal(t, []string{tt.want}, f.calls)
			var st escrow.TradeStatus
			require.NoError(t, json.Unmarshal([]byte(out), &st), out)
			assert.Equal(t, escrow.TradeFunded, st.State)
		})
	}
}

func TestTradeStartPassesTheTerms(t *testing.T) {
	f := &fakeTrades{}
	out, err := runTrade(f, "start", "t1", "--amount", "5000", "--vendor", "V", "--buyer-refund", "B",
		"--deposit-timeout", "1h", "--confirmations", "3", "--scan-interval", "30s")

	require.NoError(t, err)
	assert.Equal(t, escrow.TradeInput{EscrowID: "t1", AmountAtomic: 5000, VendorAddress: "V", BuyerRefundAddress: "B",
		DepositTimeout: "1h", Confirmations: 3, ScanInterval: "30s"}, f.input)
	assert.Contains(t, out, "trade-t1")
}

func TestTradeUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"release"}, {"pay", "t1"}, {"resolve", "t1"}} {
		f := &fakeTrades{}
		_, err := runTrade(f, args...)
		assert.Equal(t, 2, exitCode(err), "%v: %v", args, err)
		assert.Empty(t, f.calls)
	}
}

func TestTradeRejectionFailsTheCommand(t *testing.T) {
	f := &fakeTrades{err: &starter.UpdateRejectedError{EscrowID: "t1", Update: "release", Reason: "not FUNDED"}}
	_, err := runTrade(f, "release", "t1")
	assert.ErrorIs(t, err, starter.ErrUpdateRejected)
	assert.Equal(t, 1, exitCode(err))
}
