// Prometheus metrics of the worker: one registry, served on /metrics, holds
// both the Temporal SDK's own metrics and escrowflow's.
//
// Why OpenTelemetry for the SDK metrics: the SDK reports through
// client.Options.MetricsHandler, and Temporal ships two adapters for it,
// go.temporal.io/sdk/contrib/opentelemetry and contrib/tally. The tally
// route needs go.temporal.io/sdk/contrib/tally plus github.com/uber-go/tally
// and its Prometheus reporter, a library in maintenance mode; the contrib
// module is not even served by the module proxy this project builds from.
// The OpenTelemetry route (contrib/opentelemetry v0.8.1, the otel metric
// SDK v1.47.0 and go.opentelemetry.io/otel/exporters/prometheus v0.69.0,
// over client_golang v1.25.0) builds cleanly with SDK v1.51.0, and its
// exporter is a plain prometheus.Collector: registered in the same
// client_golang registry as our own metrics, one /metrics serves both, with
// no push loop, reporter goroutine or second HTTP listener. The exporter is
// configured for Prometheus names (unit and _total suffixes, no OTel scope
// labels or target_info): the SDK's timer temporal_activity_execution_latency
// is exported as the histogram temporal_activity_execution_latency_seconds,
// its counter temporal_request as temporal_request_total.

package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/pool"
)

// Names of escrowflow's own metrics.
const (
	MetricLeaseWait       = "escrowflow_lease_wait_seconds"
	MetricRPCDuration     = "escrowflow_rpc_duration_seconds"
	MetricPoolProcesses   = "escrowflow_pool_processes"
	MetricPoolReady       = "escrowflow_pool_ready"
	MetricPoolBusy        = "escrowflow_pool_busy"
	MetricPoolRestarts    = "escrowflow_pool_restarts_total"
	MetricEscrowsFinished = "escrowflow_escrows_finished_total"
	MetricEscrows         = "escrowflow_escrows"
)

// durationBuckets (seconds) cover 1 ms to 60 s: lease waits, wallet calls
// and the SDK's latencies all fall in that range.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// escrowStates are the EscrowState values escrowflow_escrows reports, in the
// workflow's order.
var escrowStates = []escrow.State{
	escrow.StateCreating, escrow.StatePreparing, escrow.StateMaking, escrow.StateExchanging,
	escrow.StateVerifying, escrow.StateCompleted, escrow.StateFailed,
}

// escrowOutcomes are the outcomes escrowflow_escrows_finished_total starts
// with at zero, so that rate() sees every series from the first scrape.
var escrowOutcomes = []string{escrow.OutcomeCompleted, escrow.OutcomeFailed, escrow.OutcomeCancelled}

// methodName is what a wallet-rpc method name looks like; anything else is
// reported as "other" so that a label can never carry a parameter.
var methodName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// Metrics is the worker's metrics registry. It implements
// activities.Metrics, hands the Temporal client its MetricsHandler
// (SDKHandler), collects the pool's occupancy and the escrows by state at
// scrape time (WatchPool, WatchEscrows), and serves everything on one
// Handler. Its methods are safe for concurrent use. A nil *Metrics (metrics
// disabled) records nothing: its SDKHandler is nil (the SDK's default) and
// every other method but Registry and Handler does nothing.
type Metrics struct {
	reg       *prometheus.Registry
	provider  *sdkmetric.MeterProvider
	sdk       client.MetricsHandler
	log       *zap.Logger
	leaseWait prometheus.Histogram
	rpc       *prometheus.HistogramVec
	finished  *prometheus.CounterVec
}

var _ activities.Metrics = (*Metrics)(nil)

