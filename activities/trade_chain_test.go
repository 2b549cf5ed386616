package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// fakeDaemon answers get_info with its nettype and counts calls.
type fakeDaemon struct {
	nettype string
	calls   int
}

func (d *fakeDaemon) GetInfo(context.Context) (rpcclient.DaemonInfo, error) {
	d.calls++
	return rpcclient.DaemonInfo{Status: "OK", Nettype: d.nettype}, nil
}

func (d *fakeDaemon) GetFeeEstimate(context.Context) (rpcclient.FeeEstimate, error) {
	d.calls++
	return rpcclient.FeeEstimate{Status: "OK", Fee: 1_200_000, QuantizationMask: 10_000}, nil
}

func (d *fakeDaemon) GetTransactions(context.Context, []string) (rpcclient.TxLookup, error) {
	d.calls++
	return rpcclient.TxLookup{Status: "OK"}, nil
}

func TestCheckTradeTermsNetworkDaemonAndSigner(t *testing.T) {
	terms := TermsInput{EscrowID: "t1", AmountAtomic: 1, VendorAddress: regtestFaucet, BuyerRefundAddress: regtestMultisig}
	tests := []struct {
		name     string
		cfg      Config
		in       TermsInput
		wantType string
	}{
		{"no daemon", Config{Network: "mainnet", WalletRPCVersion: "0.18.5.1"}, terms, escrow.TypeNoDaemon},
		{"daemon on another network", Config{Network: "mainnet", Daemon: &fakeDaemon{nettype: "fakechain"}, WalletRPCVersion: "0.18.5.1"}, terms, escrow.TypeNoDaemon},
		{"old wallet-rpc on mainnet", Config{Network: "mainnet", Daemon: &fakeDaemon{nettype: "mainnet"}, WalletRPCVersion: "0.18.0.0"}, terms, escrow.TypeUnsafeWalletRpc},
		{"unknown wallet-rpc on mainnet", Config{Network: "mainnet", Daemon: &fakeDaemon{nettype: "mainnet"}}, terms, escrow.TypeUnsafeWalletRpc},
		{"testnet address on mainnet", Config{Network: "mainnet", Daemon: &fakeDaemon{nettype: "mainnet"}, WalletRPCVersion: "0.18.5.1"},
			TermsInput{EscrowID: "t1", AmountAtomic: 1, VendorAddress: testnetAddress, BuyerRefundAddress: regtestMultisig}, escrow.TypeInvalidInput},
		{"zero amount", Config{Network: "regtest", Daemon: &fakeDaemon{nettype: "fakechain"}},
			TermsInput{EscrowID: "t1", VendorAddress: regtestFaucet, BuyerRefundAddress: regtestMultisig}, escrow.TypeInvalidInput},
		{"safe wallet-rpc on mainnet", Config{Network: "mainnet", Daemon: &fakeDaemon{nettype: "mainnet"}, WalletRPCVersion: "0.18.5.1"}, terms, ""},
		{"old wallet-rpc on regtest", Config{Network: "regtest", Daemon: &fakeDaemon{nettype: "fakechain"}, WalletRPCVersion: "0.18.0.0"}, terms, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := New(tt.cfg).CheckTradeTerms(context.Background(), tt.in)
			if tt.wantType == "" {
				require.NoError(t, err)
				assert.Equal(t, "mainnet", out.Network)
				return
			}
			assert.Equal(t, tt.wantType, typeOf(err), "%v", err)
		})
	}
}

// TestSigningRefusedOnMainnetWithAnOldWalletRPC: CreatePayout and
// SignPayout refuse before any wallet or file is touched; on regtest the
// same wallet-rpc signs, with one warning.
func TestSigningRefusedOnMainnetWithAnOldWalletRPC(t *testing.T) {
	f := newFixture(t)
	plan := escrow.PayoutPlan{Kind: escrow.PayoutRefund, MultisigAddress: regtestMultisig, TotalAtomic: 10, FeeBudgetAtomic: 1, SweepTo: regtestFaucet}
	cfg := f.cfg
	cfg.Leases, cfg.Network, cfg.Daemon, cfg.WalletRPCVersion = f.leaser, "mainnet", &fakeDaemon{nettype: "mainnet"}, "0.18.0.0"
	acts := New(cfg)
	before := len(f.world.Calls())
	_, err := acts.CreatePayout(context.Background(), CreatePayoutInput{EscrowID: "s1", Role: "buyer", Snapshot: "s1.buyer.x.a1", Plan: plan})
	assert.Equal(t, escrow.TypeUnsafeWalletRpc, typeOf(err), "%v", err)
	_, err = acts.SignPayout(context.Background(), SignPayoutInput{EscrowID: "s1", Role: "vendor", Snapshot: "s1.vendor.x.a1", TxSet: "00", Plan: plan})
	assert.Equal(t, escrow.TypeUnsafeWalletRpc, typeOf(err), "%v", err)
	assert.Equal(t, before, len(f.world.Calls()), "no wallet call")
	assert.Empty(t, dirNames(t, f.dir), "no file written")

	core, logs := observer.New(zapcore.WarnLevel)
	cfg.Network, cfg.Daemon, cfg.Logger = "regtest", &fakeDaemon{nettype: "fakechain"}, zap.New(core)
	acts = New(cfg)
	for range 3 {
		require.NoError(t, acts.checkSigning(context.Background()))
	}
	assert.Equal(t, 1, logs.FilterMessageSnippet("does not store the erasure").Len(), "one warning")
}

func TestOlderVersion(t *testing.T) {
	for v, older := range map[string]bool{"0.18.0.0": true, "v0.18.0.0-unknown": true, "0.18.5.0": true, "0.18.5.1": false,
		"0.18.10.0": false, "0.19.0.0": false, "": true, "garbage": true} {
		assert.Equal(t, older, olderVersion(v, SafeSigningVersion), v)
	}
}

func TestEstimatePayoutFee(t *testing.T) {
	acts := New(Config{Network: "regtest", Daemon: &fakeDaemon{nettype: "fakechain"}})
	out, err := acts.EstimatePayoutFee(context.Background(), FeeInput{Outputs: 2, Inputs: 1})
	require.NoError(t, err)
	// (900 + 700 + 3*200) * 1,200,000 = 2,640,000,000, above the measured
	// 1,808,400,000 of such a payout.
	assert.Equal(t, FeeOutput{EstimateAtomic: 2_640_000_000, BudgetAtomic: 5_280_000_000}, out)
	_, err = acts.EstimatePayoutFee(context.Background(), FeeInput{Outputs: 0, Inputs: 1})
	assert.Equal(t, escrow.TypeInvalidInput, typeOf(err))
}
