package bench

// Measure runs three ways of running the same 2-of-3 multisig setups, in
// one run so that their ratios mean something:
//
//   - escrowflow: the product, EscrowSetup workflows through the starter on
//     a throwaway Temporal dev server with an in-process worker (or on the
//     running stack Options.Address points at);
//   - direct: the same wallet-rpc rounds straight on 3 processes per escrow
//     in flight, wallets kept open, no Temporal: the floor;
//   - global-lock: the old design, one wallet-rpc process, one escrow at a
//     time, open and close around every step of every role.
//
// This file starts and stops the processes, runs the escrows and samples
// /proc; the figures are in bench.go. docs/BENCHMARKS.md has measured
// figures.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/devserver"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// startTimeout bounds the start of the worker.
	startTimeout = 2 * time.Minute
	// stopTimeout bounds stopping the worker.
	stopTimeout = time.Minute
	// barWidth is the progress bar's width in cells.
	barWidth = 30
)

// Options are the settings of one Measure run (`escrowctl bench`'s flags).
type Options struct {
	Modes    []Mode
	N, C     int // C is at most N
	PoolSize int
	Stock    int // the escrowflow worker's warm stock
	Keep     bool
	// TemporalCLI is the CLI of the throwaway dev server.
	TemporalCLI string
	WalletRPC   string
	Prefix      string
	// External: escrowflow runs on the running stack at Address, Namespace.
	External           bool
	Address, Namespace string
	// CodecKeys is the key ring file escrowflow's worker and client use
	// ("" for none).
	CodecKeys string
	// JSON prints the report as JSON instead of a table.
	JSON           bool
	Stdout, Stderr io.Writer
	Now            func() time.Time
	// Dial connects a client to Temporal at address.
	Dial func(ctx context.Context, address, namespace string) (Client, error)
	// IDs returns n fresh escrow ids with prefix.
	IDs func(prefix string, n int, now time.Time) ([]string, error)
}

// Client is what escrowflow mode needs of the starter.
type Client interface {
	Start(ctx context.Context, escrowID string) (starter.Run, error)
	Wait(ctx context.Context, escrowID string) (*escrow.SetupResult, error)
	Close()
}

// Measure runs opts.Modes in order and prints the report on opts.Stdout
// (progress on opts.Stderr). It fails when an escrow failed or a mode did
// not run to the end.
func Measure(ctx context.Context, opts Options) error {
	b := &harness{opts: opts, prog: newProgress(opts.Stderr, opts.Now)}
	return b.run(ctx)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// harness is one run of Measure.
type harness struct {
	opts     Options
	prog     *progress
	tmp      string // removed at the end unless --keep
	password string // of the direct and global-lock wallets
	codec    string // key ring escrowflow's worker and client use, "" for none
}

func (b *harness) run(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "escrowctl-bench-")
	if err != nil {
		return err
	}
	b.tmp = tmp
	defer func() {
		if b.opts.Keep {
			fmt.Fprintf(b.opts.Stderr, "bench: kept %s\n", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(b.opts.Stderr, "bench: remove %s: %v\n", tmp, err)
		}
	}()
	b.password = randomHex(16)
	b.codec = b.opts.CodecKeys

	var runs []Run
	for _, m := range b.opts.Modes {
		if ctx.Err() != nil {
			break
		}
		var r Run
		switch m {
		case Escrowflow:
			r = b.escrowflow(ctx, Escrowflow, b.opts.Stock)
		case EscrowflowCold:
			r = b.escrowflow(ctx, EscrowflowCold, 0)
		case Direct:
			r = b.direct(ctx)
		case GlobalLock:
			r = b.globalLock(ctx)
		}
		if r.Err != "" {
			b.prog.note("%s: %s", m, r.Err)
		}
		runs = append(runs, r)
	}
	rep := Summarize(Setup{N: b.opts.N, Concurrency: b.opts.C, PoolSize: b.opts.PoolSize,
		CPUs: runtime.NumCPU(), Codec: b.codec != ""}, runs)
	if b.opts.JSON {
		err = printJSON(b.opts.Stdout, rep)
	} else {
		err = WriteTable(b.opts.Stdout, rep)
	}
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bench stopped: %w", context.Cause(ctx))
	}
	if escrows, modes := rep.Failed(); escrows+modes > 0 {
		return fmt.Errorf("bench: %s failed, %s did not run to the end", plural(escrows, "escrow"), plural(modes, "mode"))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// modeDir makes the temp dir of one mode.
func (b *harness) modeDir(m Mode) (string, error) {
	dir := filepath.Join(b.tmp, string(m))
	return dir, os.MkdirAll(dir, 0o700)
}

// escrowTiming is one escrow's outcome in runBounded.
type escrowTiming struct {
	latency time.Duration
	err     error
}

// runBounded runs one(ctx, i) for i in [0, n) with at most c running at
// once, calls done as each ends, and returns the wall time and every
// escrow's timing. Escrows not started when ctx ends fail with its error.
func runBounded(ctx context.Context, n, c int, one func(ctx context.Context, i int) error, done func(i int, t escrowTiming)) (time.Duration, []escrowTiming) {
	out := make([]escrowTiming, n)
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		stopped := false
		select {
		case sem <- struct{}{}:
			// A slot and the cancellation can be ready at once (select
			// picks either): a cancelled run starts nothing more.
			if ctx.Err() != nil {
				<-sem
				stopped = true
			}
		case <-ctx.Done():
			stopped = true
		}
		if stopped {
			for j := i; j < n; j++ {
				out[j].err = fmt.Errorf("not started: %w", ctx.Err())
			}
			wg.Wait()
			return time.Since(start), out
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			err := one(ctx, i)
			out[i] = escrowTiming{latency: time.Since(t0), err: err}
			done(i, out[i])
		})
	}
	wg.Wait()
	return time.Since(start), out
}

