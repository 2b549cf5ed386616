package worker

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/pool"
)

// scrape GETs h like Prometheus does and parses the text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	return scrapeURL(t, srv.URL+"/metrics")
}

func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
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

// find returns the sample of family name whose labels include labels, or
// nil.
func find(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func mustFind(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	m := find(mfs, name, labels)
	require.NotNil(t, m, "%s%v in the scrape", name, labels)
	return m
}

// bucket returns the cumulative count of h's bucket with upper bound le.
func bucket(t *testing.T, h *dto.Histogram, le float64) uint64 {
	t.Helper()
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == le {
			return b.GetCumulativeCount()
		}
	}
	t.Fatalf("no bucket le=%g", le)
	return 0
}

func newTestMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func TestMetricsActivities(t *testing.T) {
	m := newTestMetrics(t)
	var am activities.Metrics = m
	am.LeaseWait(150 * time.Millisecond)
	am.RPCCall("make_multisig", 2*time.Second, nil)
	am.RPCCall("make_multisig", 500*time.Millisecond, nil)
	am.RPCCall("open_wallet", 10*time.Millisecond, errors.New("wallet_files_doesnt_correspond"))
	am.RPCCall("open_wallet secret-password", time.Millisecond, nil) // not a method name
	am.EscrowFinished(escrow.OutcomeCompleted)
	am.EscrowFinished(escrow.OutcomeCompleted)
	am.EscrowFinished(escrow.OutcomeCancelled)

	mfs := scrape(t, m.Handler())

	require.Equal(t, dto.MetricType_HISTOGRAM, mfs[MetricLeaseWait].GetType())
	lw := mustFind(t, mfs, MetricLeaseWait, nil).GetHistogram()
	require.Equal(t, uint64(1), lw.GetSampleCount())
	require.InDelta(t, 0.15, lw.GetSampleSum(), 1e-9)
	require.Equal(t, uint64(0), bucket(t, lw, 0.1))
	require.Equal(t, uint64(1), bucket(t, lw, 0.25))
	require.Equal(t, uint64(0), bucket(t, lw, 0.001), "buckets start at 1 ms")
	require.Equal(t, uint64(1), bucket(t, lw, 60), "and reach 60 s")

	mk := mustFind(t, mfs, MetricRPCDuration, map[string]string{"method": "make_multisig", "outcome": "ok"}).GetHistogram()
	require.Equal(t, uint64(2), mk.GetSampleCount())
	require.InDelta(t, 2.5, mk.GetSampleSum(), 1e-9)
	open := mustFind(t, mfs, MetricRPCDuration, map[string]string{"method": "open_wallet", "outcome": "error"}).GetHistogram()
	require.Equal(t, uint64(1), open.GetSampleCount())
	require.Nil(t, find(mfs, MetricRPCDuration, map[string]string{"method": "open_wallet", "outcome": "ok"}))
	require.NotNil(t, find(mfs, MetricRPCDuration, map[string]string{"method": "other", "outcome": "ok"}),
		"a label value that is not a method name becomes other")
	for _, mt := range mfs[MetricRPCDuration].GetMetric() {
		for _, lp := range mt.GetLabel() {
			require.NotContains(t, lp.GetValue(), "secret")
		}
	}

	require.Equal(t, dto.MetricType_COUNTER, mfs[MetricEscrowsFinished].GetType())
	for outcome, want := range map[string]float64{"completed": 2, "failed": 0, "cancelled": 1} {
		got := mustFind(t, mfs, MetricEscrowsFinished, map[string]string{"outcome": outcome}).GetCounter().GetValue()
		require.Equal(t, want, got, outcome)
	}

	require.Contains(t, mfs, "go_goroutines", "Go runtime collector")
	require.Contains(t, mfs, "process_start_time_seconds", "process collector")
}

func TestMetricsExactLines(t *testing.T) {
	m := newTestMetrics(t)
	m.LeaseWait(150 * time.Millisecond)
	m.RPCCall("store", 20*time.Millisecond, errors.New("boom"))
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(b)
	for _, line := range []string{
		"# TYPE escrowflow_lease_wait_seconds histogram\n",
		"\nescrowflow_lease_wait_seconds_count 1\n",
		"\nescrowflow_lease_wait_seconds_sum 0.15\n",
		`escrowflow_lease_wait_seconds_bucket{le="0.25"} 1` + "\n",
		`escrowflow_rpc_duration_seconds_count{method="store",outcome="error"} 1` + "\n",
		`escrowflow_escrows_finished_total{outcome="failed"} 0` + "\n",
	} {
		require.Contains(t, text, line)
	}
}

