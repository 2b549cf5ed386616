package escrow

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPlanPayout(t *testing.T) {
	terms := PayoutTerms{AmountAtomic: 1000, VendorAddress: "V", BuyerRefundAddress: "B"}
	share := func(n int) int { return n }
	tests := []struct {
		name    string
		kind    PayoutKind
		deposit uint64
		bps     int
		budget  uint64
		sweep   string
		outputs []PayoutOutput
	}{
		{name: "release exact deposit sweeps to the vendor", kind: PayoutRelease, deposit: 1000, budget: 30, sweep: "V"},
		{name: "release with excess splits", kind: PayoutRelease, deposit: 1250, budget: 30,
			outputs: []PayoutOutput{{"V", 970}, {"B", 250}}},
		{name: "refund sweeps to the buyer", kind: PayoutRefund, deposit: 1250, budget: 30, sweep: "B"},
		{name: "expired partial deposit sweeps to the buyer", kind: PayoutExpired, deposit: 400, budget: 30, sweep: "B"},
		{name: "resolve 70/30", kind: PayoutResolve, deposit: 1030, bps: share(7000), budget: 30,
			outputs: []PayoutOutput{{"V", 700}, {"B", 300}}},
		{name: "resolve rounds the vendor down", kind: PayoutResolve, deposit: 1033, bps: share(3333), budget: 30,
			outputs: []PayoutOutput{{"V", 334}, {"B", 669}}},
		{name: "resolve all to the vendor sweeps", kind: PayoutResolve, deposit: 1030, bps: MaxShareBps, budget: 30, sweep: "V"},
		{name: "resolve nothing to the vendor sweeps", kind: PayoutResolve, deposit: 1030, bps: 0, budget: 30, sweep: "B"},
		{name: "resolve share rounding to 0 sweeps to the buyer", kind: PayoutResolve, deposit: 130, bps: 1, budget: 30, sweep: "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanPayout(tt.kind, terms, tt.deposit, tt.bps, "M", tt.budget)
			require.NoError(t, err)
			assert.Equal(t, tt.kind, p.Kind)
			assert.Equal(t, "M", p.MultisigAddress)
			assert.Equal(t, tt.deposit, p.TotalAtomic)
			assert.Equal(t, tt.budget, p.FeeBudgetAtomic)
			assert.Equal(t, tt.sweep, p.SweepTo)
			assert.Equal(t, tt.outputs, p.Outputs)
			if len(p.Outputs) > 0 {
				var sum uint64
				for _, o := range p.Outputs {
					sum += o.AmountAtomic
				}
				// The outputs and the whole budget add up to the deposit:
				// the change (dust) is what the real fee leaves of the budget.
				assert.Equal(t, tt.deposit, sum+tt.budget)
			}
		})
	}
}

func TestPlanPayoutLargeAmountsDoNotOverflow(t *testing.T) {
	deposit := uint64(math.MaxUint64 - 5)
	p, err := PlanPayout(PayoutResolve, PayoutTerms{VendorAddress: "V", BuyerRefundAddress: "B"}, deposit, 5000, "M", 1)
	require.NoError(t, err)
	require.Len(t, p.Outputs, 2)
	assert.Equal(t, deposit-1, p.Outputs[0].AmountAtomic+p.Outputs[1].AmountAtomic)
	assert.InDelta(t, float64(p.Outputs[0].AmountAtomic), float64(p.Outputs[1].AmountAtomic), 1)
}

func TestPlanPayoutRefuses(t *testing.T) {
	terms := PayoutTerms{AmountAtomic: 1000, VendorAddress: "V", BuyerRefundAddress: "B"}
	tests := []struct {
		name     string
		kind     PayoutKind
		terms    PayoutTerms
		deposit  uint64
		bps      int
		multisig string
		budget   uint64
		nothing  bool
	}{
		{name: "deposit equal to the budget", kind: PayoutExpired, terms: terms, deposit: 30, budget: 30, multisig: "M", nothing: true},
		{name: "deposit below the budget", kind: PayoutRefund, terms: terms, deposit: 10, budget: 30, multisig: "M", nothing: true},
		{name: "release below the price", kind: PayoutRelease, terms: terms, deposit: 999, budget: 30, multisig: "M"},
		{name: "release price within the budget", kind: PayoutRelease, terms: PayoutTerms{AmountAtomic: 30, VendorAddress: "V", BuyerRefundAddress: "B"},
			deposit: 100, budget: 30, multisig: "M"},
		{name: "share above 10000", kind: PayoutResolve, terms: terms, deposit: 1000, bps: 10001, budget: 30, multisig: "M"},
		{name: "negative share", kind: PayoutResolve, terms: terms, deposit: 1000, bps: -1, budget: 30, multisig: "M"},
		{name: "unknown kind", kind: "gift", terms: terms, deposit: 1000, budget: 30, multisig: "M"},
		{name: "no multisig address", kind: PayoutRefund, terms: terms, deposit: 1000, budget: 30},
		{name: "no vendor address", kind: PayoutRefund, terms: PayoutTerms{AmountAtomic: 1, BuyerRefundAddress: "B"}, deposit: 1000, budget: 30, multisig: "M"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := PlanPayout(tt.kind, tt.terms, tt.deposit, tt.bps, tt.multisig, tt.budget)
			var perr *PayoutPlanError
			require.ErrorAs(t, err, &perr)
			assert.Equal(t, tt.nothing, errors.Is(err, ErrNothingToPay))
		})
	}
}

