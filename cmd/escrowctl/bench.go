package main

// The bench command measures three ways of running the same 2-of-3 multisig
// setups, in one run so that their ratios mean something:
//
//   - escrowflow: the product, EscrowSetup workflows through the starter on
//     a throwaway Temporal dev server with an in-process worker (or on the
//     running stack --address points at);
//   - direct: the same wallet-rpc rounds straight on 3 processes per escrow
//     in flight, wallets kept open, no Temporal: the floor;
//   - global-lock: the old design, one wallet-rpc process, one escrow at a
//     time, open and close around every step of every role.
//
// The figures, ratios, JSON and table are in package bench; this file
// starts and stops the processes, runs the escrows and samples /proc.
// docs/BENCHMARKS.md has measured figures.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/escrowflow/escrowflow/bench"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/worker"
	"github.com/escrowflow/escrowflow/worker/pool"
	"github.com/escrowflow/escrowflow/workflows"
)

const (
	// defaultTemporalCLI is the pinned CLI make prereqs builds.
	defaultTemporalCLI = "bin/temporal"
	// benchStartTimeout bounds the start of the dev server and the worker.
	benchStartTimeout = 2 * time.Minute
	// benchStopTimeout bounds stopping the worker and the dev server.
	benchStopTimeout = time.Minute
	// benchDevServerAttempts is how often the dev server is started with
	// fresh ports when it loses a port race.
	benchDevServerAttempts = 3
	// benchBarWidth is the progress bar's width in cells.
	benchBarWidth = 30
	// benchMaxEscrows bounds -n.
	benchMaxEscrows = 1000
)

// benchOptions are the bench command's settings.
type benchOptions struct {
	modes       []bench.Mode
	n, c        int // c is at most n
	poolSize    int
	stock       int // the escrowflow worker's warm stock
	keep        bool
	temporalCLI string
	walletRPC   string
	prefix      string
	// external: escrowflow runs on the stack --address points at.
	external bool
}

func benchFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	modes := fs.String("modes", "escrowflow,direct,global-lock", "comma-separated `modes`, run in this order: escrowflow (the product, on Temporal), escrowflow-cold (the same with the warm wallet stock off), direct (the wallet-rpc rounds alone), global-lock (the old design)")
	n := fs.Int("n", 3, "escrows per mode")
	c := fs.Int("c", 3, "escrows in flight at most (global-lock runs one at a time by design)")
	poolSize := fs.Int("pool-size", 9, "wallet-rpc processes of escrowflow's worker (direct runs 3 per escrow in flight, global-lock 1)")
	stock := fs.Int("wallet-stock", -1, "warm stock of escrowflow's worker (escrow-worker --wallet-stock), filled before the first escrow starts; -1: the pool size (escrowflow-cold: always 0)")
	keep := fs.Bool("keep", false, "keep the temp dir: logs, wallets, the Temporal database")
	cli := fs.String("temporal-cli", defaultTemporalCLI, "Temporal CLI `path` for the throwaway dev server (temporal from PATH when the default is missing); with --address (or TEMPORAL_ADDRESS) escrowflow runs on that running stack instead, its workers doing the work")
	walletRPC := fs.String("wallet-rpc", "monero-wallet-rpc", "monero-wallet-rpc `executable`")
	prefix := fs.String("prefix", "bench", "escrowflow escrow id `prefix`")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this `duration`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("bench: unexpected arguments %q", args)
		}
		ms, err := bench.ParseModes(*modes)
		if err != nil {
			return usagef("bench: --modes: %v", err)
		}
		switch {
		case *n < 1 || *n > benchMaxEscrows:
			return usagef("bench: -n must be 1-%d, got %d", benchMaxEscrows, *n)
		case *c < 1:
			return usagef("bench: -c must be at least 1, got %d", *c)
		case *poolSize < 1:
			return usagef("bench: --pool-size must be at least 1, got %d", *poolSize)
		case *stock < -1:
			return usagef("bench: --wallet-stock must be -1 or more, got %d", *stock)
		case *timeout <= 0:
			return usagef("bench: --timeout must be positive")
		}
		if _, err := demoIDs(*prefix, *n, a.now(), "0000"); err != nil {
			return usagef("bench: %v", err)
		}
		opts := benchOptions{
			modes: ms, n: *n, c: min(*c, *n), poolSize: *poolSize, stock: *stock, keep: *keep,
			walletRPC: *walletRPC, prefix: *prefix,
			external: a.address != DefaultAddress || flagGiven(fs, "address"),
		}
		if opts.stock < 0 {
			opts.stock = opts.poolSize
		}
		if slices.Contains(ms, bench.EscrowflowCold) && opts.external {
			return usagef("bench: escrowflow-cold needs a worker of its own: not with --address")
		}
		if (slices.Contains(ms, bench.Escrowflow) || slices.Contains(ms, bench.EscrowflowCold)) && !opts.external {
			if opts.temporalCLI, err = temporalCLIPath(*cli, flagGiven(fs, "temporal-cli")); err != nil {
				return err
			}
		}
		if slices.ContainsFunc(ms, func(m bench.Mode) bool { return (m != bench.Escrowflow && m != bench.EscrowflowCold) || !opts.external }) {
			if _, err := exec.LookPath(opts.walletRPC); err != nil {
				return fmt.Errorf("bench: %w (make prereqs installs it)", err)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		b := &benchRun{app: a, opts: opts, prog: newBenchProgress(a.stderr, a.now)}
		return b.run(ctx)
	}
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// temporalCLIPath checks the Temporal CLI; a missing default falls back to
// temporal in PATH.
func temporalCLIPath(path string, explicit bool) (string, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return filepath.Abs(path) // the server runs in its own dir
	}
	if !explicit {
		if p, err := exec.LookPath("temporal"); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("bench: Temporal CLI %q is not an executable file (make prereqs builds bin/temporal; or give --temporal-cli, or --address of a running stack)", path)
}

// benchRun is one run of the bench command.
type benchRun struct {
	*app
	opts     benchOptions
	prog     *benchProgress
	tmp      string // removed at the end unless --keep
	password string // of the direct and global-lock wallets
	codec    string // key ring escrowflow's worker and client use, "" for none
}

func (b *benchRun) run(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "escrowctl-bench-")
	if err != nil {
		return err
	}
	b.tmp = tmp
	defer func() {
		if b.opts.keep {
			fmt.Fprintf(b.stderr, "bench: kept %s\n", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(b.stderr, "bench: remove %s: %v\n", tmp, err)
		}
	}()
	b.password = randomHex(16)
	b.codec = benchCodecPath(b.codecKeys)
	if b.codec == "" {
		// The worker refuses plaintext history: a key ring of this run,
		// shared with this process's client.
		if b.codec, err = benchKeyRing(tmp); err != nil {
			return err
		}
		codecKeysFile = b.codec
	}

	var runs []bench.Run
	for _, m := range b.opts.modes {
		if ctx.Err() != nil {
			break
		}
		var r bench.Run
		switch m {
		case bench.Escrowflow:
			r = b.escrowflow(ctx, bench.Escrowflow, b.opts.stock)
		case bench.EscrowflowCold:
			r = b.escrowflow(ctx, bench.EscrowflowCold, 0)
		case bench.Direct:
			r = b.direct(ctx)
		case bench.GlobalLock:
			r = b.globalLock(ctx)
		}
		if r.Err != "" {
			b.prog.note("%s: %s", m, r.Err)
		}
		runs = append(runs, r)
	}
	rep := bench.Summarize(bench.Setup{N: b.opts.n, Concurrency: b.opts.c, PoolSize: b.opts.poolSize,
		CPUs: runtime.NumCPU(), Codec: b.codec != ""}, runs)
	if b.json {
		err = printJSON(b.stdout, rep)
	} else {
		err = bench.WriteTable(b.stdout, rep)
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

// benchCodecPath is the key ring escrowctl's client uses (see
// dataConverter); the bench's worker gets the same.
func benchCodecPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if _, err := os.Stat(demoCodecKeys); err == nil {
		return demoCodecKeys
	}
	return ""
}

// benchKeyRing writes a fresh codec key ring into dir and returns its path.
func benchKeyRing(dir string) (string, error) {
	ring, err := codec.NewKey("bench")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "codec.keys")
	return path, os.WriteFile(path, []byte(ring+"\n"), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// modeDir makes the temp dir of one mode.
func (b *benchRun) modeDir(m bench.Mode) (string, error) {
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
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
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
func collect(r *bench.Run, wall time.Duration, ids []string, ts []escrowTiming) {
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
func (b *benchRun) runEscrows(ctx context.Context, r *bench.Run, ids []string, one func(ctx context.Context, i int) error) {
	b.prog.start(r.Mode, len(ids))
	wall, ts := runBounded(ctx, len(ids), r.Concurrency, one, func(i int, t escrowTiming) {
		b.prog.escrow(ids[i], t.latency, t.err)
	})
	b.prog.end()
	collect(r, wall, ids, ts)
}

// escrowflowEscrow sets up one escrow through the starter: Start, then Wait
// for the result.
func escrowflowEscrow(ctx context.Context, c escrows, id string) error {
	if _, err := c.Start(ctx, id); err != nil {
		return err
	}
	res, err := c.Wait(ctx, id)
	if err != nil {
		return err
	}
	if !confirmed(res) {
		return errors.New("multisig address not confirmed by every role")
	}
	return nil
}

// escrowflow runs the product: on its own dev server and in-process worker,
// or on the running stack --address points at.
func (b *benchRun) escrowflow(ctx context.Context, mode bench.Mode, stock int) bench.Run {
	r := bench.Run{Mode: mode, Escrows: b.opts.n, Concurrency: b.opts.c, Processes: b.opts.poolSize}
	ids, err := demoIDs(b.opts.prefix, b.opts.n, b.now(), randomTag())
	if err != nil {
		r.Err = err.Error()
		return r
	}
	one := func(c escrows) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error { return escrowflowEscrow(ctx, c, ids[i]) }
	}
	if b.opts.external {
		r.External, r.Processes = true, 0
		b.prog.note("escrowflow: on the running stack at %s", b.address)
		c, err := b.connect(ctx)
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
	srv, err := startDevServer(ctx, b.opts.temporalCLI, dir)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if err := srv.stop(); err != nil {
			b.prog.note("%s: %v", mode, err)
		}
	}()
	b.prog.note("%s: Temporal on %s; starting the worker with a pool of %d wallet-rpc processes and a stock of %d wallets", mode, srv.hostPort, b.opts.poolSize, stock)
	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = srv.hostPort
	cfg.WalletDir = filepath.Join(dir, "wallets")
	cfg.PoolSize = b.opts.poolSize
	cfg.WalletStock = stock
	cfg.WalletRPCBinary = b.opts.walletRPC
	cfg.MasterSecret = []byte(randomHex(32))
	cfg.MetricsAddress = "off"
	cfg.Codec.KeysFile = b.codec
	cfg.ShutdownTimeout = 10 * time.Second
	if err := os.MkdirAll(cfg.WalletDir, 0o700); err != nil {
		r.Err = err.Error()
		return r
	}
	w, err := startBenchWorker(ctx, cfg, filepath.Join(dir, "worker.log"))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if err := w.stop(); err != nil {
			b.prog.note("%s: %v", mode, err)
		}
	}()
	c, err := b.dial(ctx, srv.hostPort, DefaultNamespace, b.stderr)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer c.Close()

	// The worker's wallet-rpc processes are this process's children, as
	// is the dev server.
	self := os.Getpid()
	walletRPCs := func() []int {
		kids, _ := bench.Children(self)
		return slices.DeleteFunc(kids, func(pid int) bool { return pid == srv.pid })
	}
	var tr bench.CPUTracker
	tr.Baseline(walletRPCs())
	self0 := bench.SelfCPU()
	srv0, _ := bench.ReadStat(srv.pid)

	b.runEscrows(ctx, &r, ids, one(c))

	cpu, peak := tr.Sample(walletRPCs())
	srv1, _ := bench.ReadStat(srv.pid)
	r.CPU = &bench.CPU{WalletRPC: cpu, Bench: bench.SelfCPU() - self0, Temporal: max(srv1.CPU()-srv0.CPU(), 0)}
	r.PeakRSSKiB = peak
	return r
}

// direct runs the wallet-rpc rounds alone on 3 processes per escrow in
// flight.
func (b *benchRun) direct(ctx context.Context) bench.Run {
	r := bench.Run{Mode: bench.Direct, Escrows: b.opts.n, Concurrency: b.opts.c, Processes: 3 * b.opts.c}
	dir, err := b.modeDir(bench.Direct)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	b.prog.note("direct: starting %d wallet-rpc processes", r.Processes)
	p, err := pool.Start(ctx, pool.Config{Binary: b.opts.walletRPC, Size: r.Processes, WalletDir: dir, Login: true})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer stopPool(p)
	ids := walletIDs(bench.Direct, b.opts.n)
	var tr bench.CPUTracker
	tr.Baseline(p.PIDs())
	self0 := bench.SelfCPU()

	b.runEscrows(ctx, &r, ids, func(ctx context.Context, i int) error {
		ws, release, err := leaseRoles(ctx, p, ids[i])
		if err != nil {
			return err
		}
		err = directEscrow(ctx, ws, roleNames(ids[i]), b.password)
		release(err == nil)
		return err
	})

	// Sampled right before Stop, while every process still runs.
	cpu, peak := tr.Sample(p.PIDs())
	r.CPU = &bench.CPU{WalletRPC: cpu, Bench: bench.SelfCPU() - self0}
	r.PeakRSSKiB = peak
	return r
}

// globalLock runs the old design: one process, one escrow at a time.
func (b *benchRun) globalLock(ctx context.Context) bench.Run {
	r := bench.Run{Mode: bench.GlobalLock, Escrows: b.opts.n, Concurrency: 1, Processes: 1}
	dir, err := b.modeDir(bench.GlobalLock)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	b.prog.note("global-lock: starting 1 wallet-rpc process")
	p, err := pool.Start(ctx, pool.Config{Binary: b.opts.walletRPC, Size: 1, WalletDir: dir, Login: true})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer stopPool(p)
	lock, err := p.Acquire(ctx, "global-lock")
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer lock.Release("")
	ids := walletIDs(bench.GlobalLock, b.opts.n)
	var tr bench.CPUTracker
	tr.Baseline(p.PIDs())
	self0 := bench.SelfCPU()

	b.runEscrows(ctx, &r, ids, func(ctx context.Context, i int) error {
		return globalLockEscrow(ctx, lock.Client, roleNames(ids[i]), b.password)
	})

	cpu, peak := tr.Sample(p.PIDs())
	r.CPU = &bench.CPU{WalletRPC: cpu, Bench: bench.SelfCPU() - self0}
	r.PeakRSSKiB = peak
	return r
}

func stopPool(p *pool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), benchStopTimeout)
	defer cancel()
	_ = p.Stop(ctx)
}

// walletIDs names the escrows of a mode without Temporal: <mode>-<n>.
func walletIDs(m bench.Mode, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", m, i+1)
	}
	return ids
}