// NewMetrics returns a registry with escrowflow's metrics, the Go runtime
// and process collectors and the exporter of the SDK's metrics. Close it
// when the Temporal client is closed.
func NewMetrics(log *zap.Logger) (*Metrics, error) {
	if log == nil {
		log = zap.NewNop()
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: log}
	m.leaseWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricLeaseWait,
		Help:    "Time a wallet step waited for a wallet-rpc process (lease).",
		Buckets: durationBuckets,
	})
	m.rpc = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricRPCDuration,
		Help:    "Duration of wallet-rpc calls by method name and outcome (ok or error).",
		Buckets: durationBuckets,
	}, []string{"method", "outcome"})
	m.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricEscrowsFinished,
		Help: "Escrows this worker finished, by outcome (completed, failed, cancelled).",
	}, []string{"outcome"})
	for _, o := range escrowOutcomes {
		m.finished.WithLabelValues(o)
	}

	exp, err := otelprom.New(
		otelprom.WithRegisterer(m.reg),
		otelprom.WithoutScopeInfo(),
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal sdk metrics exporter: %w", err)
	}
	// The SDK's timers are histograms in seconds; OTel's default buckets
	// (0 to 10000) suit milliseconds.
	seconds := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBuckets}},
	)
	m.provider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithView(seconds))
	m.sdk = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                m.provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true, // Prometheus counters (_total), not gauges
		OnError: func(err error) { // the default panics
			log.Warn("temporal sdk metric", zap.Error(err))
		},
	})

	for _, c := range []prometheus.Collector{
		m.leaseWait, m.rpc, m.finished,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SDKHandler is the Temporal client's MetricsHandler
// (client.Options.MetricsHandler).
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return m.sdk
}

// Registry returns the registry Handler serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. A
// collector that fails leaves out its series; the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(m.log),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}

// Close stops the SDK metrics pipeline.
func (m *Metrics) Close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	return m.provider.Shutdown(ctx)
}

// LeaseWait implements activities.Metrics.
func (m *Metrics) LeaseWait(d time.Duration) {
	if m == nil {
		return
	}
	m.leaseWait.Observe(d.Seconds())
}

// RPCCall implements activities.Metrics. The method label is the method
// name, or "other" when method does not look like one.
func (m *Metrics) RPCCall(method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	if !methodName.MatchString(method) {
		method = "other"
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.rpc.WithLabelValues(method, outcome).Observe(d.Seconds())
}

// EscrowFinished implements activities.Metrics.
func (m *Metrics) EscrowFinished(outcome string) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(outcome).Inc()
}

// WatchPool reports stats (pool.Pool.Stats) at every scrape as
// escrowflow_pool_processes, _ready, _busy and _restarts_total.
func (m *Metrics) WatchPool(stats func() pool.Stats) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(newPoolCollector(stats))
}

// WorkflowCounter counts workflows with a visibility query;
// client.Client implements it.
type WorkflowCounter interface {
	CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
}

// WatchEscrows reports escrowflow_escrows, the running EscrowSetup
// workflows of namespace by EscrowState, counted through Temporal
// visibility at scrape time, at most every 10 s.
func (m *Metrics) WatchEscrows(c WorkflowCounter, namespace string) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(newEscrowCollector(c, namespace, m.log))
}

// poolCollector reads the pool's Stats once per scrape.
type poolCollector struct {
	stats                            func() pool.Stats
	processes, ready, busy, restarts *prometheus.Desc
}

func newPoolCollector(stats func() pool.Stats) *poolCollector {
	return &poolCollector{
		stats:     stats,
		processes: prometheus.NewDesc(MetricPoolProcesses, "wallet-rpc processes in the pool.", nil, nil),
		ready:     prometheus.NewDesc(MetricPoolReady, "wallet-rpc processes answering.", nil, nil),
		busy:      prometheus.NewDesc(MetricPoolBusy, "wallet-rpc processes leased right now.", nil, nil),
		restarts:  prometheus.NewDesc(MetricPoolRestarts, "wallet-rpc process restarts since the worker started.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.processes
	ch <- c.ready
	ch <- c.busy
	ch <- c.restarts
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.processes, prometheus.GaugeValue, float64(st.Size))
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, float64(st.Ready))
	ch <- prometheus.MustNewConstMetric(c.busy, prometheus.GaugeValue, float64(st.Busy))
	ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(st.Restarts))
}