func TestMetricsSDKHandler(t *testing.T) {
	m := newTestMetrics(t)
	h := m.SDKHandler().WithTags(map[string]string{"namespace": "default", "activity_type": "MakeMultisig"})
	h.Timer("temporal_activity_execution_latency").Record(250 * time.Millisecond)
	h.Counter("temporal_request").Inc(2)
	h.Gauge("temporal_num_pollers").Update(3)

	mfs := scrape(t, m.Handler())

	lat := mustFind(t, mfs, "temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "MakeMultisig"})
	require.Equal(t, dto.MetricType_HISTOGRAM, mfs["temporal_activity_execution_latency_seconds"].GetType())
	require.Equal(t, uint64(1), lat.GetHistogram().GetSampleCount())
	require.InDelta(t, 0.25, lat.GetHistogram().GetSampleSum(), 1e-9)
	require.Equal(t, uint64(0), bucket(t, lat.GetHistogram(), 0.1), "SDK timers use the seconds buckets")
	require.Equal(t, uint64(1), bucket(t, lat.GetHistogram(), 0.25))

	req := mustFind(t, mfs, "temporal_request_total", map[string]string{"namespace": "default"})
	require.Equal(t, dto.MetricType_COUNTER, mfs["temporal_request_total"].GetType(), "monotonic counters")
	require.Equal(t, 2.0, req.GetCounter().GetValue())
	require.Equal(t, 3.0, mustFind(t, mfs, "temporal_num_pollers", nil).GetGauge().GetValue())

	require.NotContains(t, mfs, "target_info")
	for _, lp := range req.GetLabel() {
		require.NotContains(t, lp.GetName(), "otel_scope", "no OTel scope labels")
	}
}

func TestMetricsPool(t *testing.T) {
	m := newTestMetrics(t)
	var mu sync.Mutex
	st := pool.Stats{Size: 9, Ready: 8, Busy: 3, Restarts: 2}
	calls := 0
	require.NoError(t, m.WatchPool(func() pool.Stats {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return st
	}))

	mfs := scrape(t, m.Handler())
	require.Equal(t, 1, calls, "one Stats call per scrape")
	require.Equal(t, 9.0, mustFind(t, mfs, MetricPoolProcesses, nil).GetGauge().GetValue())
	require.Equal(t, 8.0, mustFind(t, mfs, MetricPoolReady, nil).GetGauge().GetValue())
	require.Equal(t, 3.0, mustFind(t, mfs, MetricPoolBusy, nil).GetGauge().GetValue())
	require.Equal(t, dto.MetricType_COUNTER, mfs[MetricPoolRestarts].GetType())
	require.Equal(t, 2.0, mustFind(t, mfs, MetricPoolRestarts, nil).GetCounter().GetValue())

	mu.Lock()
	st = pool.Stats{Size: 9, Ready: 9, Busy: 0, Restarts: 3}
	mu.Unlock()
	mfs = scrape(t, m.Handler())
	require.Equal(t, 0.0, mustFind(t, mfs, MetricPoolBusy, nil).GetGauge().GetValue(), "read at scrape time")
	require.Equal(t, 3.0, mustFind(t, mfs, MetricPoolRestarts, nil).GetCounter().GetValue())
}

// fakeCounter answers CountWorkflow from counts by query.
type fakeCounter struct {
	mu      sync.Mutex
	counts  map[string]int64
	err     error
	queries []string
}

func (f *fakeCounter) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.GetNamespace() != "escrows" {
		return nil, errors.New("wrong namespace " + req.GetNamespace())
	}
	f.queries = append(f.queries, req.GetQuery())
	if f.err != nil {
		return nil, f.err
	}
	return &workflowservice.CountWorkflowExecutionsResponse{Count: f.counts[req.GetQuery()]}, nil
}

