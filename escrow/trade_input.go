package escrow

import (
	"fmt"
	"time"
)

// Failure types of the trade added by the workflow side.
const (
	// TypeUpdateRejected: a trade's update validator refused the update (a
	// decision before FUNDED, a second decision, resolve without a dispute,
	// a bad share, a wrong "by"); nothing was recorded.
	TypeUpdateRejected = "UpdateRejected"
	// TypePayoutImpossible: the deposit cannot pay the decided payout (it
	// does not cover the fee budget, or a release's price does not).
	TypePayoutImpossible = "PayoutImpossible"
	// TypePayoutUnconfirmed: the submitted payout did not reach its
	// confirmations in time (the trade's status keeps its txHash: an
	// operator checks the chain).
	TypePayoutUnconfirmed = "PayoutUnconfirmed"
)

// Bounds that keep a trade's workflow history small (every check and
// update is a few events; Temporal caps a history at 51,200).
const (
	// MaxDisputeReason is the longest dispute reason a trade records (bytes).
	MaxDisputeReason = 1000
	// MaxDepositScans bounds DepositTimeout / ScanInterval.
	MaxDepositScans = 1000
	// MaxAnnouncements bounds the deposit updates a trade accepts.
	MaxAnnouncements = 20
)

// TradeInputError reports a TradeInput field that is missing or malformed.
type TradeInputError struct {
	Field  string
	Reason string
}

func (e *TradeInputError) Error() string { return "invalid trade input: " + e.Field + " " + e.Reason }

// TradeTiming is a TradeInput's durations and confirmations with the
// defaults applied.
type TradeTiming struct {
	DepositTimeout time.Duration
	ScanInterval   time.Duration
	Confirmations  uint64
	PayoutDeadline time.Duration
}

// Check returns an *InvalidEscrowIDError for a bad escrow id and a
// *TradeInputError unless in has a positive amount, both addresses, and
// valid durations; it returns the timing with defaults applied. ScanInterval must be at least
// DepositTimeout/MaxDepositScans. It does not check the addresses' network (the worker's
// CheckTradeTerms does).
func (in TradeInput) Check() (TradeTiming, error) {
	t := TradeTiming{DepositTimeout: DefaultDepositTimeout, ScanInterval: DefaultScanInterval,
		Confirmations: in.Confirmations}
	if t.Confirmations == 0 {
		t.Confirmations = DefaultConfirmations
	}
	if err := ValidateEscrowID(in.EscrowID); err != nil {
		return t, err
	}
	switch {
	case in.AmountAtomic == 0:
		return t, &TradeInputError{Field: "amountAtomic", Reason: "must be above 0"}
	case in.VendorAddress == "":
		return t, &TradeInputError{Field: "vendorAddress", Reason: "is missing"}
	case in.BuyerRefundAddress == "":
		return t, &TradeInputError{Field: "buyerRefundAddress", Reason: "is missing"}
	}
	var err error
	if t.DepositTimeout, err = duration("depositTimeout", in.DepositTimeout, DefaultDepositTimeout); err != nil {
		return t, err
	}
	if t.ScanInterval, err = duration("scanInterval", in.ScanInterval, DefaultScanInterval); err != nil {
		return t, err
	}
	if t.PayoutDeadline, err = duration("payoutDeadline", in.PayoutDeadline, DefaultPayoutDeadline); err != nil {
		return t, err
	}
	if t.DepositTimeout/t.ScanInterval > MaxDepositScans {
		return t, &TradeInputError{Field: "scanInterval", Reason: fmt.Sprintf(
			"%s is too short for a deposit timeout of %s: at most %d scans", t.ScanInterval, t.DepositTimeout, MaxDepositScans)}
	}
	return t, nil
}

func duration(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &TradeInputError{Field: field, Reason: fmt.Sprintf("%q is not a Go duration", s)}
	}
	if d <= 0 {
		return 0, &TradeInputError{Field: field, Reason: fmt.Sprintf("%q must be positive", s)}
	}
	return d, nil
}