func TestPayoutSigners(t *testing.T) {
	tests := []struct {
		kind              PayoutKind
		bps               int
		creator, cosigner Role
	}{
		{PayoutRelease, 0, Buyer, Vendor},
		{PayoutRefund, 0, Vendor, Buyer},
		{PayoutExpired, 0, Arbiter, Buyer},
		{PayoutResolve, 7000, Arbiter, Vendor},
		{PayoutResolve, 5001, Arbiter, Vendor},
		{PayoutResolve, 5000, Arbiter, Buyer}, // the tie
		{PayoutResolve, 3000, Arbiter, Buyer},
	}
	for _, tt := range tests {
		c, s := PayoutSigners(tt.kind, tt.bps)
		assert.Equal(t, tt.creator, c, "%s %d", tt.kind, tt.bps)
		assert.Equal(t, tt.cosigner, s, "%s %d", tt.kind, tt.bps)
	}
}

func TestTradeInputCheck(t *testing.T) {
	ok := TradeInput{EscrowID: "e1", AmountAtomic: 5, VendorAddress: "V", BuyerRefundAddress: "B"}
	timing, err := ok.Check()
	require.NoError(t, err)
	assert.Equal(t, TradeTiming{DepositTimeout: DefaultDepositTimeout, ScanInterval: DefaultScanInterval,
		Confirmations: DefaultConfirmations, PayoutDeadline: DefaultPayoutDeadline}, timing)

	bound := ok
	bound.DepositTimeout, bound.ScanInterval = "1000s", "1s"
	_, err = bound.Check()
	require.NoError(t, err, "exactly MaxDepositScans")

	set := ok
	set.DepositTimeout, set.ScanInterval, set.Confirmations, set.PayoutDeadline = "90m", "30s", 3, "2h"
	timing, err = set.Check()
	require.NoError(t, err)
	assert.Equal(t, TradeTiming{DepositTimeout: 90 * 60e9, ScanInterval: 30e9, Confirmations: 3, PayoutDeadline: 2 * 3600e9}, timing)

	tests := []struct {
		field string
		edit  func(*TradeInput)
	}{
		{"amountAtomic", func(in *TradeInput) { in.AmountAtomic = 0 }},
		{"vendorAddress", func(in *TradeInput) { in.VendorAddress = "" }},
		{"buyerRefundAddress", func(in *TradeInput) { in.BuyerRefundAddress = "" }},
		{"depositTimeout", func(in *TradeInput) { in.DepositTimeout = "3 days" }},
		{"depositTimeout", func(in *TradeInput) { in.DepositTimeout = "-1h" }},
		{"scanInterval", func(in *TradeInput) { in.ScanInterval = "0s" }},
		{"scanInterval", func(in *TradeInput) { in.DepositTimeout, in.ScanInterval = "72h", "4m" }},
		{"payoutDeadline", func(in *TradeInput) { in.PayoutDeadline = "soon" }},
		{"payoutDeadline", func(in *TradeInput) { in.PayoutDeadline = "0s" }},
	}
	for _, id := range []string{"", "../x", "a b"} {
		in := ok
		in.EscrowID = id
		_, err := in.Check()
		var idErr *InvalidEscrowIDError
		require.ErrorAs(t, err, &idErr, id)
	}
	for _, tt := range tests {
		in := ok
		tt.edit(&in)
		_, err := in.Check()
		var ierr *TradeInputError
		require.ErrorAs(t, err, &ierr, tt.field)
		assert.Equal(t, tt.field, ierr.Field)
	}
}