// roleNames are an escrow's three wallet file names, in role order.
func roleNames(id string) [3]string {
	var out [3]string
	for i, role := range workflows.Roles {
		out[i] = id + "." + string(role)
	}
	return out
}

// leaseRoles leases a process for each role of escrow id; release(ok)
// returns them (forgetting their state unless ok).
func leaseRoles(ctx context.Context, p *pool.Pool, id string) (ws [3]benchWallet, release func(ok bool), err error) {
	var leases []*pool.Lease
	release = func(ok bool) {
		for _, l := range leases {
			if ok {
				l.Release("")
			} else {
				l.Discard()
			}
		}
	}
	for i, role := range workflows.Roles {
		l, err := p.Acquire(ctx, id+"/"+string(role))
		if err != nil {
			release(true)
			return ws, nil, err
		}
		leases = append(leases, l)
		ws[i] = l.Client
	}
	return ws, release, nil
}

// benchWallet is what the direct and global-lock modes call on wallet-rpc;
// *rpcclient.Client implements it.
type benchWallet interface {
	CreateWallet(ctx context.Context, filename, password string) error
	OpenWallet(ctx context.Context, filename, password string) error
	CloseWallet(ctx context.Context) error
	Store(ctx context.Context) error
	PrepareMultisig(ctx context.Context, enableExperimental bool) (string, error)
	MakeMultisig(ctx context.Context, infos []string, threshold uint32, password string) (rpcclient.MultisigRound, error)
	ExchangeMultisigKeys(ctx context.Context, infos []string, password string) (rpcclient.MultisigRound, error)
	IsMultisig(ctx context.Context) (rpcclient.MultisigStatus, error)
	GetAddress(ctx context.Context) (string, error)
}

