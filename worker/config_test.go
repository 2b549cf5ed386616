package worker

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/pool"
)

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{
		EnvTemporalAddress:    "10.0.0.1:7233",
		EnvPoolSize:           "4",
		EnvWalletRPCArgs:      "--log-level 1",
		EnvWalletRPCEndpoints: "http://127.0.0.1:1,http://u:p@127.0.0.1:2",
		EnvWalletRPCLogin:     "true",
		EnvMasterSecret:       "s3cret",
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
	require.NoError(t, fs.Parse([]string{"--pool-size", "7", "--wallet-rpc-arg", "--x"}))
	require.Equal(t, 7, cfg.PoolSize, "a flag overrides env")
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
	logConfig(zap.New(core), c)
	require.Equal(t, 1, logs.Len())
	all := fmt.Sprint(logs.All()[0].ContextMap())
	require.NotContains(t, all, "the-master-secret")
	require.NotContains(t, all, "endpoint-pass")
	require.Contains(t, all, "127.0.0.1:1")
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

func TestReleaseVersionOfTheInstalledWalletRPC(t *testing.T) {
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	require.Regexp(t, `^\d+\.\d+\.\d+\.\d+$`, releaseVersion(bin))
	require.Empty(t, releaseVersion("/nonexistent/monero-wallet-rpc"))
}
