package activities

// The activities of the EscrowTrade workflow (the money flow after setup).
// This file fixes their input and output types (the activities are in
// trade_chain.go, trade_deposit.go and trade_payout.go); the
// workflow in workflows/ is written against it.
//
// Queues: CheckTradeTerms, EstimatePayoutFee and CheckPayoutTx talk only to
// the daemon and run on the shared queue; every activity that opens an
// escrow's wallet runs on the task queue of the worker holding its files
// (SetupResult.HostTaskQueue).

import (
	"github.com/escrowflow/escrowflow/escrow"
)

// TermsInput is the input of CheckTradeTerms.
type TermsInput struct {
	EscrowID           string `json:"escrowId"`
	AmountAtomic       uint64 `json:"amountAtomic"`
	VendorAddress      string `json:"vendorAddress"`
	BuyerRefundAddress string `json:"buyerRefundAddress"`
}

// TermsOutput is the result of CheckTradeTerms.
type TermsOutput struct {
	// Network is the network the worker and its daemon run on
	// ("mainnet", "testnet", "stagenet"; regtest counts as "mainnet"
	// for addresses and reports Regtest).
	Network string `json:"network"`
	Regtest bool   `json:"regtest,omitempty"`
	// WalletRPCVersion is the worker's monero-wallet-rpc version
	// (major.minor.patch.build as reported by get_version).
	WalletRPCVersion string `json:"walletRpcVersion"`
}

// DepositCheckInput is the input of CheckDeposit.
type DepositCheckInput struct {
	EscrowID        string `json:"escrowId"`
	MultisigAddress string `json:"multisigAddress"`
	// Role and Wallet name a committed snapshot whose wallet sees the
	// multisig address's incoming transfers (any role's final wallet).
	Role   string `json:"role"`
	Wallet string `json:"wallet"`
	// Announced, when set, is checked with check_tx_key (no scan needed).
	Announced *escrow.DepositAnnouncement `json:"announced,omitempty"`
	// Scan makes the check refresh the wallet and count every incoming
	// transfer to the multisig address.
	Scan bool `json:"scan,omitempty"`
}

// DepositCheckOutput is the result of CheckDeposit.
type DepositCheckOutput struct {
	Deposit escrow.DepositStatus `json:"deposit"`
	// UnlockedAtomic is the part of the deposit that is spendable now.
	UnlockedAtomic uint64 `json:"unlockedAtomic"`
	// AnnouncedValid is false when the announced tx key does not prove a
	// payment to the multisig address.
	AnnouncedValid bool `json:"announcedValid"`
}

// FeeInput is the input of EstimatePayoutFee.
type FeeInput struct {
	// Outputs is the number of destinations (1 for a sweep, 2 for a split).
	Outputs int `json:"outputs"`
	// Inputs is the number of outputs the payout spends (deposit transfers).
	Inputs int `json:"inputs"`
}

// FeeOutput is the result of EstimatePayoutFee.
type FeeOutput struct {
	// EstimateAtomic is the daemon's fee for a payout of that shape.
	EstimateAtomic uint64 `json:"estimateAtomic"`
	// BudgetAtomic is EstimateAtomic times the documented margin: the most
	// a payout may pay (PayoutPlan.FeeBudgetAtomic).
	BudgetAtomic uint64 `json:"budgetAtomic"`
}

// PayoutStepInput is the input of ExportMultisig and ImportMultisig: one
// signer's wallet, from its last committed snapshot.
type PayoutStepInput struct {
	EscrowID string `json:"escrowId"`
	Role     string `json:"role"`
	Snapshot string `json:"snapshot"`
	// PeerInfos are the other signers' exported multisig infos
	// (ImportMultisig only).
	PeerInfos []string `json:"peerInfos,omitempty"`
}

