package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/walletstore"
)

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		EnvTemporalAddress:    "10.0.0.1:7233",
		EnvPoolSize:           "4",
		EnvWalletRPCArgs:      "--log-level 1",
		EnvWalletRPCEndpoints: "http://127.0.0.1:1,http://u:p@127.0.0.1:2",
		EnvWalletRPCLogin:     "true",
		EnvMasterSecret:       "s3cret",
		"TEMPORAL_TLS_CERT":   "client.pem",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:7233", cfg.TemporalAddress, "env overrides the default")
	require.Equal(t, 4, cfg.PoolSize)
	require.Equal(t, []string{"--log-level", "1"}, cfg.WalletRPCArgs)
	require.True(t, cfg.WalletRPCLogin)
	require.Equal(t, "./testnet-wallets", cfg.WalletDir, "unset env keeps the default")

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.Equal(t, "client.pem", cfg.TemporalSecurity.CertFile, "the worker reads the TLS environment")
	require.NoError(t, fs.Parse([]string{"--pool-size", "7", "--wallet-rpc-arg", "--x", "--temporal-tls-key", "client.key"}))
	require.Equal(t, 7, cfg.PoolSize, "a flag overrides env")
	require.Equal(t, "client.key", cfg.TemporalSecurity.KeyFile, "the worker has the TLS flags")
	require.Equal(t, []string{"--log-level", "1", "--x"}, cfg.WalletRPCArgs)

	eps, err := cfg.endpoints()
	require.NoError(t, err)
	require.Equal(t, []pool.Endpoint{
		{URL: "http://127.0.0.1:1"},
		{URL: "http://127.0.0.1:2", Username: "u", Password: "p"},
	}, eps)
}

func TestConfigFromEnvRejectsBadNumbers(t *testing.T) {
	tests := []struct {
		name string
		give map[string]string
	}{
		{"pool size", map[string]string{EnvPoolSize: "nine"}},
		{"max calls", map[string]string{EnvMaxConcurrentCalls: "2x"}},
		{"login", map[string]string{EnvWalletRPCLogin: "maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(func(k string) string { return tt.give[k] })
			require.Error(t, err)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		tweak  func(*Config)
		wantIn string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no pool", func(c *Config) { c.PoolSize = 0 }, "pool size"},
		{"no pool but endpoints", func(c *Config) { c.PoolSize = 0; c.WalletRPCEndpoints = []string{"http://127.0.0.1:1"} }, ""},
		{"network", func(c *Config) { c.Network = "fakechain" }, "network"},
		{"regtest", func(c *Config) { c.Network = "regtest" }, ""},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, "log format"},
		{"wallet dir", func(c *Config) { c.WalletDir = "" }, "wallet dir"},
		{"codec on loopback without token", func(c *Config) { c.Codec.Address = "127.0.0.1:8234" }, ""},
		{"codec beyond loopback without token", func(c *Config) { c.Codec.Address = "0.0.0.0:8234" }, "beyond loopback"},
		{"codec on all interfaces without token", func(c *Config) { c.Codec.Address = ":8234" }, "beyond loopback"},
		{"codec beyond loopback with token file", func(c *Config) { c.Codec.Address = "0.0.0.0:8234"; c.Codec.TokenFile = "/run/secrets/t" }, ""},
		{"plaintext history on testnet", func(c *Config) { c.Codec.InsecurePlaintextHistory = true }, ""},
		{"plaintext history on mainnet", func(c *Config) { c.Network = "mainnet"; c.Codec.InsecurePlaintextHistory = true }, "refused on mainnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.tweak(&c)
			err := c.Validate()
			if tt.wantIn == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantIn)
		})
	}
}

func TestLoadSecret(t *testing.T) {
	c := DefaultConfig()
	require.ErrorContains(t, c.LoadSecret(), EnvMasterSecret)

	path := filepath.Join(t.TempDir(), "master.key")
	require.NoError(t, os.WriteFile(path, []byte("  abc123\n"), 0o600))
	c.MasterSecretFile = path
	require.NoError(t, c.LoadSecret())
	require.Equal(t, []byte("abc123"), c.MasterSecret, "surrounding white space is ignored")

	c = DefaultConfig()
	c.MasterSecretFile = filepath.Join(t.TempDir(), "missing")
	require.Error(t, c.LoadSecret())
}

func TestBadEndpoint(t *testing.T) {
	for _, give := range []string{"127.0.0.1:1", "://x", "http://"} {
		_, err := parseEndpoint(give)
		require.Error(t, err, "%q", give)
	}
}

func TestLogConfigMasksSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	c := DefaultConfig()
	c.MasterSecret = []byte("the-master-secret")
	c.WalletRPCEndpoints = []string{"http://user:endpoint-pass@127.0.0.1:1"}
	c.TemporalSecurity.CertFile = "/certs/client.pem"
	c.TemporalSecurity.KeyData = []byte("-----BEGIN EC PRIVATE KEY-----the-tls-key")
	c.TemporalSecurity.APIKey = "the-api-key"
	logConfig(zap.New(core), c)
	require.Equal(t, 1, logs.Len())
	all := fmt.Sprint(logs.All()[0].ContextMap())
	require.NotContains(t, all, "the-master-secret")
	require.NotContains(t, all, "endpoint-pass")
	require.NotContains(t, all, "the-tls-key")
	require.NotContains(t, all, "the-api-key")
	require.Contains(t, all, "127.0.0.1:1")
	require.Contains(t, all, "/certs/client.pem", "the TLS files are logged")
}

func TestMaxEscrowsDefault(t *testing.T) {
	for _, tt := range []struct {
		pool, endpoints, set, want int
	}{
		{pool: 9, want: 3}, {pool: 6, want: 2}, {pool: 2, want: 1}, {pool: 1, want: 1},
		{pool: 9, endpoints: 6, want: 2}, {pool: 9, set: 5, want: 5},
	} {
		c := DefaultConfig()
		c.PoolSize, c.MaxEscrows = tt.pool, tt.set
		for i := 0; i < tt.endpoints; i++ {
			c.WalletRPCEndpoints = append(c.WalletRPCEndpoints, "http://127.0.0.1:1")
		}
		if got := c.maxEscrows(); got != tt.want {
			t.Errorf("pool %d, endpoints %d, set %d: maxEscrows %d, want %d", tt.pool, tt.endpoints, tt.set, got, tt.want)
		}
	}
	c := DefaultConfig()
	c.MaxEscrows = -1
	if err := c.Validate(); err == nil {
		t.Error("MaxEscrows -1 validated")
	}
}

// TestRunRefusesPlaintextHistory: without a key ring and without
// --insecure-plaintext-history the worker does not start, before it touches
// the wallet dir or dials Temporal.
func TestRunRefusesPlaintextHistory(t *testing.T) {
	c := DefaultConfig()
	c.WalletDir = filepath.Join(t.TempDir(), "wallets")
	c.MasterSecret = []byte("0123456789abcdef0123456789abcdef")
	c.TemporalAddress = "127.0.0.1:1"
	err := Run(context.Background(), c, zap.NewNop())
	require.ErrorIs(t, err, ErrKeyRingRequired)
	_, statErr := os.Stat(c.WalletDir)
	require.True(t, errors.Is(statErr, fs.ErrNotExist), "Run created the wallet dir before refusing: %v", statErr)
}

func TestInsecurePlaintextHistoryFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvInsecurePlaintextHistory: "true"}[k]
	})
	require.NoError(t, err)
	require.True(t, c.Codec.InsecurePlaintextHistory)
	_, err = ConfigFromEnv(func(k string) string {
		return map[string]string{EnvInsecurePlaintextHistory: "maybe"}[k]
	})
	require.ErrorContains(t, err, EnvInsecurePlaintextHistory)
}

// TestRunRefusesLockedWalletDir: a second worker on a wallet dir another
// one holds exits with a clear message before it starts any process.
func TestRunRefusesLockedWalletDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := walletstore.Lock(dir)
	require.NoError(t, err)
	defer func() { _ = unlock() }()
	c := DefaultConfig()
	c.WalletDir = dir
	c.MasterSecret = []byte("0123456789abcdef0123456789abcdef")
	c.Codec.InsecurePlaintextHistory = true
	c.TemporalAddress = "127.0.0.1:1"
	c.WalletRPCBinary = "/nonexistent/monero-wallet-rpc"
	c.MetricsAddress = "off"
	err = Run(context.Background(), c, zap.NewNop())
	require.ErrorContains(t, err, "in use by another worker")
}

func TestReleaseVersionOfTheInstalledWalletRPC(t *testing.T) {
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	require.Regexp(t, `^\d+\.\d+\.\d+\.\d+$`, releaseVersion(bin))
	require.Empty(t, releaseVersion("/nonexistent/monero-wallet-rpc"))
}
