// Package workertest runs the worker for integration tests and waits for
// it the way scripts and manifests do: by its GET /readyz, never by its
// log. It is apart from internal/testenv because the worker's own tests
// import testenv.
package workertest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/worker"
)

// readyWithin bounds the wait for a worker's /readyz; stopWithin the wait
// for an in-process worker to stop at the test's end.
const (
	readyWithin = 2 * time.Minute
	stopWithin  = 90 * time.Second
)

// Run runs worker.Run with cfg in this process until the test ends (its
// error fails the test) and returns once the worker's /readyz answers 200.
// cfg.MetricsAddress must be a listen address (e.g. a testenv.FreePort).
func Run(t testing.TB, cfg worker.Config, log *zap.Logger) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(stopWithin):
			t.Errorf("worker did not stop within %s", stopWithin)
		}
	})
	testenv.WaitFor(t, readyWithin, "the worker's /readyz", func() bool {
		select {
		case err := <-done:
			done <- err // for the clean-up
			t.Fatalf("worker stopped: %v", err)
		default:
		}
		return worker.Ready(ctx, cfg.MetricsAddress)
	})
}

// WaitReady waits until the worker whose metrics listener is at
// metricsAddr answers GET /readyz with 200.
func WaitReady(t testing.TB, metricsAddr string) {
	t.Helper()
	testenv.WaitFor(t, readyWithin, "the worker's /readyz", func() bool {
		return worker.Ready(context.Background(), metricsAddr)
	})
}
