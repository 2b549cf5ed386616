package worker

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Health paths on the worker's metrics listener. ReadyPath answers 200 once
// the wallet-rpc pool is ready and both Temporal workers (the shared task
// queue's and the worker's own) poll, 503 before and while the worker stops;
// LivePath answers 200 while the process serves HTTP. Scripts, tests and
// Kubernetes probes wait on ReadyPath instead of a log line.
const (
	ReadyPath = "/readyz"
	LivePath  = "/livez"
)

// health is the worker's readiness. The zero value is not ready; a nil
// *health is never ready.
type health struct{ ready atomic.Bool }

func (h *health) setReady(ready bool) {
	if h != nil {
		h.ready.Store(ready)
	}
}

func (h *health) isReady() bool { return h != nil && h.ready.Load() }

// register adds LivePath and ReadyPath to mux.
func (h *health) register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LivePath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		if !h.isReady() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
}

// Ready reports whether the worker whose metrics listener is addr
// (host:port) answers 200 on ReadyPath within 2 s. Tests, the bench and
// tools wait for a worker by polling it.
func Ready(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+ReadyPath, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
