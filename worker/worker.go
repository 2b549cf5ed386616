package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
	"github.com/escrowflow/escrowflow/workflows"
)

// NewLogger returns a zap logger: console encoding for people, JSON on
// request.
func NewLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	var cfg zap.Config
	if format == "json" {
		cfg = zap.NewProductionConfig()
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths, cfg.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	return cfg.Build()
}

// SDKLogger adapts a zap logger to the Temporal SDK's logger through slog.
func SDKLogger(l *zap.Logger) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(zapslog.NewHandler(l.Core(), zapslog.WithName("temporal"))))
}

func parseEndpoint(raw string) (pool.Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return pool.Endpoint{}, fmt.Errorf("wallet-rpc endpoint %q: want http://[user:pass@]host:port", raw)
	}
	ep := pool.Endpoint{}
	if u.User != nil {
		ep.Username = u.User.Username()
		ep.Password, _ = u.User.Password()
		u.User = nil
	}
	ep.URL = u.String()
	return ep, nil
}

// logConfig logs the configuration without secrets.
func logConfig(log *zap.Logger, c Config) {
	eps := make([]string, 0, len(c.WalletRPCEndpoints))
	for _, raw := range c.WalletRPCEndpoints {
		if ep, err := parseEndpoint(raw); err == nil {
			eps = append(eps, ep.URL)
		}
	}
	log.Info("configuration",
		zap.String("temporal_address", c.TemporalAddress),
		zap.String("namespace", c.Namespace),
		zap.String("task_queue", escrow.TaskQueue),
		zap.String("wallet_dir", c.WalletDir),
		zap.Int("pool_size", c.PoolSize),
		zap.String("wallet_rpc", c.WalletRPCBinary),
		zap.Strings("wallet_rpc_args", c.WalletRPCArgs),
		zap.Strings("wallet_rpc_endpoints", eps),
		zap.Bool("wallet_rpc_login", c.WalletRPCLogin),
		zap.String("network", c.Network),
		zap.String("daemon_address", c.DaemonAddress),
		zap.Bool("trusted_daemon", c.TrustedDaemon),
		zap.String("master_secret", "***"),
		zap.Int("max_concurrent_calls", c.MaxConcurrentCalls),
		zap.Int("max_escrows", c.maxEscrows()),
		zap.Int("wallet_stock", c.WalletStock),
		zap.Duration("admit_wait", c.AdmitWait),
		zap.String("metrics_address", c.MetricsAddress),
	)
}

