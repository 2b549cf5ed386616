package rpcclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Recorded on a regtest chain with monero-wallet-rpc and monerod v0.18.0.0
// (docs/DESIGN.md, "Money flow"); long hex blobs are cut to 64 characters.
const (
	recTxID     = "5bfca9bd28739d732d9989f55776641c6988575acb15fa4ead746d67e58e6eb4"
	recTxKey    = "fd3274f7af8c3fd043febc4953e33da070cf3b5b0f36e0455cb32f1495112a09"
	recMultisig = "42aUwTdGTXi19yajNe5R771V241k71mSn4DMcP8bAAiUQ1XmYuNGM2JiWtT9sNfVF3fy91AdFWD4racfNhk2ea4NQuD8ekb"
	recFaucet   = "45feh8RDwP6hJx1Ns3xJXAM5uLtuoWmDcVnm6CWfP4a7WdHhJHBFgxrERhqSKhvxM4d2J6UJW5siQEqfHAi4okc3PmGurXw"
	recTestnet  = "9wviCeWe2D8XS82k2ovp5EUYLzBt9pYNW2LXUFsZiv8S3Mt21FZ5qQaAroko1enzw3eGr9qC7X1D7Geoo2RrAotYPwq9Gm8"
)

func moneyGolden(t *testing.T, name string) golden {
	return loadGolden(t, filepath.Join("money", name))
}

func txsetOf(t *testing.T, name string) string {
	var req struct {
		Params struct {
			MultisigTxset string `json:"multisig_txset"`
			TxDataHex     string `json:"tx_data_hex"`
		} `json:"params"`
	}
	require.NoError(t, json.Unmarshal(moneyGolden(t, name).Request, &req))
	return req.Params.MultisigTxset + req.Params.TxDataHex
}

// TestMoneyMethodsRecorded drives the money flow's wallet and daemon calls
// against responses recorded from the real programs.
func TestMoneyMethodsRecorded(t *testing.T) {
	tests := []struct {
		file string
		call func(context.Context, *Client, *Daemon) (any, error)
		want any
		// code is the wallet error code the call must fail with (0: none).
		code int
	}{
		{file: "get_transfers", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.GetTransfers(ctx, GetTransfersParams{In: true, Pool: true})
		}, want: Transfers{In: []Transfer{{TxID: recTxID, Type: "in", Address: recMultisig, Amount: 3_000_000_000_000,
			Fee: 2_605_200_000, Height: 82, Confirmations: 12}}}},
		{file: "check_tx_key", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.CheckTxKey(ctx, recTxID, recTxKey, recMultisig)
		}, want: TxKeyCheck{Received: 3_000_000_000_000, Confirmations: 12}},
		{file: "check_tx_key_pool", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.CheckTxKey(ctx, recTxID, recTxKey, recMultisig)
		}, want: TxKeyCheck{Received: 3_000_000_000_000, InPool: true}},
		{file: "check_tx_key_bad_key", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.CheckTxKey(ctx, recTxID, strings.Repeat("00", 32), recMultisig)
		}, want: TxKeyCheck{Confirmations: 12}},
		{file: "check_tx_key_unknown_tx", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.CheckTxKey(ctx, strings.Repeat("11", 32), recTxKey, recMultisig)
		}, code: CodeUnknown},
		{file: "check_tx_key_no_wallet", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.CheckTxKey(ctx, recTxID, recTxKey, recMultisig)
		}, code: CodeNotOpen},
		{file: "get_tx_key", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.GetTxKey(ctx, recTxID)
		}, want: recTxKey},
		{file: "describe_transfer", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.DescribeTransfer(ctx, txsetOf(t, "describe_transfer"))
		}, want: []TransferDescription{{AmountIn: 3_000_000_000_000, AmountOut: 2_998_191_600_000,
			Recipients:    []Destination{{Address: recFaucet, Amount: 1_000_000_000_000}},
			ChangeAddress: recMultisig, ChangeAmount: 1_998_191_600_000, Fee: 1_808_400_000, RingSize: 16}}},
		{file: "describe_transfer_sweep", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.DescribeTransfer(ctx, txsetOf(t, "describe_transfer_sweep"))
		}, want: []TransferDescription{{AmountIn: 1_998_191_600_000, AmountOut: 1_996_383_200_000,
			Recipients: []Destination{{Address: recFaucet, Amount: 1_996_383_200_000}},
			Fee:        1_808_400_000, RingSize: 16, DummyOutputs: 1}}},
		{file: "sweep_all", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			r, err := c.SweepAll(ctx, SweepAllParams{Address: recFaucet})
			require.NotEmpty(t, r.MultisigTxset)
			r.MultisigTxset = ""
			return r, err
		}, want: SweepAllResult{AmountList: []uint64{1_996_383_200_000}, FeeList: []uint64{1_808_400_000}, WeightList: []uint64{1507}}},
		{file: "sweep_all_import_needed", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.SweepAll(ctx, SweepAllParams{Address: recFaucet})
		}, code: CodeGenericTransferError},
		{file: "sign_multisig_stale", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.SignMultisig(ctx, txsetOf(t, "sign_multisig_stale"))
		}, code: CodeMultisigSignature},
		{file: "get_height", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.GetHeight(ctx)
		}, want: uint64(94)},
		{file: "validate_address", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.ValidateAddress(ctx, recMultisig)
		}, want: AddressValidation{Valid: true, Nettype: "mainnet"}},
		{file: "validate_address_testnet", call: func(ctx context.Context, c *Client, _ *Daemon) (any, error) {
			return c.ValidateAddress(ctx, recTestnet)
		}, want: AddressValidation{}},
		{file: "daemon_get_info", call: func(ctx context.Context, _ *Client, d *Daemon) (any, error) {
			return d.GetInfo(ctx)
		}, want: DaemonInfo{Status: "OK", Height: 1, Nettype: "fakechain", Offline: true, Synchronized: true, Version: "0.18.0.0-unknown"}},
		{file: "daemon_get_fee_estimate", call: func(ctx context.Context, _ *Client, d *Daemon) (any, error) {
			return d.GetFeeEstimate(ctx)
		}, want: FeeEstimate{Status: "OK", Fee: 1_200_000, Fees: []uint64{1_200_000, 4_700_000, 19_000_000, 240_000_000}, QuantizationMask: 10_000}},
		{file: "daemon_generateblocks", call: func(ctx context.Context, _ *Client, d *Daemon) (any, error) {
			r, err := d.GenerateBlocks(ctx, 80, recFaucet)
			return []any{r.Status, r.Height, len(r.Blocks)}, err
		}, want: []any{"OK", uint64(80), 80}},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "money", "*.json"))
	require.NoError(t, err)
	plain := 0
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "daemon_get_transactions") {
			plain++
		}
	}
	require.Len(t, tests, len(files)-plain, "every recorded response has a case")
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			srv := newServer(t, goldenHandler(t, moneyGolden(t, tt.file), nil))
			got, err := tt.call(context.Background(), newClient(srv, 5*time.Second), NewDaemon(srv.URL, 5*time.Second))
			if tt.code != 0 {
				require.True(t, IsCode(err, tt.code), "want code %d, got %v", tt.code, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// plainHandler serves a recorded answer of one of monerod's plain JSON
// endpoints, checking the path and the request body.
func plainHandler(t *testing.T, path string, g golden) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !assert.Equal(t, path, r.URL.Path) || !assert.JSONEq(t, string(g.Request), string(body)) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_, _ = w.Write(g.Response)
	})
}

