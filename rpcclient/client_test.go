package rpcclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testPassword = "s3cret-wallet-pw"

// The regtest run that recorded testdata/*.json: the faucet the vendor's
// transfer pays and the hash of the transaction the arbiter signed and
// submitted.
const (
	recordedPayee  = "46Yp8kfvG28FcryaGFmq5KXZEgQdbdTTCDDrC4qXWCqA5dtMmZc253JCedL1ruriDDF59AfafauFHCjCW2P11uaw3DLEXhH"
	recordedTxHash = "784e2aafd727e35f9afa79a699c3763924b9fbdb33c5b9c7d2871f8c46aa7881"
)

// TestTypedMethodsGolden drives every typed method against a fake wallet
// that checks the request body against testdata/<method>.json exactly.
// Every file is recorded from the real monero-wallet-rpc on a funded
// 2-of-3 regtest multisig (`ESCROWFLOW_RECORD_RPC_GOLDEN=1 go test -run
// TestRecordRPCGolden ./pool/`): the peers' messages, addresses and version
// they hold are the real wallet's, so the test takes them from the file;
// the spend is chained, each step's input being the previous step's
// recorded output.
func TestTypedMethodsGolden(t *testing.T) {
	tests := []struct {
		method string
		call   func(context.Context, *Client) (any, error)
		want   any
	}{
		{
			method: MethodGetVersion,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetVersion(ctx) },
			want:   recordedVersion(t),
		},
		{
			method: MethodCreateWallet,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.CreateWallet(ctx, "escrow-7f3a-arbiter", testPassword)
			},
		},
		{
			method: MethodOpenWallet,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.OpenWallet(ctx, "escrow-7f3a-arbiter", testPassword)
			},
		},
		{
			method: MethodCloseWallet,
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.CloseWallet(ctx) },
		},
		{
			method: MethodStore,
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.Store(ctx) },
		},
		{
			method: MethodGetAddress,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetAddress(ctx) },
			want:   goldenField[string](t, MethodGetAddress, "result", "address"),
		},
		{
			method: MethodIsMultisig,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.IsMultisig(ctx) },
			want:   MultisigStatus{Multisig: true, Ready: true, Threshold: 2, Total: 3},
		},
		{
			method: MethodPrepareMultisig,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.PrepareMultisig(ctx, true) },
			want:   goldenField[string](t, MethodPrepareMultisig, "result", "multisig_info"),
		},
		{
			method: MethodMakeMultisig,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.MakeMultisig(ctx, goldenField[[]string](t, MethodMakeMultisig, "params", "multisig_info"), 2, testPassword)
			},
			want: recordedRound(t, MethodMakeMultisig),
		},
		{
			method: MethodExchangeMultisigKeys,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ExchangeMultisigKeys(ctx, goldenField[[]string](t, MethodExchangeMultisigKeys, "params", "multisig_info"), testPassword)
			},
			want: recordedRound(t, MethodExchangeMultisigKeys),
		},
		{
			method: MethodExportMultisigInfo,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ExportMultisigInfo(ctx) },
			want:   goldenField[string](t, MethodExportMultisigInfo, "result", "info"),
		},
		{
			method: MethodImportMultisigInfo,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ImportMultisigInfo(ctx, goldenField[[]string](t, MethodImportMultisigInfo, "params", "info"))
			},
			want: 1, // the one deposit
		},
		{
			method: MethodTransfer,
			call: func(ctx context.Context, c *Client) (any, error) {
				r, err := c.Transfer(ctx, TransferParams{Destinations: []Destination{{Amount: 1_000_000_000_000, Address: recordedPayee}}})
				require.Len(t, r.MultisigTxset, 9364)
				r.MultisigTxset = ""
				return r, err
			},
			want: TransferResult{Amount: 1_000_000_000_000, Fee: 1_808_400_000, Weight: 1507},
		},
		{
			method: MethodSignMultisig,
			call: func(ctx context.Context, c *Client) (any, error) {
				// The arbiter co-signs the vendor's transfer as transfer answered it.
				return c.SignMultisig(ctx, goldenField[string](t, MethodTransfer, "result", "multisig_txset"))
			},
			want: SignMultisigResult{TxDataHex: goldenField[string](t, MethodSignMultisig, "result", "tx_data_hex"),
				TxHashList: []string{recordedTxHash}},
		},
		{
			method: MethodSubmitMultisig,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.SubmitMultisig(ctx, goldenField[string](t, MethodSignMultisig, "result", "tx_data_hex"))
			},
			want: []string{recordedTxHash},
		},
		{
			method: MethodGetBalance,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetBalance(ctx, 0) },
			// The 3 XMR deposit, unlocked, before the peers' multisig info is imported.
			want: Balance{Balance: 3_000_000_000_000, UnlockedBalance: 3_000_000_000_000, MultisigImportNeeded: true},
		},
		{
			method: MethodRefresh,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Refresh(ctx, 0) },
			want:   RefreshResult{BlocksFetched: 10, ReceivedMoney: true},
		},
		{
			method: MethodChangeWalletPassword,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.ChangeWalletPassword(ctx, testPassword, "n3w-s3cret-pw")
			},
		},
	}

	// Every golden file is exercised, and every case has a golden file.
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.Len(t, tests, len(files))

	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			srv := newServer(t, goldenHandler(t, loadGolden(t, tt.method), nil))
			c := newClient(srv, 5*time.Second)

			got, err := tt.call(context.Background(), c)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestGoldenFilesAreValid(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue // e.g. testdata/fuzz, the fuzz seed corpus
		}
		g := loadGolden(t, name)
		// The file name is the method the request carries.
		require.Contains(t, string(g.Request), `"method": "`+name+`"`)
	}
}

