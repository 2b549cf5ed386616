package worker

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

func TestHealthEndpoints(t *testing.T) {
	hl := new(health)
	srv, err := serveMetrics("127.0.0.1:0", http.NotFoundHandler(), hl, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.shutdown(context.Background()) })
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	require.False(t, Ready(context.Background(), srv.addr))
	code, _ := get(LivePath)
	require.Equal(t, http.StatusOK, code, "live while serving")
	code, _ = get(ReadyPath)
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready before the workers poll")

	hl.setReady(true)
	code, body := get(ReadyPath)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ready\n", body)
	require.True(t, Ready(context.Background(), srv.addr))

	hl.setReady(false)
	code, _ = get(ReadyPath)
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready while stopping")

	resp, err := http.Post("http://"+srv.addr+ReadyPath, "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}