// peersOf returns the messages of every role but i, in role order.
func peersOf(msgs [3]string, i int) []string {
	out := make([]string, 0, 2)
	for j, m := range msgs {
		if j != i {
			out = append(out, m)
		}
	}
	return out
}

// each3 runs fn for the three roles at once.
func each3(fn func(i int) error) error {
	var errs [3]error
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs[:]...)
}

// multisigRound is one make or exchange round of role i with its peers'
// messages.
type multisigRound struct {
	method string
	call   func(w benchWallet, peers []string) (rpcclient.MultisigRound, error)
}

// multisigRounds are make_multisig and the two exchange rounds.
func multisigRounds(ctx context.Context, password string) []multisigRound {
	exchange := func(w benchWallet, peers []string) (rpcclient.MultisigRound, error) {
		return w.ExchangeMultisigKeys(ctx, peers, password)
	}
	return []multisigRound{
		{"make_multisig", func(w benchWallet, peers []string) (rpcclient.MultisigRound, error) {
			return w.MakeMultisig(ctx, peers, 2, password)
		}},
		{"exchange_multisig_keys", exchange},
		{"exchange_multisig_keys", exchange},
	}
}

// verifyRole checks that w's open wallet is a ready 2-of-3 multisig wallet
// with address want.
func verifyRole(ctx context.Context, w benchWallet, want string) error {
	st, err := w.IsMultisig(ctx)
	if err != nil {
		return fmt.Errorf("is_multisig: %w", err)
	}
	if !st.Multisig || !st.Ready || st.Threshold != 2 || st.Total != 3 {
		return fmt.Errorf("not a ready 2-of-3 multisig wallet: %+v", st)
	}
	addr, err := w.GetAddress(ctx)
	if err != nil {
		return fmt.Errorf("get_address: %w", err)
	}
	if want == "" || addr != want {
		return fmt.Errorf("address %q, the last exchange returned %q", addr, want)
	}
	return nil
}