func TestRequestIDsIncrease(t *testing.T) {
	rec := &recorder{}
	srv := newServer(t, goldenHandler(t, loadGolden(t, MethodGetVersion), rec))
	c := newClient(srv, 5*time.Second)

	for range 3 {
		_, err := c.GetVersion(context.Background())
		require.NoError(t, err)
	}
	ids := rec.IDs()
	require.Len(t, ids, 3)
	require.Less(t, ids[0], ids[1])
	require.Less(t, ids[1], ids[2])
}

func TestConcurrentCalls(t *testing.T) {
	srv := newServer(t, goldenHandler(t, loadGolden(t, MethodGetBalance), nil))
	c := newClient(srv, 5*time.Second)

	errs := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := c.GetBalance(context.Background(), 0)
			errs <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

func TestURL(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "http://127.0.0.1:18083", want: "http://127.0.0.1:18083/json_rpc"},
		{give: "http://127.0.0.1:18083/", want: "http://127.0.0.1:18083/json_rpc"},
		{give: "http://127.0.0.1:18083/json_rpc", want: "http://127.0.0.1:18083/json_rpc"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			require.Equal(t, tt.want, New(Config{URL: tt.give}).URL())
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, 2*time.Minute, cfg.Timeout)
	require.Empty(t, cfg.Username)
	require.Equal(t, "http://127.0.0.1:18083/json_rpc", New(cfg).URL())
}

func TestNewCopiesMethodTimeouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MethodTimeouts = map[string]time.Duration{MethodGetVersion: 5 * time.Second}
	c := New(cfg)
	cfg.MethodTimeouts[MethodGetVersion] = time.Hour
	require.Equal(t, 5*time.Second, c.timeoutFor(MethodGetVersion))
	require.Equal(t, 2*time.Minute, c.timeoutFor(MethodTransfer))
}

func TestCallNilResult(t *testing.T) {
	srv := newServer(t, goldenHandler(t, loadGolden(t, MethodGetVersion), nil))
	c := newClient(srv, 5*time.Second)
	require.NoError(t, c.Call(context.Background(), MethodGetVersion, nil, nil))
}

func TestCallUnencodableParams(t *testing.T) {
	c := New(DefaultConfig())
	err := c.Call(context.Background(), "x", map[string]any{"ch": make(chan int)}, nil)
	require.Error(t, err)
	require.False(t, IsRetryable(err))
	require.Contains(t, err.Error(), "wallet rpc x: cannot encode params")
}
