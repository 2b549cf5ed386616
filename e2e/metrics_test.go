package e2e

import (
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

// TestMetrics runs one escrow on an in-process worker whose metrics
// endpoint listens on a free port, and checks what /metrics reports: our
// counters and histograms, the pool gauges, the escrows by state from
// Temporal visibility and the Temporal SDK's own metrics.
func TestMetrics(t *testing.T) {
	tp := testenv.StartTemporal(t)
	url := metricsWorker(t, tp.HostPort, t.TempDir(), 3) + "/metrics"
	sc := starter.New(tp.Client(t))
	ctx := context.Background()

	_, err := sc.Start(ctx, "metrics-1")
	require.NoError(t, err)
	waitState(t, sc, "metrics-1", escrow.StatePreparing, escrow.StateMaking, escrow.StateExchanging)
	mid := scrapeMetrics(t, url)
	running := 0.0
	for _, m := range mid["escrowflow_escrows"].GetMetric() {
		running += m.GetGauge().GetValue()
	}
	require.Equal(t, 1.0, running, "escrowflow_escrows counts the running escrow in one state")

	_, err = sc.Wait(ctx, "metrics-1")
	require.NoError(t, err)
	mfs := scrapeMetrics(t, url)

	value := func(name string, labels map[string]string) *dto.Metric {
		t.Helper()
		m := metricSample(mfs, name, labels)
		require.NotNil(t, m, "%s%v in /metrics", name, labels)
		return m
	}
	require.Equal(t, 1.0, value("escrowflow_escrows_finished_total", map[string]string{"outcome": "completed"}).GetCounter().GetValue())
	require.Equal(t, 0.0, value("escrowflow_escrows_finished_total", map[string]string{"outcome": "failed"}).GetCounter().GetValue())
	require.Equal(t, uint64(3), value("escrowflow_rpc_duration_seconds", map[string]string{"method": "make_multisig", "outcome": "ok"}).GetHistogram().GetSampleCount())
	require.Equal(t, uint64(6), value("escrowflow_rpc_duration_seconds", map[string]string{"method": "exchange_multisig_keys", "outcome": "ok"}).GetHistogram().GetSampleCount())
	require.GreaterOrEqual(t, value("escrowflow_lease_wait_seconds", nil).GetHistogram().GetSampleCount(), uint64(15),
		"six rounds for each of three roles")
	require.Equal(t, 3.0, value("escrowflow_pool_processes", nil).GetGauge().GetValue())
	require.NotNil(t, value("escrowflow_pool_ready", nil).GetGauge())
	require.NotNil(t, value("escrowflow_pool_busy", nil).GetGauge())
	require.NotNil(t, value("escrowflow_pool_restarts_total", nil).GetCounter())
	for _, state := range []string{"CREATING", "PREPARING", "MAKING", "EXCHANGING", "VERIFYING", "COMPLETED", "FAILED"} {
		require.NotNil(t, value("escrowflow_escrows", map[string]string{"state": state}).GetGauge(), state)
	}

	// The Temporal SDK's metrics, as the OpenTelemetry exporter names them.
	require.GreaterOrEqual(t, value("temporal_activity_execution_latency_seconds",
		map[string]string{"activity_type": "MakeMultisig", "task_queue": escrow.HostTaskQueue("metrics")}).GetHistogram().GetSampleCount(), uint64(3))
	require.Equal(t, 1.0, value("temporal_workflow_completed_total",
		map[string]string{"workflow_type": escrow.WorkflowName}).GetCounter().GetValue())
}

// metricsWorker runs worker.Run in this process with its metrics endpoint
// on a free 127.0.0.1 port and returns the endpoint's base URL. When the
// test ends the worker stops, and the endpoint with it.
func metricsWorker(t *testing.T, hostPort, walletDir string, poolSize int) string {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	var base string
	// Registered before runWorker's clean-up, so it runs after the stop.
	t.Cleanup(func() {
		require.Equal(t, 1, logs.FilterMessage("metrics stopped").Len())
		if base != "" {
			_, err := http.Get(base + "/metrics")
			require.Error(t, err, "the metrics endpoint stops with the worker")
		}
	})
	runWorker(t, hostPort, walletDir, poolSize, core, func(c *worker.Config) {
		c.WorkerID = "metrics"
	})
	listening := logs.FilterMessage("metrics listening").All()
	require.Len(t, listening, 1)
	addr, _ := listening[0].ContextMap()["address"].(string)
	require.NotEmpty(t, addr)
	base = "http://" + addr
	return base
}

// scrapeMetrics GETs url like Prometheus does and parses the text
// exposition.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return mfs
}

// metricSample returns the first sample of family name whose labels
// include labels, or nil.
func metricSample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if match {
			return m
		}
	}
	return nil
}
