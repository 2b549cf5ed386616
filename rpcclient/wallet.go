package rpcclient

import "context"

// JSON-RPC method names of monero-wallet-rpc used by the typed methods; use
// them as keys of Config.MethodTimeouts.
const (
	MethodGetVersion           = "get_version"
	MethodCreateWallet         = "create_wallet"
	MethodOpenWallet           = "open_wallet"
	MethodCloseWallet          = "close_wallet"
	MethodStore                = "store"
	MethodGetAddress           = "get_address"
	MethodIsMultisig           = "is_multisig"
	MethodPrepareMultisig      = "prepare_multisig"
	MethodMakeMultisig         = "make_multisig"
	MethodExchangeMultisigKeys = "exchange_multisig_keys"
	MethodExportMultisigInfo   = "export_multisig_info"
	MethodImportMultisigInfo   = "import_multisig_info"
	MethodTransfer             = "transfer"
	MethodSignMultisig         = "sign_multisig"
	MethodSubmitMultisig       = "submit_multisig"
	MethodGetBalance           = "get_balance"
	MethodRefresh              = "refresh"
	MethodChangeWalletPassword = "change_wallet_password"
)

// Version is the result of get_version. Version is the wallet RPC protocol
// version, major<<16 | minor; Release is false for development builds.
type Version struct {
	Version uint32 `json:"version"`
	Release bool   `json:"release"`
}

// MultisigStatus is the result of is_multisig. Multisig is true once
// make_multisig has run; Ready is true once key exchange is complete.
// Threshold and Total are M and N of the M-of-N wallet (zero if not
// multisig).
type MultisigStatus struct {
	Multisig  bool   `json:"multisig"`
	Ready     bool   `json:"ready"`
	Threshold uint32 `json:"threshold"`
	Total     uint32 `json:"total"`
}

// MultisigRound is the result of make_multisig and exchange_multisig_keys.
// MultisigInfo is this wallet's key-exchange message for the next round, to
// be sent to every other participant; it is empty once key exchange is
// complete. Address is the multisig address, set once it is known.
type MultisigRound struct {
	Address      string `json:"address"`
	MultisigInfo string `json:"multisig_info"`
}

// Destination is one output of a transfer: Amount in atomic units
// (piconero) to Address.
type Destination struct {
	Amount  uint64 `json:"amount"`
	Address string `json:"address"`
}

// TransferParams are the params of transfer. Destinations, AccountIndex and
// Priority are always sent (Priority 0 is the wallet's default priority);
// the other fields are sent only when set.
type TransferParams struct {
	Destinations   []Destination `json:"destinations"`
	AccountIndex   uint32        `json:"account_index"`
	SubaddrIndices []uint32      `json:"subaddr_indices,omitempty"`
	Priority       uint32        `json:"priority"`
	RingSize       uint64        `json:"ring_size,omitempty"`
	UnlockTime     uint64        `json:"unlock_time,omitempty"`
	PaymentID      string        `json:"payment_id,omitempty"`
	GetTxKey       bool          `json:"get_tx_key,omitempty"`
	DoNotRelay     bool          `json:"do_not_relay,omitempty"`
	GetTxHex       bool          `json:"get_tx_hex,omitempty"`
	GetTxMetadata  bool          `json:"get_tx_metadata,omitempty"`
}

// TransferResult is the result of transfer. In a multisig wallet nothing is
// broadcast: TxHash and TxKey are empty and MultisigTxset holds the
// partially signed transaction set to pass to SignMultisig. Amount and Fee
// are in atomic units.
type TransferResult struct {
	TxHash        string `json:"tx_hash"`
	TxKey         string `json:"tx_key"`
	Amount        uint64 `json:"amount"`
	Fee           uint64 `json:"fee"`
	Weight        uint64 `json:"weight"`
	TxBlob        string `json:"tx_blob"`
	TxMetadata    string `json:"tx_metadata"`
	MultisigTxset string `json:"multisig_txset"`
	UnsignedTxset string `json:"unsigned_txset"`
}

// SignMultisigResult is the result of sign_multisig. TxDataHex is the
// transaction set with this wallet's signature added; TxHashList is
// non-empty once enough signatures are present to submit.
type SignMultisigResult struct {
	TxDataHex  string   `json:"tx_data_hex"`
	TxHashList []string `json:"tx_hash_list"`
}