// escrowCollector counts the running escrows per EscrowState. The Temporal
// server groups counts by ExecutionStatus only ("'group by' clause is only
// supported for ExecutionStatus search attribute"), so it runs one
// CountWorkflow per state. The counts are cached for refreshEvery so that
// scrapes cost the server at most len(escrowStates) queries per interval;
// after a failed refresh the series are left out until the next one.
type escrowCollector struct {
	counter      WorkflowCounter
	namespace    string
	desc         *prometheus.Desc
	log          *zap.Logger
	refreshEvery time.Duration
	timeout      time.Duration
	now          func() time.Time

	mu        sync.Mutex
	refreshed time.Time // last refresh attempt; zero before the first
	counts    []int64   // by escrowStates; nil after a failed refresh
}

func newEscrowCollector(c WorkflowCounter, namespace string, log *zap.Logger) *escrowCollector {
	return &escrowCollector{
		counter:   c,
		namespace: namespace,
		desc: prometheus.NewDesc(MetricEscrows,
			"Running escrows by EscrowState (Temporal visibility, refreshed at most every 10 s).",
			[]string{"state"}, nil),
		log:          log,
		refreshEvery: 10 * time.Second,
		timeout:      5 * time.Second,
		now:          time.Now,
	}
}

// escrowQuery is the visibility query for running escrows in state.
func escrowQuery(state escrow.State) string {
	return fmt.Sprintf(`WorkflowType=%q AND ExecutionStatus="Running" AND %s=%q`,
		escrow.WorkflowName, escrow.EscrowStateKey.GetName(), string(state))
}

// Describe implements prometheus.Collector.
func (c *escrowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *escrowCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.refreshed.IsZero() || now.Sub(c.refreshed) >= c.refreshEvery {
		c.refreshed = now
		c.counts = c.refresh()
	}
	for i, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(escrowStates[i]))
	}
}

// refresh counts every state; nil when a query fails.
func (c *escrowCollector) refresh() []int64 {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts := make([]int64, len(escrowStates))
	for i, s := range escrowStates {
		resp, err := c.counter.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: c.namespace, Query: escrowQuery(s),
		})
		if err != nil {
			c.log.Warn("count escrows by state failed", zap.String("state", string(s)), zap.Error(err))
			return nil
		}
		counts[i] = resp.GetCount()
	}
	return counts
}

// startMetrics creates the registry and serves it on addr. With addr ""
// (metrics disabled) it returns a nil *Metrics. So does it, logging the
// error "metrics disabled", when addr cannot be bound: metrics must not
// keep a worker from running escrows, and a second worker on the machine
// (the e2e tests beside a running demo, say) would otherwise fail on the
// default port. stop shuts the endpoint down, waiting at most 5 s for
// running scrapes, and closes the registry.
func startMetrics(addr string, hl *health, log *zap.Logger) (m *Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	log = log.Named("metrics")
	if m, err = NewMetrics(log); err != nil {
		return nil, nil, err
	}
	srv, err := serveMetrics(addr, m.Handler(), hl, log)
	if err != nil {
		_ = m.Close(context.Background())
		log.Error("metrics disabled", zap.String("address", addr), zap.Error(err))
		return nil, func() {}, nil
	}
	return m, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.shutdown(ctx); err != nil {
			log.Warn("metrics server shutdown", zap.Error(err))
		}
		_ = m.Close(ctx)
		log.Info("metrics stopped")
	}, nil
}

// metricsServer serves /metrics, /livez and /readyz until shutdown.
type metricsServer struct {
	srv  *http.Server
	addr string
	done chan struct{}
}

// serveMetrics listens on addr (host:port; port 0 picks a free one) and
// serves h on /metrics and hl on LivePath and ReadyPath. It logs "metrics
// listening" with the address.
func serveMetrics(addr string, h http.Handler, hl *health, log *zap.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	hl.register(mux)
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	log.Info("metrics listening", zap.String("address", s.addr))
	return s, nil
}

// shutdown stops accepting scrapes and waits for running ones until ctx
// ends.
func (s *metricsServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}
