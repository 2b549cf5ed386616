package pool

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/internal/testenv"
)

// TestNoRequestToAStrangersListener: when another process binds the port
// chosen for a wallet-rpc before the child does, the pool sends nothing
// there (no digest credentials, no password) and the start fails.
func TestNoRequestToAStrangersListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var requests atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"0","result":{"version":65562}}`))
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	old := pickPort
	pickPort = func() (int, error) { return port, nil }
	t.Cleanup(func() { pickPort = old })

	// A "wallet-rpc" that never binds anything.
	bin := filepath.Join(t.TempDir(), "wallet-rpc")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 60\n"), 0o700))
	p, err := Start(context.Background(), Config{Binary: bin, Size: 1, WalletDir: t.TempDir(), Login: true, StartTimeout: 2 * time.Second})
	if err == nil {
		_ = p.Stop(context.Background())
	}
	require.Error(t, err, "the pool took a stranger's listener for its wallet-rpc")
	require.Zero(t, requests.Load(), "requests sent to a listener that is not the child's")
}

// TestExitedPIDIsCleared: once a process is reaped the pool forgets its
// pid at once, so that neither a probe nor Stop can signal whoever reuses
// it before the restart.
func TestExitedPIDIsCleared(t *testing.T) {
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	p, err := Start(context.Background(), Config{Binary: bin, Size: 1, WalletDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	p.mu.Lock()
	pid, exited := p.slots[0].pid, p.slots[0].exited
	p.mu.Unlock()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	<-exited
	require.NotContains(t, p.PIDs(), pid, "a reaped pid is still the pool's")
}
