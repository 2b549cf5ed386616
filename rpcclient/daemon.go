package rpcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Methods of monerod used by the money flow. The first three are JSON-RPC
// methods at /json_rpc; DaemonGetTransactions is the plain endpoint
// /get_transactions. Errors name them with a "monerod " prefix.
const (
	DaemonGetInfo         = "get_info"
	DaemonGetFeeEstimate  = "get_fee_estimate"
	DaemonGenerateBlocks  = "generateblocks"
	DaemonGetTransactions = "get_transactions"
	// The chain scan of deposits (package chainscan): JSON-RPC
	// get_block_headers_range and get_block, plain /get_transaction_pool.
	DaemonGetBlockHeadersRange = "get_block_headers_range"
	DaemonGetBlock             = "get_block"
	DaemonGetTransactionPool   = "get_transaction_pool"
)

// Daemon is a small client of monerod's RPC (the daemon, not the wallet).
// It returns the same error types as Client: *RPCError for a JSON-RPC error
// or a daemon "status" other than OK (Code CodeDaemonBusy for "BUSY",
// CodeUnknown otherwise), *HTTPError and *TransportError.
type Daemon struct {
	rpc  *Client
	base string
	hc   *http.Client
}

// NewDaemon returns a client of the monerod at address (host:port or a
// http:// URL) with a per-call timeout.
func NewDaemon(address string, timeout time.Duration) *Daemon {
	base := strings.TrimRight(address, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	cfg := DefaultConfig()
	cfg.URL, cfg.Timeout = base, timeout
	return &Daemon{rpc: New(cfg), base: base, hc: &http.Client{Timeout: timeout}}
}

// Address returns the daemon's base URL.
func (d *Daemon) Address() string { return d.base }

// DaemonInfo is the part of get_info the money flow uses. Nettype is
// "mainnet", "testnet", "stagenet" or "fakechain" (regtest).
type DaemonInfo struct {
	Status       string `json:"status"`
	Height       uint64 `json:"height"`
	Nettype      string `json:"nettype"`
	Offline      bool   `json:"offline"`
	Synchronized bool   `json:"synchronized"`
	TxPoolSize   uint64 `json:"tx_pool_size"`
	Version      string `json:"version"`
}

// FeeEstimate is the result of get_fee_estimate: Fee per byte of weight,
// Fees per priority, and the mask fees are rounded up to.
type FeeEstimate struct {
	Status           string   `json:"status"`
	Fee              uint64   `json:"fee"`
	Fees             []uint64 `json:"fees"`
	QuantizationMask uint64   `json:"quantization_mask"`
}

// TxStatus is one transaction found by GetTransactions.
type TxStatus struct {
	TxHash          string `json:"tx_hash"`
	InPool          bool   `json:"in_pool"`
	BlockHeight     uint64 `json:"block_height"`
	Confirmations   uint64 `json:"confirmations"`
	DoubleSpendSeen bool   `json:"double_spend_seen"`
	// AsJSON is the transaction in monerod's JSON form (GetTransactionsJSON
	// only).
	AsJSON string `json:"as_json,omitempty"`
}

// TxLookup is the result of GetTransactions: the transactions found (in the
// pool or the chain) and the hashes the daemon does not know.
type TxLookup struct {
	Status string     `json:"status"`
	Txs    []TxStatus `json:"txs"`
	Missed []string   `json:"missed_tx"`
}

// GeneratedBlocks is the result of generateblocks.
type GeneratedBlocks struct {
	Status string   `json:"status"`
	Height uint64   `json:"height"`
	Blocks []string `json:"blocks"`
}

func daemonStatus(method, status string) error {
	switch status {
	case "OK":
		return nil
	case "BUSY":
		return &RPCError{Method: "monerod " + method, Code: CodeDaemonBusy, Message: status}
	default:
		return &RPCError{Method: "monerod " + method, Code: CodeUnknown, Message: "daemon status " + status}
	}
}

// GetInfo calls get_info.
func (d *Daemon) GetInfo(ctx context.Context) (DaemonInfo, error) {
	r, err := call[DaemonInfo](ctx, d.rpc, DaemonGetInfo, nil)
	if err == nil {
		err = daemonStatus(DaemonGetInfo, r.Status)
	}
	return r, err
}

// GetFeeEstimate calls get_fee_estimate.
func (d *Daemon) GetFeeEstimate(ctx context.Context) (FeeEstimate, error) {
	r, err := call[FeeEstimate](ctx, d.rpc, DaemonGetFeeEstimate, nil)
	if err == nil {
		err = daemonStatus(DaemonGetFeeEstimate, r.Status)
	}
	return r, err
}

// GenerateBlocks calls generateblocks: mines n blocks to address (regtest
// and fakechain daemons only).
func (d *Daemon) GenerateBlocks(ctx context.Context, n uint64, address string) (GeneratedBlocks, error) {
	r, err := call[GeneratedBlocks](ctx, d.rpc, DaemonGenerateBlocks, struct {
		AmountOfBlocks uint64 `json:"amount_of_blocks"`
		WalletAddress  string `json:"wallet_address"`
	}{n, address})
	if err == nil {
		err = daemonStatus(DaemonGenerateBlocks, r.Status)
	}
	return r, err
}

// GetTransactions posts to /get_transactions: where each hash is (pool or
// chain, with confirmations), and which hashes the daemon does not know.
func (d *Daemon) GetTransactions(ctx context.Context, hashes []string) (TxLookup, error) {
	var r TxLookup
	err := d.post(ctx, DaemonGetTransactions, struct {
		TxsHashes []string `json:"txs_hashes"`
	}{nonNil(hashes)}, &r)
	if err == nil {
		err = daemonStatus(DaemonGetTransactions, r.Status)
	}
	return r, err
}

// GetTransactionsJSON is GetTransactions with each transaction's JSON form
// (decode_as_json).
func (d *Daemon) GetTransactionsJSON(ctx context.Context, hashes []string) (TxLookup, error) {
	var r TxLookup
	err := d.post(ctx, DaemonGetTransactions, struct {
		TxsHashes    []string `json:"txs_hashes"`
		DecodeAsJSON bool     `json:"decode_as_json"`
	}{nonNil(hashes), true}, &r)
	if err == nil {
		err = daemonStatus(DaemonGetTransactions, r.Status)
	}
	return r, err
}

// BlockHeader is the part of a block header the chain scan uses.
type BlockHeader struct {
	Height  uint64 `json:"height"`
	Hash    string `json:"hash"`
	NumTxes uint64 `json:"num_txes"`
}

// GetBlockHeadersRange calls get_block_headers_range: the headers of the
// blocks start..end (inclusive).
func (d *Daemon) GetBlockHeadersRange(ctx context.Context, start, end uint64) ([]BlockHeader, error) {
	r, err := call[struct {
		Status  string        `json:"status"`
		Headers []BlockHeader `json:"headers"`
	}](ctx, d.rpc, DaemonGetBlockHeadersRange, struct {
		Start uint64 `json:"start_height"`
		End   uint64 `json:"end_height"`
	}{start, end})
	if err == nil {
		err = daemonStatus(DaemonGetBlockHeadersRange, r.Status)
	}
	return r.Headers, err
}

// GetBlockTxHashes calls get_block: the hashes of the block's transactions
// (its miner transaction not included).
func (d *Daemon) GetBlockTxHashes(ctx context.Context, height uint64) ([]string, error) {
	r, err := call[struct {
		Status   string   `json:"status"`
		TxHashes []string `json:"tx_hashes"`
	}](ctx, d.rpc, DaemonGetBlock, struct {
		Height uint64 `json:"height"`
	}{height})
	if err == nil {
		err = daemonStatus(DaemonGetBlock, r.Status)
	}
	return r.TxHashes, err
}

// PoolTx is one transaction of the daemon's pool.
type PoolTx struct {
	IDHash          string `json:"id_hash"`
	TxJSON          string `json:"tx_json"`
	DoubleSpendSeen bool   `json:"double_spend_seen"`
}

// GetTransactionPool posts to /get_transaction_pool: the pool's
// transactions in JSON form.
func (d *Daemon) GetTransactionPool(ctx context.Context) ([]PoolTx, error) {
	var r struct {
		Status       string   `json:"status"`
		Transactions []PoolTx `json:"transactions"`
	}
	err := d.post(ctx, DaemonGetTransactionPool, struct{}{}, &r)
	if err == nil {
		err = daemonStatus(DaemonGetTransactionPool, r.Status)
	}
	return r.Transactions, err
}

// post calls one of monerod's plain JSON endpoints (not JSON-RPC).
func (d *Daemon) post(ctx context.Context, path string, params, result any) error {
	method := "monerod " + path
	body, err := json.Marshal(params)
	if err != nil {
		return &encodeError{method: method, params: params, err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/"+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: build request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return transportError(ctx, method, err)
	}
	defer drainAndClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Method: method, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return transportError(ctx, method, err)
	}
	if len(data) > MaxResponseBytes {
		return &TransportError{Method: method, Err: fmt.Errorf("response body exceeds %d bytes", MaxResponseBytes)}
	}
	if err := json.Unmarshal(data, result); err != nil {
		return &TransportError{Method: method, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}
