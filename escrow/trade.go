package escrow

// The contract of the EscrowTrade workflow: the whole escrow after setup
// (deposit, release, refund, dispute and its resolution). Everything here is
// plain data that the raw Temporal CLI can send and read as JSON.

import "time"

const (
	// TradeWorkflowName is the registered type of the trade workflow. It runs
	// on the shared task queue (escrow-setup).
	TradeWorkflowName = "EscrowTrade"
	// TradeIDPrefix prefixes the escrow id to form the trade's workflow id;
	// its EscrowSetup child keeps the id escrow-<escrowId>.
	TradeIDPrefix = "trade-"
	// TradeStatusQuery is the name of the trade's status query.
	TradeStatusQuery = "status"
)

// TradeWorkflowID returns the workflow id of the trade of escrowID.
func TradeWorkflowID(escrowID string) string { return TradeIDPrefix + escrowID }

// The names of the trade's updates. Each has a validator: a rejected update
// says why and leaves no event in history. Each returns the TradeStatus.
const (
	UpdateDeposit = "deposit" // DepositAnnouncement
	UpdateRelease = "release" // Decision{By: "buyer"}
	UpdateRefund  = "refund"  // Decision{By: "vendor"}
	UpdateDispute = "dispute" // Decision{By: "buyer"|"vendor", Reason}
	UpdateResolve = "resolve" // Decision{By: "arbiter", VendorShareBps}
)

// Defaults of TradeInput.
const (
	DefaultDepositTimeout = 72 * time.Hour
	DefaultConfirmations  = 10
	// DefaultScanInterval is how often a trade awaiting its deposit scans
	// the multisig address when no deposit was announced.
	DefaultScanInterval = 10 * time.Minute
	// MaxShareBps is the whole payout in basis points.
	MaxShareBps = 10000
)

// TradeInput is the input of EscrowTrade:
//
//	{"escrowId","amountAtomic","vendorAddress","buyerRefundAddress",
//	 "depositTimeout":"72h","confirmations":10}
type TradeInput struct {
	EscrowID string `json:"escrowId"`
	// AmountAtomic is the price in piconero the buyer pays in.
	AmountAtomic uint64 `json:"amountAtomic"`
	// VendorAddress receives a release (and the vendor's share of a
	// resolved dispute); BuyerRefundAddress receives a refund, an expired
	// trade's deposit, every excess above AmountAtomic and the buyer's
	// share. Both are checked for the worker's network at start.
	VendorAddress      string `json:"vendorAddress"`
	BuyerRefundAddress string `json:"buyerRefundAddress"`
	// DepositTimeout is a Go duration ("72h"); "" means DefaultDepositTimeout.
	DepositTimeout string `json:"depositTimeout,omitempty"`
	// Confirmations the deposit and the payout need; 0 means
	// DefaultConfirmations.
	Confirmations uint64 `json:"confirmations,omitempty"`
	// ScanInterval is a Go duration; "" means DefaultScanInterval.
	ScanInterval string `json:"scanInterval,omitempty"`

	// Custody, Participants and ParticipantDeadline are passed to the
	// EscrowSetup child (see SetupInput). An external role also creates or
	// co-signs payouts with its own wallet, through payoutRound updates
	// (see PayoutMessage); the hosted arbiter's wallet checks every set an
	// external signer makes before the trade passes it on.
	Custody             map[Role]Custody     `json:"custody,omitempty"`
	Participants        map[Role]Participant `json:"participants,omitempty"`
	ParticipantDeadline string               `json:"participantDeadline,omitempty"`
	// PayoutDeadline is how long a payout step waits for an external
	// signer's message (a Go duration); "" means DefaultPayoutDeadline.
	PayoutDeadline string `json:"payoutDeadline,omitempty"`
}

// SetupInput is the input of the trade's EscrowSetup child.
func (in TradeInput) SetupInput() SetupInput {
	return SetupInput{EscrowID: in.EscrowID, Custody: in.Custody, Participants: in.Participants,
		ParticipantDeadline: in.ParticipantDeadline}
}

// TradeState is the state of a trade, mirrored to the EscrowState search
// attribute of the trade's execution.
type TradeState string

// The states of a trade.
const (
	TradeSettingUp       TradeState = "SETTING_UP"
	TradeAwaitingDeposit TradeState = "AWAITING_DEPOSIT"
	TradeFunded          TradeState = "FUNDED"
	TradeReleasing       TradeState = "RELEASING"
	TradeRefunding       TradeState = "REFUNDING"
	TradeDisputed        TradeState = "DISPUTED"
	TradeResolving       TradeState = "RESOLVING"
	TradePaidOut         TradeState = "PAID_OUT"
	TradeExpired         TradeState = "EXPIRED"
	TradeFailed          TradeState = "FAILED"
)