func TestDaemonGetTransactionsRecorded(t *testing.T) {
	pool := moneyGolden(t, "daemon_get_transactions_pool")
	srv := newServer(t, plainHandler(t, "/get_transactions", pool))
	got, err := NewDaemon(srv.URL, 5*time.Second).GetTransactions(context.Background(), []string{recTxID})
	require.NoError(t, err)
	require.Equal(t, TxLookup{Status: "OK", Txs: []TxStatus{{TxHash: recTxID, InPool: true}}}, got)

	mined := moneyGolden(t, "daemon_get_transactions_mined")
	srv = newServer(t, plainHandler(t, "/get_transactions", mined))
	got, err = NewDaemon(srv.URL, 5*time.Second).GetTransactions(context.Background(), []string{recTxID, strings.Repeat("00", 32)})
	require.NoError(t, err)
	require.Equal(t, TxLookup{Status: "OK", Txs: []TxStatus{{TxHash: recTxID, BlockHeight: 82, Confirmations: 12}},
		Missed: []string{strings.Repeat("00", 32)}}, got)
}

func TestDaemonErrorsAreTyped(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/get_transactions":
			_, _ = w.Write([]byte(`{"status":"BUSY"}`))
		default:
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"status":"Failed"}}`))
		}
	}))
	d := NewDaemon(srv.URL, 5*time.Second)
	_, err := d.GetTransactions(context.Background(), []string{recTxID})
	require.True(t, IsCode(err, CodeDaemonBusy), "%v", err)
	require.True(t, IsRetryable(err))
	_, err = d.GetInfo(context.Background())
	require.True(t, IsCode(err, CodeUnknown), "%v", err)

	dead := NewDaemon("127.0.0.1:1", time.Second)
	_, err = dead.GetTransactions(context.Background(), nil)
	var tr *TransportError
	require.ErrorAs(t, err, &tr)
	_, err = dead.GetFeeEstimate(context.Background())
	require.ErrorAs(t, err, &tr)

}