// directEscrow runs the setup on three processes, one per role, wallets
// kept open: create, prepare, make, exchange ×2, verify, close, each round
// for the three roles at once.
func directEscrow(ctx context.Context, ws [3]benchWallet, names [3]string, password string) (err error) {
	defer func() {
		if err != nil { // best effort, so the processes are clean for the next escrow
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = each3(func(i int) error { return ws[i].CloseWallet(cctx) })
		}
	}()
	round := func(method string, fn func(i int) error) error {
		if err := each3(fn); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		return nil
	}
	if err := round("create_wallet", func(i int) error { return ws[i].CreateWallet(ctx, names[i], password) }); err != nil {
		return err
	}
	var msgs, addrs [3]string
	if err := round("prepare_multisig", func(i int) (err error) {
		msgs[i], err = ws[i].PrepareMultisig(ctx, true)
		return err
	}); err != nil {
		return err
	}
	for _, mr := range multisigRounds(ctx, password) {
		var next [3]string
		if err := round(mr.method, func(i int) error {
			res, err := mr.call(ws[i], peersOf(msgs, i))
			next[i], addrs[i] = res.MultisigInfo, res.Address
			return err
		}); err != nil {
			return err
		}
		msgs = next
	}
	if err := round("verify", func(i int) error { return verifyRole(ctx, ws[i], addrs[0]) }); err != nil {
		return err
	}
	return round("close_wallet", func(i int) error { return ws[i].CloseWallet(ctx) })
}

