package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Environment variables of the instrumentation export.
const (
	// EnvInstrumentation enables the export when true ("1", "true").
	EnvInstrumentation = "ENABLE_INSTRUMENTATION"
	// EnvInstrumentationDir is the folder the exports go to.
	EnvInstrumentationDir = "ESCROWFLOW_INSTRUMENTATION_DIR"
)

// DefaultInstrumentationDir is where exports go by default, relative to the
// worker's working directory.
const DefaultInstrumentationDir = "./instrumentation"

// Bounds of the automatic export.
const (
	// exportTimeout bounds one export: waiting for the workflow run to
	// close, reading its history and writing the file.
	exportTimeout = 2 * time.Minute
	// exportGrace is how long shutdown waits for running exports before
	// cancelling them; exportCancelWait how long it then waits for them
	// to return.
	exportGrace      = 5 * time.Second
	exportCancelWait = 2 * time.Second
	// exportRetry is the pause before reading the history again when the
	// run had not closed yet (Get returned on a transient error).
	exportRetry = time.Second
)

// instrumentationFromEnv applies EnvInstrumentation and
// EnvInstrumentationDir to c.
func instrumentationFromEnv(getenv func(string) string, c *Config) error {
	if v := getenv(EnvInstrumentationDir); v != "" {
		c.InstrumentationDir = v
	}
	if v := getenv(EnvInstrumentation); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvInstrumentation, err)
		}
		c.Instrumentation = b
	}
	return nil
}

// registerInstrumentationFlags binds --instrumentation and
// --instrumentation-dir to c.
func registerInstrumentationFlags(fs *flag.FlagSet, c *Config) {
	fs.BoolVar(&c.Instrumentation, "instrumentation", c.Instrumentation, "write each escrow's instrumentation export escrow_<id>.json when it ends (env "+EnvInstrumentation+"=1)")
	fs.StringVar(&c.InstrumentationDir, "instrumentation-dir", c.InstrumentationDir, "folder of the instrumentation exports (env "+EnvInstrumentationDir+")")
}

// exportClient is the part of client.Client the exporter uses.
type exportClient interface {
	instrument.HistoryClient
	GetWorkflow(ctx context.Context, workflowID, runID string) client.WorkflowRun
}

// exporter writes an escrow's instrumentation export (see package
// instrument) once its workflow run has closed. It is the activities'
// OnFinish hook: each export runs in its own goroutine, bounded by
// exportTimeout, and close cancels those still running after a short
// grace period. Failures are logged, never returned: instrumentation never
// fails an escrow.
type exporter struct {
	c       exportClient
	dc      converter.DataConverter // decodes the history's payloads; nil: default
	dir     string
	log     *zap.Logger
	timeout time.Duration
	grace   time.Duration
	retry   time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	running map[string]bool // run ids being exported
}

// newExporter returns the exporter of cfg, or nil when cfg.Instrumentation
// is off. A folder it cannot create is logged and tried again at each
// export.
func newExporter(cfg Config, c exportClient, dc converter.DataConverter, log *zap.Logger) *exporter {
	if !cfg.Instrumentation {
		return nil
	}
	dir := cfg.InstrumentationDir
	if dir == "" {
		dir = DefaultInstrumentationDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &exporter{c: c, dc: dc, dir: dir, log: log, timeout: exportTimeout, grace: exportGrace, retry: exportRetry,
		ctx: ctx, cancel: cancel, running: map[string]bool{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Error("instrumentation folder unusable", zap.String("dir", dir), zap.Error(err))
	}
	log.Info("instrumentation export enabled", zap.String("dir", dir))
	return x
}

// hook returns the OnFinish hook, nil when x is nil (export disabled).
func (x *exporter) hook() func(activities.FinishEvent) {
	if x == nil {
		return nil
	}
	return x.onFinish
}

// onFinish starts the export of ev's run unless it is running already or
// the exporter is closed. It does not block.
func (x *exporter) onFinish(ev activities.FinishEvent) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || x.running[ev.RunID] {
		return
	}
	x.running[ev.RunID] = true
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer func() {
			x.mu.Lock()
			delete(x.running, ev.RunID)
			x.mu.Unlock()
		}()
		log := x.log.With(zap.String("escrow_id", ev.EscrowID), zap.String("workflow_id", ev.WorkflowID), zap.String("run_id", ev.RunID))
		path, e, err := x.export(ev)
		if err != nil {
			log.Warn("instrumentation export failed", zap.Error(err))
			return
		}
		log.Info("instrumentation exported", zap.String("file", path), zap.String("state", e.State),
			zap.Int("steps", len(e.Steps)), zap.Int64("total_ms", e.TotalMs))
	}()
}

// export waits until ev's workflow run has closed, builds its export from
// the history and writes it atomically to <dir>/escrow_<id>.json.
func (x *exporter) export(ev activities.FinishEvent) (string, instrument.Escrow, error) {
	if err := escrow.ValidateEscrowID(ev.EscrowID); err != nil {
		return "", instrument.Escrow{}, err
	}
	if ev.WorkflowID == "" || ev.RunID == "" {
		return "", instrument.Escrow{}, errors.New("no workflow run to export")
	}
	ctx, cancel := context.WithTimeout(x.ctx, x.timeout)
	defer cancel()
	var e instrument.Escrow
	for {
		// The result or failure does not matter, only that the run closed.
		_ = x.c.GetWorkflow(ctx, ev.WorkflowID, ev.RunID).Get(ctx, nil)
		if ctx.Err() != nil {
			return "", e, fmt.Errorf("gave up waiting for the workflow run to close: %w", ctx.Err())
		}
		var err error
		e, err = instrument.Fetch(ctx, x.c, ev.WorkflowID, ev.RunID, x.dc)
		if err != nil {
			return "", e, err
		}
		if e.State != instrument.StateRunning {
			break
		}
		select {
		case <-time.After(x.retry):
		case <-ctx.Done():
			return "", e, fmt.Errorf("gave up waiting for the workflow run to close: %w", ctx.Err())
		}
	}
	b, err := instrument.Marshal(e)
	if err != nil {
		return "", e, err
	}
	if err := os.MkdirAll(x.dir, 0o755); err != nil {
		return "", e, err
	}
	path := filepath.Join(x.dir, instrument.FileName(ev.EscrowID))
	if err := walletstore.AtomicWriteFile(path, b, 0o644); err != nil {
		return "", e, err
	}
	return path, e, nil
}

// close stops accepting exports, waits up to the grace period for running
// ones, then cancels them and waits a little more. It does nothing on nil.
func (x *exporter) close() {
	if x == nil {
		return
	}
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
	done := make(chan struct{})
	go func() {
		x.wg.Wait()
		close(done)
	}()
	defer x.cancel()
	select {
	case <-done:
		return
	case <-time.After(x.grace):
	}
	x.log.Warn("cancelling instrumentation exports still running at shutdown", zap.Duration("grace", x.grace))
	x.cancel()
	select {
	case <-done:
	case <-time.After(exportCancelWait):
		x.log.Warn("instrumentation exports did not stop after cancellation")
	}
}
