package escrow

import (
	"errors"
	"fmt"
)

// PayoutTerms are the parts of a trade's terms a payout needs.
type PayoutTerms struct {
	AmountAtomic       uint64
	VendorAddress      string
	BuyerRefundAddress string
}

// PayoutPlanError says why no payout can be planned (a deposit that does
// not cover the fee budget, a release of less than the price, a bad share).
type PayoutPlanError struct{ Reason string }

func (e *PayoutPlanError) Error() string { return "cannot plan the payout: " + e.Reason }

// ErrNothingToPay is wrapped by the PayoutPlanError of a deposit that does
// not exceed the fee budget: nothing could reach a recipient.
var ErrNothingToPay = errors.New("the deposit does not exceed the fee budget")

// Unwrap returns ErrNothingToPay for a deposit below the fee budget.
func (e *PayoutPlanError) Unwrap() error {
	if e.Reason == ErrNothingToPay.Error() {
		return ErrNothingToPay
	}
	return nil
}

// PlanPayout decides the payout of a trade. depositAtomic is the unlocked
// balance of the multisig address the payout spends; vendorShareBps is
// the arbiter's split (only for PayoutResolve, 0..MaxShareBps); feeBudget
// is the most the payout may pay in fees.
//
//   - release: AmountAtomic less the fee to the vendor, the excess
//     (depositAtomic − AmountAtomic) to the buyer;
//   - refund and expired: everything less the fee to the buyer;
//   - resolve: everything less the fee budget split by vendorShareBps,
//     the vendor's share rounded down.
//
// A single recipient gets a sweep (SweepTo): the whole balance less the
// real fee, no change, no dust. Two recipients get exact Outputs computed
// with the whole fee budget taken off; the transfer returns what the real
// fee leaves of the budget to the multisig address as change, so the dust
// a payout leaves is at most FeeBudgetAtomic − fee < FeeBudgetAtomic.
func PlanPayout(kind PayoutKind, terms PayoutTerms, depositAtomic uint64, vendorShareBps int,
	multisig string, feeBudget uint64) (PayoutPlan, error) {
	plan := PayoutPlan{Kind: kind, MultisigAddress: multisig, TotalAtomic: depositAtomic, FeeBudgetAtomic: feeBudget}
	switch {
	case multisig == "":
		return PayoutPlan{}, &PayoutPlanError{Reason: "no multisig address"}
	case terms.VendorAddress == "" || terms.BuyerRefundAddress == "":
		return PayoutPlan{}, &PayoutPlanError{Reason: "a recipient address is missing"}
	case depositAtomic <= feeBudget:
		return PayoutPlan{}, &PayoutPlanError{Reason: ErrNothingToPay.Error()}
	}
	net := depositAtomic - feeBudget
	var vendor, buyer uint64 // what each gets; the fee comes off the sweep or the budget
	switch kind {
	case PayoutRelease:
		if depositAtomic < terms.AmountAtomic {
			return PayoutPlan{}, &PayoutPlanError{Reason: fmt.Sprintf(
				"the deposit %d is below the price %d", depositAtomic, terms.AmountAtomic)}
		}
		if terms.AmountAtomic <= feeBudget {
			return PayoutPlan{}, &PayoutPlanError{Reason: fmt.Sprintf(
				"the price %d does not exceed the fee budget %d", terms.AmountAtomic, feeBudget)}
		}
		vendor, buyer = terms.AmountAtomic-feeBudget, depositAtomic-terms.AmountAtomic
	case PayoutRefund, PayoutExpired:
		buyer = net
	case PayoutResolve:
		if vendorShareBps < 0 || vendorShareBps > MaxShareBps {
			return PayoutPlan{}, &PayoutPlanError{Reason: fmt.Sprintf(
				"vendorShareBps %d is not in 0..%d", vendorShareBps, MaxShareBps)}
		}
		bps := uint64(vendorShareBps)
		// net*bps/MaxShareBps without overflowing 64 bits.
		vendor = net/MaxShareBps*bps + net%MaxShareBps*bps/MaxShareBps
		buyer = net - vendor
	default:
		return PayoutPlan{}, &PayoutPlanError{Reason: fmt.Sprintf("unknown payout kind %q", kind)}
	}
	switch {
	case buyer == 0:
		plan.SweepTo = terms.VendorAddress
	case vendor == 0:
		plan.SweepTo = terms.BuyerRefundAddress
	default:
		plan.Outputs = []PayoutOutput{
			{Address: terms.VendorAddress, AmountAtomic: vendor},
			{Address: terms.BuyerRefundAddress, AmountAtomic: buyer},
		}
	}
	return plan, nil
}

// PayoutSigners returns the role that creates a payout of kind and the
// role that checks and co-signs it: release → buyer creates, vendor
// co-signs; refund → vendor creates, buyer co-signs; resolve → arbiter
// creates, the party with the larger share co-signs (the buyer on a tie:
// its money is what is at stake); expired → arbiter creates, buyer
// co-signs.
func PayoutSigners(kind PayoutKind, vendorShareBps int) (creator, cosigner Role) {
	switch kind {
	case PayoutRelease:
		return Buyer, Vendor
	case PayoutRefund:
		return Vendor, Buyer
	case PayoutResolve:
		if vendorShareBps > MaxShareBps/2 {
			return Arbiter, Vendor
		}
		return Arbiter, Buyer
	default:
		return Arbiter, Buyer
	}
}