// globalLockEscrow runs the setup the old design's way on one process: each
// step for each role in turn, between an open and a close of the role's
// wallet. Two calls are added where wallet-rpc needs them, as escrowflow's
// activities make them too: a reopened wallet needs experimental multisig
// enabled again before make and exchange (wallet-rpc does not keep the flag
// across close and open), so those steps call prepare_multisig first; and
// they store the wallet before closing it (closed without a store after
// make_multisig, a wallet fails to open again with
// wallet_files_doesnt_correspond).
func globalLockEscrow(ctx context.Context, w benchWallet, names [3]string, password string) error {
	inWallet := func(i int, method string, fn func() error) error {
		if err := w.OpenWallet(ctx, names[i], password); err != nil {
			return fmt.Errorf("%s: open_wallet for %s: %w", names[i], method, err)
		}
		if err := fn(); err != nil {
			_ = w.CloseWallet(ctx)
			return fmt.Errorf("%s: %s: %w", names[i], method, err)
		}
		if err := w.CloseWallet(ctx); err != nil {
			return fmt.Errorf("%s: close_wallet: %w", names[i], err)
		}
		return nil
	}
	reenable := func() error {
		_, err := w.PrepareMultisig(ctx, true)
		if rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig) {
			return nil // expected on a multisig wallet; the flag is set anyway
		}
		return err
	}
	for i := range names {
		if err := w.CreateWallet(ctx, names[i], password); err != nil {
			return fmt.Errorf("%s: create_wallet: %w", names[i], err)
		}
		if err := w.CloseWallet(ctx); err != nil {
			return fmt.Errorf("%s: close_wallet: %w", names[i], err)
		}
	}
	var msgs, addrs [3]string
	for i := range names {
		if err := inWallet(i, "prepare_multisig", func() (err error) {
			msgs[i], err = w.PrepareMultisig(ctx, true)
			return err
		}); err != nil {
			return err
		}
	}
	for _, mr := range multisigRounds(ctx, password) {
		var next [3]string
		for i := range names {
			if err := inWallet(i, mr.method, func() error {
				if err := reenable(); err != nil {
					return err
				}
				res, err := mr.call(w, peersOf(msgs, i))
				next[i], addrs[i] = res.MultisigInfo, res.Address
				if err != nil {
					return err
				}
				return w.Store(ctx)
			}); err != nil {
				return err
			}
		}
		msgs = next
	}
	for i := range names {
		if err := inWallet(i, "verify", func() error { return verifyRole(ctx, w, addrs[0]) }); err != nil {
			return err
		}
	}
	return nil
}

// devServer is a throwaway `temporal server start-dev` on 127.0.0.1.
type devServer struct {
	hostPort string
	pid      int
	logPath  string
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// startDevServer starts a dev server on a free port with its database in
// dir, the EscrowState search attribute and the project's dynamic config,
// and waits until it is ready; a lost port race is retried with a new port.
func startDevServer(ctx context.Context, cli, dir string) (*devServer, error) {
	var lastErr error
	for attempt := 1; attempt <= benchDevServerAttempts; attempt++ {
		srv, retry, err := startDevServerOnce(ctx, cli, dir, attempt)
		if err == nil {
			return srv, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startDevServerOnce(ctx context.Context, cli, dir string, attempt int) (srv *devServer, retry bool, err error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("temporal-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(cli, "server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--headless",
		"--db-filename", filepath.Join(dir, fmt.Sprintf("temporal-%d.db", attempt)),
		"--search-attribute", workflows.EscrowStateKey.GetName()+"=Keyword",
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true",
		"--log-level", "warn",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := spawn.Start(cmd); err != nil {
		return nil, false, fmt.Errorf("start %s: %w", cli, err)
	}
	srv = &devServer{hostPort: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), pid: cmd.Process.Pid, logPath: logPath, exited: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		close(srv.exited)
	}()
	if err := srv.waitReady(ctx); err != nil {
		_ = srv.stop()
		b, _ := os.ReadFile(logPath)
		return nil, strings.Contains(string(b), "address already in use"), fmt.Errorf("%w (log %s)", err, logPath)
	}
	return srv, false, nil
}

// waitReady polls until a client can list the EscrowState search attribute
// as a Keyword.
func (s *devServer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(benchStartTimeout)
	lastErr := errors.New("not checked yet")
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("temporal dev server (pid %d) exited before it was ready: %v", s.pid, s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if lastErr = probeTemporal(ctx, s.hostPort); lastErr == nil {
			return nil
		}
		select {
		case <-s.exited:
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("temporal dev server on %s not ready after %s: %v", s.hostPort, benchStartTimeout, lastErr)
}

func probeTemporal(ctx context.Context, hostPort string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  hostPort,
		Namespace: DefaultNamespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: DefaultNamespace})
	if err != nil {
		return err
	}
	name := workflows.EscrowStateKey.GetName()
	if typ, ok := resp.GetCustomAttributes()[name]; !ok || typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		return fmt.Errorf("search attribute %s not registered as Keyword yet", name)
	}
	return nil
}

// stop stops the server by its pid: SIGTERM to its process group, SIGKILL
// after the grace period; it returns once the process is reaped.
func (s *devServer) stop() error {
	var err error
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = syscall.Kill(-s.pid, syscall.SIGTERM)
		select {
		case <-s.exited:
			return
		case <-time.After(benchStopTimeout / 6):
		}
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		select {
		case <-s.exited:
		case <-time.After(benchStopTimeout):
			err = fmt.Errorf("temporal dev server pid %d did not exit", s.pid)
		}
	})
	return err
}

// benchWorker is worker.Run in this process.
type benchWorker struct {
	cancel context.CancelFunc
	done   chan error
	log    *os.File
}

// startBenchWorker runs worker.Run with cfg, logging JSON to logPath, and
// returns once it logs "worker started".
func startBenchWorker(ctx context.Context, cfg worker.Config, logPath string) (*benchWorker, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Ready: the worker started and, with a stock, filled it (the
	// escrows are measured, not the stock's creation).
	ready := make(chan struct{})
	var mu sync.Mutex
	started, filled := false, cfg.WalletStock == 0
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f), zapcore.InfoLevel)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		mu.Lock()
		defer mu.Unlock()
		was := started && filled
		started = started || e.Message == "worker started"
		filled = filled || e.Message == "wallet stock filled"
		if !was && started && filled {
			close(ready)
		}
		return nil
	}))
	// The worker stops when the bench says so (after the last sample),
	// not when ctx ends.
	wctx, cancel := context.WithCancel(context.Background())
	w := &benchWorker{cancel: cancel, done: make(chan error, 1), log: f}
	go func() { w.done <- worker.Run(wctx, cfg, log) }()
	select {
	case <-ready:
		return w, nil
	case err := <-w.done:
		cancel()
		_ = f.Close()
		return nil, fmt.Errorf("worker stopped: %v (log %s)", err, logPath)
	case <-time.After(benchStartTimeout):
		err = fmt.Errorf("worker not started after %s (log %s)", benchStartTimeout, logPath)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if stopErr := w.stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	return nil, err
}