func (f *fakeCounter) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func TestMetricsEscrowStates(t *testing.T) {
	m := newTestMetrics(t)
	fc := &fakeCounter{counts: map[string]int64{
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="MAKING"`:     2,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="EXCHANGING"`: 1,
	}}
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	c := newEscrowCollector(fc, "escrows", zap.NewNop())
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	require.NoError(t, m.Registry().Register(c))
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	mfs := scrape(t, m.Handler())
	require.Equal(t, len(escrowStates), fc.calls(), "one query per state")
	require.Equal(t, dto.MetricType_GAUGE, mfs[MetricEscrows].GetType())
	want := map[string]float64{"CREATING": 0, "PREPARING": 0, "MAKING": 2, "EXCHANGING": 1, "VERIFYING": 0, "COMPLETED": 0, "FAILED": 0}
	require.Len(t, mfs[MetricEscrows].GetMetric(), len(want))
	for state, n := range want {
		require.Equal(t, n, mustFind(t, mfs, MetricEscrows, map[string]string{"state": state}).GetGauge().GetValue(), state)
	}

	// Cached for 10 s.
	fc.mu.Lock()
	fc.counts[`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="MAKING"`] = 0
	fc.mu.Unlock()
	advance(9 * time.Second)
	mfs = scrape(t, m.Handler())
	require.Equal(t, len(escrowStates), fc.calls(), "no query within 10 s")
	require.Equal(t, 2.0, mustFind(t, mfs, MetricEscrows, map[string]string{"state": "MAKING"}).GetGauge().GetValue())

	advance(time.Second)
	mfs = scrape(t, m.Handler())
	require.Equal(t, 2*len(escrowStates), fc.calls())
	require.Equal(t, 0.0, mustFind(t, mfs, MetricEscrows, map[string]string{"state": "MAKING"}).GetGauge().GetValue())

	// A failed refresh leaves the series out (stale counts would lie), and
	// is not retried before the next interval.
	fc.mu.Lock()
	fc.err = errors.New("visibility unavailable")
	fc.mu.Unlock()
	advance(10 * time.Second)
	mfs = scrape(t, m.Handler())
	require.NotContains(t, mfs, MetricEscrows)
	require.Contains(t, mfs, MetricLeaseWait, "the rest of the scrape is served")
	calls := fc.calls()
	scrape(t, m.Handler())
	require.Equal(t, calls, fc.calls())

	fc.mu.Lock()
	fc.err = nil
	fc.mu.Unlock()
	advance(10 * time.Second)
	mfs = scrape(t, m.Handler())
	require.Equal(t, 1.0, mustFind(t, mfs, MetricEscrows, map[string]string{"state": "EXCHANGING"}).GetGauge().GetValue())
}

func TestMetricsWatchEscrowsQueries(t *testing.T) {
	m := newTestMetrics(t)
	fc := &fakeCounter{}
	require.NoError(t, m.WatchEscrows(fc, "escrows"))
	scrape(t, m.Handler())
	require.Equal(t, []string{
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="CREATING"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="PREPARING"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="MAKING"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="EXCHANGING"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="VERIFYING"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="COMPLETED"`,
		`WorkflowType="EscrowSetup" AND ExecutionStatus="Running" AND EscrowState="FAILED"`,
	}, fc.queries)
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	var am activities.Metrics = m
	am.LeaseWait(time.Second)
	am.RPCCall("store", time.Second, nil)
	am.EscrowFinished(escrow.OutcomeFailed)
	require.Nil(t, m.SDKHandler())
	require.NoError(t, m.WatchPool(func() pool.Stats { return pool.Stats{} }))
	require.NoError(t, m.WatchEscrows(&fakeCounter{}, "escrows"))
	require.NoError(t, m.Close(context.Background()))
}

func TestStartMetrics(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	m, stop, err := startMetrics("127.0.0.1:0", nil, zap.New(core))
	require.NoError(t, err)
	require.NotNil(t, m)
	listening := logs.FilterMessage("metrics listening").All()
	require.Len(t, listening, 1)
	addr, ok := listening[0].ContextMap()["address"].(string)
	require.True(t, ok)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)

	m.LeaseWait(time.Millisecond)
	mfs := scrapeURL(t, "http://"+addr+"/metrics")
	require.Equal(t, uint64(1), mustFind(t, mfs, MetricLeaseWait, nil).GetHistogram().GetSampleCount())
	resp, err := http.Get("http://" + addr + "/other")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The same address again: logged, and the worker goes on without.
	m2, stop2, err := startMetrics(addr, nil, zap.New(core))
	require.NoError(t, err)
	require.Nil(t, m2)
	stop2()
	require.Equal(t, 1, logs.FilterMessage("metrics disabled").Len())

	stop()
	require.Equal(t, 1, logs.FilterMessage("metrics stopped").Len())
	_, err = http.Get("http://" + addr + "/metrics")
	require.Error(t, err, "the endpoint is closed")

	m, stop, err = startMetrics("", nil, zap.New(core))
	require.NoError(t, err)
	require.Nil(t, m, "empty address: metrics disabled")
	stop()
}

func TestMetricsConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.Equal(t, "127.0.0.1:9464", cfg.MetricsAddress, "loopback by default")
	require.Equal(t, "127.0.0.1:9464", cfg.metricsAddress())

	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvMetricsAddress: "127.0.0.1:9999"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", cfg.MetricsAddress)

	for _, off := range []string{"", "off"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		require.NoError(t, fs.Parse([]string{"--metrics-address=" + off}))
		require.Empty(t, cfg.metricsAddress(), "%q disables metrics", off)
		require.NoError(t, cfg.Validate())
	}

	cfg.MetricsAddress = "9464"
	require.ErrorContains(t, cfg.Validate(), "metrics address")
	cfg.MetricsAddress = ":9464"
	require.NoError(t, cfg.Validate())
}