// Run runs the worker until ctx ends: it starts the wallet-rpc pool, dials
// Temporal, registers the workflow and activities and polls the task queue.
// On return every wallet-rpc process it started has been stopped. Run sets
// the process umask to 077 and the wallet dir's mode to 0700. Its metrics
// listener answers ReadyPath with 200 from when both Temporal workers poll
// until ctx ends.
func Run(ctx context.Context, cfg Config, log *zap.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.LoadSecret(); err != nil {
		return err
	}
	passwords, err := activities.NewPasswords(cfg.MasterSecret)
	if err != nil {
		return err
	}
	logConfig(log, cfg)
	walletDir, store, err := openWalletDir(cfg.WalletDir)
	if err != nil {
		return err
	}
	eps, err := cfg.endpoints()
	if err != nil {
		return err
	}
	dc, stopCodec, err := startCodec(cfg.Codec, log)
	if err != nil {
		return err
	}
	defer stopCodec()
	hl := new(health)
	metrics, stopMetrics, err := startMetrics(cfg.metricsAddress(), hl, log) // nil when disabled
	if err != nil {
		return err
	}
	defer stopMetrics()
	tc, err := client.Dial(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace,
		Logger: SDKLogger(log), MetricsHandler: metrics.SDKHandler(), DataConverter: dc})
	if err != nil {
		return fmt.Errorf("dial temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer tc.Close()
	p, err := startPool(ctx, cfg, walletDir, eps, log)
	if err != nil {
		return err
	}
	defer stopPool(p, log)
	if err := metrics.WatchPool(p.Stats); err != nil {
		return err
	}
	if err := metrics.WatchEscrows(tc, cfg.Namespace); err != nil {
		return err
	}
	exports := newExporter(cfg, tc, dc, log.Named("instrumentation")) // nil unless cfg.Instrumentation
	defer exports.close()
	workerID, err := cfg.resolveWorkerID(walletDir)
	if err != nil {
		return err
	}
	hostQueue := escrow.HostTaskQueue(workerID)
	var daemon activities.Daemon // nil without a daemon: trades fail NoDaemon
	if cfg.DaemonAddress != "" {
		daemon = rpcclient.NewDaemon(cfg.DaemonAddress, time.Minute)
	}
	walletRPCVersion := ""
	if len(eps) == 0 {
		walletRPCVersion = releaseVersion(cfg.WalletRPCBinary)
	}
	log.Info("wallet-rpc release", zap.String("version", walletRPCVersion))
	acts := activities.New(activities.Config{
		Leases:             activities.PoolLeaser(p),
		Store:              store,
		Passwords:          passwords,
		Logger:             log.Named("activities"),
		MaxConcurrentCalls: cfg.MaxConcurrentCalls,
		Metrics:            metrics,
		OnFinish:           exports.hook(),
		HostTaskQueue:      hostQueue,
		MaxEscrows:         cfg.maxEscrows(),
		Runs:               visibilityRuns{tc},
		Stock:              cfg.WalletStock,
		AdmitWait:          admitWait(cfg.AdmitWait),
		Daemon:             daemon,
		Network:            cfg.Network,
		WalletRPCVersion:   walletRPCVersion,
	})
	defer runStock(ctx, acts)()
	stopWorkers, err := startWorkers(tc, cfg.ShutdownTimeout, acts, hostQueue)
	if err != nil {
		return err
	}
	log.Info("worker started", zap.String("task_queue", escrow.TaskQueue), zap.String("host_task_queue", hostQueue),
		zap.String("worker_id", workerID), zap.Int("pool_size", p.Stats().Size))
	hl.setReady(true)
	<-ctx.Done()
	hl.setReady(false)
	log.Info("worker stopping")
	stopWorkers()
	return nil
}

// openWalletDir makes dir the owner's only (umask 077 for this process and
// its wallet-rpc children, mode 0700) and opens the store in it.
func openWalletDir(dir string) (string, *walletstore.Store, error) {
	// Wallet files hold keys: whatever this process and its wallet-rpc
	// children create is the owner's only (files 0600, dirs 0700). The
	// umask is process-wide, which is what the worker process wants.
	syscall.Umask(0o077)
	walletDir, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(walletDir, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("wallet dir: %w", err)
	}
	store, err := walletstore.Open(walletDir)
	return walletDir, store, err
}

// startCodec loads the key ring and serves the codec endpoint when
// configured; it returns the data converter and the endpoint's stop.
func startCodec(cfg CodecConfig, log *zap.Logger) (converter.DataConverter, func(), error) {
	cd, err := cfg.load()
	if err != nil {
		return nil, nil, err
	}
	if cd == nil {
		log.Warn("workflow payloads are NOT encrypted: multisig messages are stored in plaintext in workflow history; set " + EnvCodecKeysFile)
		return codec.Plain(), func() {}, nil
	}
	log.Info("workflow payloads encrypted", zap.String("codec_key", cd.CurrentKeyID()))
	stop := func() {}
	if cfg.Address != "" {
		if stop, err = serveCodec(cd, cfg, log); err != nil {
			return nil, nil, fmt.Errorf("codec endpoint: %w", err)
		}
	}
	return cd.DataConverter(), stop, nil
}

// startPool starts the wallet-rpc pool over walletDir.
func startPool(ctx context.Context, cfg Config, walletDir string, eps []pool.Endpoint, log *zap.Logger) (*pool.Pool, error) {
	return pool.Start(ctx, pool.Config{
		Binary:    cfg.WalletRPCBinary,
		Size:      cfg.PoolSize,
		WalletDir: walletDir,
		Network:   cfg.Network,
		// Wallet-rpc's own SSL only costs CPU on loopback (see pool.Config.SSL).
		DaemonAddress: cfg.DaemonAddress,
		TrustedDaemon: cfg.TrustedDaemon,
		Login:         cfg.WalletRPCLogin,
		ExtraArgs:     cfg.WalletRPCArgs,
		Endpoints:     eps,
		Logger:        log.Named("pool"),
	})
}

// stopPool stops p within 20 s.
func stopPool(p *pool.Pool, log *zap.Logger) {
	stopCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = p.Stop(stopCtx)
	log.Info("wallet-rpc pool stopped")
}

// runStock runs the warm wallet stock until the returned stop is called.
func runStock(ctx context.Context, acts *activities.Activities) (stop func()) {
	stockCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); activities.RunStock(stockCtx, acts) }()
	return func() { cancel(); <-done }
}

// startWorkers starts the two Temporal workers: the shared queue runs
// workflows and ClaimEscrow (any worker may claim); the worker's own queue
// runs the wallet activities of the escrows it claimed, next to their
// files. stop stops both, the shared one first.
func startWorkers(tc client.Client, shutdown time.Duration, acts *activities.Activities, hostQueue string) (stop func(), err error) {
	shared := sdkworker.New(tc, escrow.TaskQueue, sdkworker.Options{WorkerStopTimeout: shutdown})
	Register(shared, acts)
	host := sdkworker.New(tc, hostQueue, sdkworker.Options{WorkerStopTimeout: shutdown})
	host.RegisterActivity(acts)
	if err := host.Start(); err != nil {
		return nil, fmt.Errorf("start worker on %s: %w", hostQueue, err)
	}
	if err := shared.Start(); err != nil {
		host.Stop()
		return nil, fmt.Errorf("start worker on %s: %w", escrow.TaskQueue, err)
	}
	return func() { shared.Stop(); host.Stop() }, nil
}

var versionPattern = regexp.MustCompile(`\(v(\d+\.\d+\.\d+\.\d+)[^)]*\)`)

// releaseVersion runs "binary --version" and returns the release it names
// ("0.18.0.0"), or "" when it cannot tell (then signing against mainnet is
// refused).
func releaseVersion(binary string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return ""
	}
	if m := versionPattern.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// admitWait maps the worker's AdmitWait (0: no wait) to the activities'
// (negative: no wait).
func admitWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// visibilityRuns counts a workflow id's runs in Temporal visibility.
type visibilityRuns struct{ c client.Client }

func (v visibilityRuns) OtherRuns(ctx context.Context, workflowID, runID string) (int, error) {
	resp, err := v.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowId = %q", workflowID),
		PageSize: 10,
	})
	if err != nil {
		return 0, fmt.Errorf("list runs of %s: %w", workflowID, err)
	}
	n := 0
	for _, ex := range resp.GetExecutions() {
		if ex.GetExecution().GetRunId() != runID {
			n++
		}
	}
	return n, nil
}

// Register registers the EscrowSetup and EscrowTrade workflows and acts on w.
func Register(w sdkworker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.EscrowSetup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	w.RegisterWorkflowWithOptions(workflows.EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
	w.RegisterActivity(acts)
}