// stop stops the worker and its wallet-rpc pool.
func (w *benchWorker) stop() error {
	w.cancel()
	defer w.log.Close()
	select {
	case err := <-w.done:
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	case <-time.After(benchStopTimeout):
		return fmt.Errorf("worker did not stop within %s", benchStopTimeout)
	}
}

// benchProgress shows each mode's progress on stderr: a bar redrawn in
// place on a terminal, one line per escrow otherwise.
type benchProgress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	now    func() time.Time
	mode   bench.Mode
	total  int
	done   int
	failed int
	began  time.Time
	active bool          // a bar is drawn on the current line
	tick   chan struct{} // closed by end to stop the redraw ticker
}

func newBenchProgress(w io.Writer, now func() time.Time) *benchProgress {
	return &benchProgress{w: w, tty: isTerminal(w), now: now}
}

// isTerminal reports whether w is a terminal (TCGETS succeeds on it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// note prints a line about the run, above the bar.
func (p *benchProgress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
	if p.active {
		p.draw()
	}
}

func (p *benchProgress) draw() {
	fmt.Fprint(p.w, "\r\x1b[K"+bench.ProgressBar(p.mode, p.done, p.failed, p.total, benchBarWidth, p.now().Sub(p.began)))
}

// start begins a mode of total escrows.
func (p *benchProgress) start(mode bench.Mode, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.total, p.done, p.failed, p.began = mode, total, 0, 0, p.now()
	if !p.tty {
		return
	}
	p.active = true
	p.draw()
	p.tick = make(chan struct{})
	go func(stop chan struct{}) {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				p.mu.Lock()
				if p.active {
					p.draw()
				}
				p.mu.Unlock()
			}
		}
	}(p.tick)
}

// escrow records a finished escrow.
func (p *benchProgress) escrow(id string, latency time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if err != nil {
		p.failed++
	}
	if p.tty {
		p.draw()
		return
	}
	fmt.Fprintln(p.w, bench.ProgressLine(p.mode, p.done, p.total, id, latency, err))
}

// end finishes the mode's bar.
func (p *benchProgress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return
	}
	close(p.tick)
	p.draw()
	fmt.Fprintln(p.w)
	p.active = false
}
