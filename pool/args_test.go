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