// PayoutStepOutput is the result of ExportMultisig and ImportMultisig.
type PayoutStepOutput struct {
	// Snapshot is committed after the step (export makes fresh nonces,
	// which must be on disk before the info leaves the activity).
	Snapshot string `json:"snapshot"`
	// Info is the exported multisig info (ExportMultisig only).
	Info string `json:"info,omitempty"`
	// Outputs is import_multisig_info's n_outputs (ImportMultisig only).
	Outputs int `json:"outputs,omitempty"`
	// UnlockedAtomic is the wallet's unlocked balance after the step.
	UnlockedAtomic uint64 `json:"unlockedAtomic"`
	Attempt        int32  `json:"attempt"`
	RPCMs          int64  `json:"rpcMs"`
}

// CreatePayoutInput is the input of CreatePayout.
type CreatePayoutInput struct {
	EscrowID string            `json:"escrowId"`
	Role     string            `json:"role"` // the creating signer
	Snapshot string            `json:"snapshot"`
	Plan     escrow.PayoutPlan `json:"plan"`
}

// CreatePayoutOutput is the result of CreatePayout.
type CreatePayoutOutput struct {
	// Snapshot is committed after transfer/sweep_all (nonces used).
	Snapshot string `json:"snapshot"`
	// TxSet is the multisig_txset, signed by the creator.
	TxSet string `json:"txSet"`
	// TxSetDigest is the hex SHA-256 of TxSet.
	TxSetDigest string `json:"txSetDigest"`
	// FeeAtomic and Outputs are what the creator's describe_transfer says.
	FeeAtomic uint64                `json:"feeAtomic"`
	Outputs   []escrow.PayoutOutput `json:"outputs"`
	Attempt   int32                 `json:"attempt"`
	RPCMs     int64                 `json:"rpcMs"`
}

// SignPayoutInput is the input of SignPayout and VerifyPayout.
type SignPayoutInput struct {
	EscrowID string            `json:"escrowId"`
	Role     string            `json:"role"` // the co-signer (or the checker)
	Snapshot string            `json:"snapshot"`
	TxSet    string            `json:"txSet"`
	Plan     escrow.PayoutPlan `json:"plan"`
}

// SignPayoutOutput is the result of SignPayout.
type SignPayoutOutput struct {
	// Snapshot is committed after sign_multisig.
	Snapshot string `json:"snapshot"`
	// SignedTxSet is sign_multisig's tx_data_hex, fully signed.
	SignedTxSet string `json:"signedTxSet"`
	// TxHashes are the payout's transaction hashes.
	TxHashes  []string              `json:"txHashes"`
	FeeAtomic uint64                `json:"feeAtomic"`
	Outputs   []escrow.PayoutOutput `json:"outputs"`
	Attempt   int32                 `json:"attempt"`
	RPCMs     int64                 `json:"rpcMs"`
}

// VerifyPayoutOutput is the result of VerifyPayout.
type VerifyPayoutOutput struct {
	FeeAtomic uint64                `json:"feeAtomic"`
	Outputs   []escrow.PayoutOutput `json:"outputs"`
}

// SubmitPayoutInput is the input of SubmitPayout.
type SubmitPayoutInput struct {
	EscrowID    string   `json:"escrowId"`
	Role        string   `json:"role"`
	Snapshot    string   `json:"snapshot"`
	SignedTxSet string   `json:"signedTxSet"`
	TxHashes    []string `json:"txHashes"`
}

// SubmitPayoutOutput is the result of SubmitPayout.
type SubmitPayoutOutput struct {
	TxHash string `json:"txHash"`
}

// TxCheckInput is the input of CheckPayoutTx.
type TxCheckInput struct {
	TxHash string `json:"txHash"`
}

// TxCheckOutput is the result of CheckPayoutTx.
type TxCheckOutput struct {
	InPool        bool   `json:"inPool"`
	Confirmations uint64 `json:"confirmations"`
	// Found is false when neither the pool nor the chain knows the hash.
	Found bool `json:"found"`
}
