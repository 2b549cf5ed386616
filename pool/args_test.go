package pool

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

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