// Balance is the result of get_balance for one account, in atomic units.
// MultisigImportNeeded is true when the balance is unreliable until
// multisig info from the other participants is imported.
type Balance struct {
	Balance              uint64 `json:"balance"`
	UnlockedBalance      uint64 `json:"unlocked_balance"`
	MultisigImportNeeded bool   `json:"multisig_import_needed"`
	BlocksToUnlock       uint64 `json:"blocks_to_unlock"`
	TimeToUnlock         uint64 `json:"time_to_unlock"`
}

// RefreshResult is the result of refresh.
type RefreshResult struct {
	BlocksFetched uint64 `json:"blocks_fetched"`
	ReceivedMoney bool   `json:"received_money"`
}

// empty decodes the empty result object of methods that return nothing.
type empty struct{}

// call runs Call and returns the decoded result, or T's zero value on error.
func call[T any](ctx context.Context, c *Client, method string, params any) (T, error) {
	var out T
	if err := c.Call(ctx, method, params, &out); err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// nonNil makes a nil slice encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetVersion calls get_version (no params) and returns the RPC version.
func (c *Client) GetVersion(ctx context.Context) (Version, error) {
	return call[Version](ctx, c, MethodGetVersion, nil)
}

// CreateWallet calls create_wallet to create and open filename (relative to
// --wallet-dir) with an English seed, encrypted with password. An existing
// file fails with CodeAlreadyExists.
func (c *Client) CreateWallet(ctx context.Context, filename, password string) error {
	_, err := call[empty](ctx, c, MethodCreateWallet, struct {
		Filename string `json:"filename"`
		Password string `json:"password"`
		Language string `json:"language"`
	}{filename, password, "English"})
	return err
}

// OpenWallet calls open_wallet to open filename (relative to --wallet-dir),
// closing and saving any wallet already open. A wrong password fails with
// CodeInvalidPassword.
func (c *Client) OpenWallet(ctx context.Context, filename, password string) error {
	_, err := call[empty](ctx, c, MethodOpenWallet, struct {
		Filename string `json:"filename"`
		Password string `json:"password"`
	}{filename, password})
	return err
}

// CloseWallet calls close_wallet (no params), which saves and closes the
// open wallet. With no wallet open it fails with CodeNotOpen.
func (c *Client) CloseWallet(ctx context.Context) error {
	_, err := call[empty](ctx, c, MethodCloseWallet, nil)
	return err
}

// DropWallet calls close_wallet with autosave_current false: it closes the
// open wallet without saving it, so that a wallet left open in a process
// whose state is unknown writes nothing more. With no wallet open it fails
// with CodeNotOpen.
func (c *Client) DropWallet(ctx context.Context) error {
	_, err := call[empty](ctx, c, MethodCloseWallet, struct {
		AutosaveCurrent bool `json:"autosave_current"`
	}{false})
	return err
}

// Store calls store (no params), which saves the open wallet to disk.
func (c *Client) Store(ctx context.Context) error {
	_, err := call[empty](ctx, c, MethodStore, nil)
	return err
}

// GetAddress calls get_address for account 0 and returns its primary
// address (the result's "address" member).
func (c *Client) GetAddress(ctx context.Context) (string, error) {
	r, err := call[struct {
		Address string `json:"address"`
	}](ctx, c, MethodGetAddress, struct {
		AccountIndex uint32 `json:"account_index"`
	}{0})
	return r.Address, err
}

// IsMultisig calls is_multisig (no params) and returns the wallet's
// multisig status.
func (c *Client) IsMultisig(ctx context.Context) (MultisigStatus, error) {
	return call[MultisigStatus](ctx, c, MethodIsMultisig, nil)
}

// PrepareMultisig calls prepare_multisig and returns this wallet's first
// key-exchange message (multisig_info). enableExperimental sets
// enable_multisig_experimental; without it v0.18 refuses with
// CodeMultisigDisabled unless the wallet already enabled multisig.
func (c *Client) PrepareMultisig(ctx context.Context, enableExperimental bool) (string, error) {
	r, err := call[struct {
		MultisigInfo string `json:"multisig_info"`
	}](ctx, c, MethodPrepareMultisig, struct {
		EnableMultisigExperimental bool `json:"enable_multisig_experimental"`
	}{enableExperimental})
	return r.MultisigInfo, err
}

// MakeMultisig calls make_multisig with the other participants'
// prepare_multisig messages, turning this wallet into a threshold-of-N
// multisig wallet (N = len(infos)+1), and returns the next round's message.
func (c *Client) MakeMultisig(ctx context.Context, infos []string, threshold uint32, password string) (MultisigRound, error) {
	return call[MultisigRound](ctx, c, MethodMakeMultisig, struct {
		MultisigInfo []string `json:"multisig_info"`
		Threshold    uint32   `json:"threshold"`
		Password     string   `json:"password"`
	}{nonNil(infos), threshold, password})
}

// ExchangeMultisigKeys calls exchange_multisig_keys with the other
// participants' messages of the current key-exchange round and returns this
// wallet's message for the next round (empty MultisigInfo once done). It
// sends only multisig_info and password.
func (c *Client) ExchangeMultisigKeys(ctx context.Context, infos []string, password string) (MultisigRound, error) {
	return call[MultisigRound](ctx, c, MethodExchangeMultisigKeys, struct {
		MultisigInfo []string `json:"multisig_info"`
		Password     string   `json:"password"`
	}{nonNil(infos), password})
}

// ExportMultisigInfo calls export_multisig_info (no params) and returns
// this wallet's partial key images (the result's "info" member) for the
// other participants to import.
func (c *Client) ExportMultisigInfo(ctx context.Context) (string, error) {
	r, err := call[struct {
		Info string `json:"info"`
	}](ctx, c, MethodExportMultisigInfo, nil)
	return r.Info, err
}

// ImportMultisigInfo calls import_multisig_info with the other
// participants' export_multisig_info results (param "info") and returns the
// number of outputs updated ("n_outputs").
func (c *Client) ImportMultisigInfo(ctx context.Context, infos []string) (int, error) {
	r, err := call[struct {
		NOutputs int `json:"n_outputs"`
	}](ctx, c, MethodImportMultisigInfo, struct {
		Info []string `json:"info"`
	}{nonNil(infos)})
	return r.NOutputs, err
}

// Transfer calls transfer with p. In a multisig wallet the result carries
// MultisigTxset for SignMultisig instead of broadcasting.
func (c *Client) Transfer(ctx context.Context, p TransferParams) (TransferResult, error) {
	return call[TransferResult](ctx, c, MethodTransfer, p)
}

// SignMultisig calls sign_multisig with a multisig transaction set (hex)
// and returns it with this wallet's signature added.
func (c *Client) SignMultisig(ctx context.Context, txDataHex string) (SignMultisigResult, error) {
	return call[SignMultisigResult](ctx, c, MethodSignMultisig, struct {
		TxDataHex string `json:"tx_data_hex"`
	}{txDataHex})
}

// SubmitMultisig calls submit_multisig with a fully signed multisig
// transaction set (hex), broadcasting it, and returns the transaction hashes
// ("tx_hash_list").
func (c *Client) SubmitMultisig(ctx context.Context, txDataHex string) ([]string, error) {
	r, err := call[struct {
		TxHashList []string `json:"tx_hash_list"`
	}](ctx, c, MethodSubmitMultisig, struct {
		TxDataHex string `json:"tx_data_hex"`
	}{txDataHex})
	return r.TxHashList, err
}

// GetBalance calls get_balance for accountIndex and returns its balance.
func (c *Client) GetBalance(ctx context.Context, accountIndex uint32) (Balance, error) {
	return call[Balance](ctx, c, MethodGetBalance, struct {
		AccountIndex uint32 `json:"account_index"`
	}{accountIndex})
}

// Refresh calls refresh, scanning the chain from startHeight (0 resumes from
// the wallet's last scanned height), and returns what was fetched. Refresh
// can take long on a fresh wallet: give it a generous MethodTimeouts entry.
func (c *Client) Refresh(ctx context.Context, startHeight uint64) (RefreshResult, error) {
	return call[RefreshResult](ctx, c, MethodRefresh, struct {
		StartHeight uint64 `json:"start_height"`
	}{startHeight})
}

// ChangeWalletPassword calls change_wallet_password, re-encrypting the open
// wallet from oldPassword to newPassword. A wrong oldPassword fails with
// CodeInvalidPassword.
func (c *Client) ChangeWalletPassword(ctx context.Context, oldPassword, newPassword string) error {
	_, err := call[empty](ctx, c, MethodChangeWalletPassword, struct {
		OldPassword string `json:"old_password"`
		NewPassword string `json:"new_password"`
	}{oldPassword, newPassword})
	return err
}
