package pool

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTrustedDaemonOptIn: --trusted-daemon only when asked for.
func TestTrustedDaemonOptIn(t *testing.T) {
	p := &Pool{cfg: Config{DaemonAddress: "node.example:28081", WalletDir: "/w", RunDir: "/w/.r"}}
	require.Contains(t, p.args(1), "--daemon-address")
	require.NotContains(t, p.args(1), "--trusted-daemon")
	p.cfg.TrustedDaemon = true
	require.Contains(t, p.args(1), "--trusted-daemon")
}

// TestChildEnvAllowList: only the allow-listed variables reach wallet-rpc.
func TestChildEnvAllowList(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "ESCROWFLOW_MASTER_SECRET=s3cret", "ESCROWFLOW_CODEC_KEYS=k1:00",
		"HOME=/home/w", "AWS_SECRET_ACCESS_KEY=x", "LANG=C.UTF-8", "PATHX=1"})
	slices.Sort(got)
	require.Equal(t, []string{"HOME=/home/w", "LANG=C.UTF-8", "PATH=/bin"}, got)
}

func TestArgsNetworkAndDaemon(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		want, not []string
	}{
		{"offline testnet", Config{Network: "testnet"}, []string{"--testnet", "--offline"}, []string{"--daemon-address", "--trusted-daemon"}},
		{"regtest has no network flag", Config{Network: "regtest", DaemonAddress: "127.0.0.1:1"},
			[]string{"--daemon-address"}, []string{"--testnet", "--stagenet", "--offline", "--trusted-daemon"}},
		{"trusted only when asked", Config{Network: "mainnet", DaemonAddress: "127.0.0.1:1", TrustedDaemon: true},
			[]string{"--daemon-address", "--trusted-daemon"}, []string{"--offline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.WalletDir = t.TempDir()
			tt.cfg.applyDefaults()
			args := (&Pool{cfg: tt.cfg}).args(1)
			for _, w := range tt.want {
				require.True(t, slices.Contains(args, w), "%v lacks %s", args, w)
			}
			for _, n := range tt.not {
				require.False(t, slices.Contains(args, n), "%v has %s", args, n)
			}
		})
	}
}