// collect puts the timings into r.
func collect(r *Run, wall time.Duration, ids []string, ts []escrowTiming) {
	r.Wall = wall
	for i, t := range ts {
		if t.err != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %v", ids[i], t.err))
			continue
		}
		r.Latencies = append(r.Latencies, t.latency)
	}
}

// runEscrows runs one mode's escrows with progress.
func (b *harness) runEscrows(ctx context.Context, r *Run, ids []string, one func(ctx context.Context, i int) error) {
	b.prog.start(r.Mode, len(ids))
	wall, ts := runBounded(ctx, len(ids), r.Concurrency, one, func(i int, t escrowTiming) {
		b.prog.escrow(ids[i], t.latency, t.err)
	})
	b.prog.end()
	collect(r, wall, ids, ts)
}

// escrowflowEscrow sets up one escrow through the starter: Start, then Wait
// for the result.
func escrowflowEscrow(ctx context.Context, c Client, id string) error {
	if _, err := c.Start(ctx, id); err != nil {
		return err
	}
	res, err := c.Wait(ctx, id)
	if err != nil {
		return err
	}
	if !res.Confirmed() {
		return errors.New("multisig address not confirmed by every role")
	}
	return nil
}

// escrowflow runs the product: on its own dev server and in-process worker,
// or on the running stack --address points at.
func (b *harness) escrowflow(ctx context.Context, mode Mode, stock int) Run {
	r := Run{Mode: mode, Escrows: b.opts.N, Concurrency: b.opts.C, Processes: b.opts.PoolSize}
	ids, err := b.opts.IDs(b.opts.Prefix, b.opts.N, b.opts.Now())
	if err != nil {
		r.Err = err.Error()
		return r
	}
	one := func(c Client) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error { return escrowflowEscrow(ctx, c, ids[i]) }
	}
	if b.opts.External {
		r.External, r.Processes = true, 0
		b.prog.note("escrowflow: on the running stack at %s", b.opts.Address)
		c, err := b.opts.Dial(ctx, b.opts.Address, b.opts.Namespace)
		if err != nil {
			r.Err = err.Error()
			return r
		}
		defer c.Close()
		b.runEscrows(ctx, &r, ids, one(c))
		return r
	}

	dir, err := b.modeDir(mode)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	b.prog.note("%s: starting a Temporal dev server", mode)
	srv, err := devserver.Start(ctx, b.opts.TemporalCLI, dir, filepath.Join(dir, "temporal.log"),
		devserver.Options{UIPort: -1, DBFile: filepath.Join(dir, "temporal.db")})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		srv.Stop()
	}()
	b.prog.note("%s: Temporal on %s; starting the worker with a pool of %d wallet-rpc processes and a stock of %d wallets", mode, srv.HostPort, b.opts.PoolSize, stock)
	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = srv.HostPort
	cfg.WalletDir = filepath.Join(dir, "wallets")
	cfg.PoolSize = b.opts.PoolSize
	cfg.WalletStock = stock
	cfg.WalletRPCBinary = b.opts.WalletRPC
	cfg.MasterSecret = []byte(randomHex(32))
	cfg.Codec.KeysFile = b.codec
	// Without escrowctl's key ring the bench's own throwaway testnet worker
	// runs with plaintext history, which its client then reads.
	cfg.Codec.InsecurePlaintextHistory = b.codec == ""
	cfg.ShutdownTimeout = 10 * time.Second
	if err := os.MkdirAll(cfg.WalletDir, 0o700); err != nil {
		r.Err = err.Error()
		return r
	}
	w, err := startWorker(ctx, cfg, filepath.Join(dir, "worker.log"))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if err := w.stop(); err != nil {
			b.prog.note("%s: %v", mode, err)
		}
	}()
	c, err := b.opts.Dial(ctx, srv.HostPort, devserver.Namespace)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer c.Close()

	// The worker's wallet-rpc processes are this process's children, as
	// is the dev server.
	self := os.Getpid()
	walletRPCs := func() []int {
		kids, _ := Children(self)
		return slices.DeleteFunc(kids, func(pid int) bool { return pid == srv.PID })
	}
	var tr CPUTracker
	tr.Baseline(walletRPCs())
	self0 := SelfCPU()
	srv0, _ := ReadStat(srv.PID)

	b.runEscrows(ctx, &r, ids, one(c))

	cpu, peak := tr.Sample(walletRPCs())
	srv1, _ := ReadStat(srv.PID)
	r.CPU = &CPU{WalletRPC: cpu, Bench: SelfCPU() - self0, Temporal: max(srv1.CPU()-srv0.CPU(), 0)}
	r.PeakRSSKiB = peak
	return r
}

