package rpcclient

import "context"

// JSON-RPC method names of monero-wallet-rpc used by the money flow.
const (
	MethodGetTransfers     = "get_transfers"
	MethodCheckTxKey       = "check_tx_key"
	MethodGetTxKey         = "get_tx_key"
	MethodDescribeTransfer = "describe_transfer"
	MethodSweepAll         = "sweep_all"
	MethodGetHeight        = "get_height"
	MethodValidateAddress  = "validate_address"
)

// Transfer is one entry of get_transfers. Amount and Fee are in atomic
// units; Locked is true while the outputs cannot be spent yet.
type Transfer struct {
	TxID            string `json:"txid"`
	Type            string `json:"type"`
	Address         string `json:"address"`
	Amount          uint64 `json:"amount"`
	Fee             uint64 `json:"fee"`
	Height          uint64 `json:"height"`
	Confirmations   uint64 `json:"confirmations"`
	Locked          bool   `json:"locked"`
	UnlockTime      uint64 `json:"unlock_time"`
	DoubleSpendSeen bool   `json:"double_spend_seen"`
}

// Transfers is the result of get_transfers, by kind.
type Transfers struct {
	In      []Transfer `json:"in"`
	Out     []Transfer `json:"out"`
	Pending []Transfer `json:"pending"`
	Pool    []Transfer `json:"pool"`
}

// GetTransfersParams selects the kinds get_transfers returns.
type GetTransfersParams struct {
	In      bool `json:"in,omitempty"`
	Out     bool `json:"out,omitempty"`
	Pending bool `json:"pending,omitempty"`
	Failed  bool `json:"failed,omitempty"`
	Pool    bool `json:"pool,omitempty"`
}

// GetTransfers calls get_transfers for account 0 with the kinds p selects.
func (c *Client) GetTransfers(ctx context.Context, p GetTransfersParams) (Transfers, error) {
	return call[Transfers](ctx, c, MethodGetTransfers, p)
}

// TxKeyCheck is the result of check_tx_key: what the transaction paid to
// the address. A wrong key gives Received 0, not an error.
type TxKeyCheck struct {
	Received      uint64 `json:"received"`
	Confirmations uint64 `json:"confirmations"`
	InPool        bool   `json:"in_pool"`
}

// CheckTxKey calls check_tx_key: how much txid paid to address, proven with
// the transaction's secret key txKey. It needs an open wallet (any wallet)
// and a daemon; an unknown txid fails CodeUnknown.
func (c *Client) CheckTxKey(ctx context.Context, txid, txKey, address string) (TxKeyCheck, error) {
	return call[TxKeyCheck](ctx, c, MethodCheckTxKey, struct {
		TxID    string `json:"txid"`
		TxKey   string `json:"tx_key"`
		Address string `json:"address"`
	}{txid, txKey, address})
}

// QueryViewKey calls query_key with key_type view_key: the open wallet's
// private view key (a secret: never log it).
func (c *Client) QueryViewKey(ctx context.Context) (string, error) {
	r, err := call[struct {
		Key string `json:"key"`
	}](ctx, c, "query_key", struct {
		KeyType string `json:"key_type"`
	}{"view_key"})
	return r.Key, err
}

// GetTxKey calls get_tx_key: the secret key of a transaction this wallet
// sent (what a buyer announces with its deposit).
func (c *Client) GetTxKey(ctx context.Context, txid string) (string, error) {
	r, err := call[struct {
		TxKey string `json:"tx_key"`
	}](ctx, c, MethodGetTxKey, struct {
		TxID string `json:"txid"`
	}{txid})
	return r.TxKey, err
}

// TransferDescription describes one transaction of an unsigned or multisig
// transaction set (describe_transfer). Amounts are in atomic units.
type TransferDescription struct {
	AmountIn      uint64        `json:"amount_in"`
	AmountOut     uint64        `json:"amount_out"`
	Recipients    []Destination `json:"recipients"`
	ChangeAddress string        `json:"change_address"`
	ChangeAmount  uint64        `json:"change_amount"`
	Fee           uint64        `json:"fee"`
	UnlockTime    uint64        `json:"unlock_time"`
	RingSize      uint64        `json:"ring_size"`
	DummyOutputs  uint64        `json:"dummy_outputs"`
	PaymentID     string        `json:"payment_id"`
}

// DescribeTransfer calls describe_transfer on a multisig_txset and returns
// one description per transaction in the set.
func (c *Client) DescribeTransfer(ctx context.Context, multisigTxset string) ([]TransferDescription, error) {
	r, err := call[struct {
		Desc []TransferDescription `json:"desc"`
	}](ctx, c, MethodDescribeTransfer, struct {
		MultisigTxset string `json:"multisig_txset"`
	}{multisigTxset})
	return r.Desc, err
}

// SweepAllParams are the params of sweep_all: every unlocked output of the
// account to Address.
type SweepAllParams struct {
	Address      string `json:"address"`
	AccountIndex uint32 `json:"account_index"`
	Priority     uint32 `json:"priority"`
}

// SweepAllResult is the result of sweep_all. In a multisig wallet nothing is
// broadcast and MultisigTxset holds the set to pass to SignMultisig.
type SweepAllResult struct {
	TxHashList    []string `json:"tx_hash_list"`
	AmountList    []uint64 `json:"amount_list"`
	FeeList       []uint64 `json:"fee_list"`
	WeightList    []uint64 `json:"weight_list"`
	MultisigTxset string   `json:"multisig_txset"`
}

// SweepAll calls sweep_all with p.
func (c *Client) SweepAll(ctx context.Context, p SweepAllParams) (SweepAllResult, error) {
	return call[SweepAllResult](ctx, c, MethodSweepAll, p)
}

// GetHeight calls get_height: the open wallet's chain height.
func (c *Client) GetHeight(ctx context.Context) (uint64, error) {
	r, err := call[struct {
		Height uint64 `json:"height"`
	}](ctx, c, MethodGetHeight, nil)
	return r.Height, err
}

// AddressValidation is the result of validate_address. Nettype is
// "mainnet", "testnet" or "stagenet" for a valid address ("mainnet" on
// regtest too).
type AddressValidation struct {
	Valid      bool   `json:"valid"`
	Integrated bool   `json:"integrated"`
	Subaddress bool   `json:"subaddress"`
	Nettype    string `json:"nettype"`
}

// ValidateAddress calls validate_address for the open wallet's network. It
// needs an open wallet (CodeNotOpen otherwise).
func (c *Client) ValidateAddress(ctx context.Context, address string) (AddressValidation, error) {
	return call[AddressValidation](ctx, c, MethodValidateAddress, struct {
		Address string `json:"address"`
	}{address})
}