// DepositAnnouncement is the argument of the deposit update: the buyer's
// payment and its tx key (from the buyer's wallet, get_tx_key). It is
// checked with check_tx_key against the multisig address.
type DepositAnnouncement struct {
	TxID  string `json:"txid"`
	TxKey string `json:"txKey"`
}

// Decision is the argument of the release, refund, dispute and resolve
// updates. By names the role deciding ("buyer", "vendor", "arbiter");
// Reason is free text for a dispute; VendorShareBps (0..10000) is the
// arbiter's split of a resolved dispute.
type Decision struct {
	By             string `json:"by"`
	Reason         string `json:"reason,omitempty"`
	VendorShareBps *int   `json:"vendorShareBps,omitempty"`
}

// PayoutKind says why a payout was made.
type PayoutKind string

// The payout kinds.
const (
	PayoutRelease PayoutKind = "release" // to the vendor, excess to the buyer
	PayoutRefund  PayoutKind = "refund"  // everything to the buyer
	PayoutResolve PayoutKind = "resolve" // split by the arbiter's decision
	PayoutExpired PayoutKind = "expired" // an expired trade's deposit back to the buyer
)

// DepositStatus is what the multisig address has received.
type DepositStatus struct {
	ReceivedAtomic uint64 `json:"receivedAtomic"`
	// Confirmations of the least confirmed incoming transfer counted.
	Confirmations uint64   `json:"confirmations"`
	TxIDs         []string `json:"txids"`
}

// PayoutOutput is one destination of a payout.
type PayoutOutput struct {
	Address      string `json:"address"`
	AmountAtomic uint64 `json:"amountAtomic"`
}

// PayoutStatus is the payout transaction, once decided.
type PayoutStatus struct {
	Kind          PayoutKind     `json:"kind,omitempty"`
	TxHash        string         `json:"txHash,omitempty"`
	Outputs       []PayoutOutput `json:"outputs,omitempty"`
	FeeAtomic     uint64         `json:"feeAtomic,omitempty"`
	Confirmations uint64         `json:"confirmations"`
	// Creator, Cosigner and Attempt are set while a payout with an
	// external signer runs: the two signers, and the attempt (1, 2, …)
	// whose payoutRound messages the trade takes (see PayoutRoundName).
	Creator  Role `json:"creator,omitempty"`
	Cosigner Role `json:"cosigner,omitempty"`
	Attempt  int  `json:"attempt,omitempty"`
}

// TradeStatus answers the trade's status query, each update, and is the
// trade's result.
type TradeStatus struct {
	EscrowID        string        `json:"escrowId"`
	State           TradeState    `json:"state"`
	MultisigAddress string        `json:"multisigAddress,omitempty"`
	Deposit         DepositStatus `json:"deposit"`
	Payout          PayoutStatus  `json:"payout"`
	// Dispute is the reason a party gave when it opened a dispute.
	Dispute string `json:"dispute,omitempty"`
	// Reason and ReasonType explain a FAILED (or EXPIRED) state.
	Reason     string `json:"reason,omitempty"`
	ReasonType string `json:"reasonType,omitempty"`
}

// PayoutPlan is a decided payout, computed by the trade workflow from the
// decision, the terms and the deposit (see PlanPayout), created by one
// signer's wallet and checked with describe_transfer by the other before it
// signs.
type PayoutPlan struct {
	Kind PayoutKind `json:"kind"`
	// MultisigAddress is the escrow's address: the only place change may go.
	MultisigAddress string `json:"multisigAddress"`
	// TotalAtomic is the unlocked balance the payout spends.
	TotalAtomic uint64 `json:"totalAtomic"`
	// SweepTo, when set, makes the payout a sweep: the whole balance less
	// the fee to this one address, no change, and Outputs empty.
	SweepTo string `json:"sweepTo,omitempty"`
	// Outputs are exact destinations (a transfer). Their amounts were
	// computed with FeeBudgetAtomic taken off; what the real fee leaves of
	// that budget returns to MultisigAddress as change.
	Outputs []PayoutOutput `json:"outputs,omitempty"`
	// FeeBudgetAtomic is the most the payout may pay in fees: the daemon's
	// estimate for the payout's size times a documented margin.
	FeeBudgetAtomic uint64 `json:"feeBudgetAtomic"`
}