// localWorker is worker.Run in this process.
type localWorker struct {
	cancel context.CancelFunc
	done   chan error
	log    *os.File
}

// startWorker runs worker.Run with cfg, its metrics listener on a
// free loopback port, logging JSON to logPath, and returns once its /readyz
// answers 200 and, with a stock, it filled the stock (the escrows are
// measured, not the stock's creation).
func startWorker(ctx context.Context, cfg worker.Config, logPath string) (*localWorker, error) {
	port, err := devserver.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(devserver.IP, strconv.Itoa(port))
	cfg.MetricsAddress = addr
	f, err := os.Create(logPath) // seed-check: not a wallet file (the worker's log)
	if err != nil {
		return nil, err
	}
	filled := make(chan struct{})
	if cfg.WalletStock == 0 {
		close(filled)
	}
	var once sync.Once
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f), zapcore.InfoLevel)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "wallet stock filled" {
			once.Do(func() { close(filled) })
		}
		return nil
	}))
	// The worker stops when the bench says so (after the last sample),
	// not when ctx ends.
	wctx, cancel := context.WithCancel(context.Background())
	w := &localWorker{cancel: cancel, done: make(chan error, 1), log: f}
	go func() { w.done <- worker.Run(wctx, cfg, log) }()
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		select {
		case <-filled:
		case <-wctx.Done():
			return
		}
		for !worker.Ready(wctx, addr) && wctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}()
	select {
	case <-ready:
		if wctx.Err() == nil {
			return w, nil
		}
		err = wctx.Err()
	case err := <-w.done:
		cancel()
		_ = f.Close()
		return nil, fmt.Errorf("worker stopped: %v (log %s)", err, logPath)
	case <-time.After(startTimeout):
		err = fmt.Errorf("worker not started after %s (log %s)", startTimeout, logPath)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if stopErr := w.stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	return nil, err
}

// stop stops the worker and its wallet-rpc pool.
func (w *localWorker) stop() error {
	w.cancel()
	defer w.log.Close()
	select {
	case err := <-w.done:
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("worker did not stop within %s", stopTimeout)
	}
}
