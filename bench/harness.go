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
	"syscall"
	"time"
	"unsafe"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/devserver"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
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

// direct runs the wallet-rpc rounds alone on 3 processes per escrow in
// flight.
func (b *harness) direct(ctx context.Context) Run {
	r := Run{Mode: Direct, Escrows: b.opts.N, Concurrency: b.opts.C, Processes: 3 * b.opts.C}
	dir, err := b.modeDir(Direct)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	b.prog.note("direct: starting %d wallet-rpc processes", r.Processes)
	p, err := pool.Start(ctx, pool.Config{Binary: b.opts.WalletRPC, Size: r.Processes, WalletDir: dir, Login: true})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer stopPool(p)
	ids := walletIDs(Direct, b.opts.N)
	var tr CPUTracker
	tr.Baseline(p.PIDs())
	self0 := SelfCPU()

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
	r.CPU = &CPU{WalletRPC: cpu, Bench: SelfCPU() - self0}
	r.PeakRSSKiB = peak
	return r
}

// globalLock runs the old design: one process, one escrow at a time.
func (b *harness) globalLock(ctx context.Context) Run {
	r := Run{Mode: GlobalLock, Escrows: b.opts.N, Concurrency: 1, Processes: 1}
	dir, err := b.modeDir(GlobalLock)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	b.prog.note("global-lock: starting 1 wallet-rpc process")
	p, err := pool.Start(ctx, pool.Config{Binary: b.opts.WalletRPC, Size: 1, WalletDir: dir, Login: true})
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
	ids := walletIDs(GlobalLock, b.opts.N)
	var tr CPUTracker
	tr.Baseline(p.PIDs())
	self0 := SelfCPU()

	b.runEscrows(ctx, &r, ids, func(ctx context.Context, i int) error {
		return globalLockEscrow(ctx, lock.Client, roleNames(ids[i]), b.password)
	})

	cpu, peak := tr.Sample(p.PIDs())
	r.CPU = &CPU{WalletRPC: cpu, Bench: SelfCPU() - self0}
	r.PeakRSSKiB = peak
	return r
}

func stopPool(p *pool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_ = p.Stop(ctx)
}

// walletIDs names the escrows of a mode without Temporal: <mode>-<n>.
func walletIDs(m Mode, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", m, i+1)
	}
	return ids
}

// roleNames are an escrow's three wallet file names, in role order.
func roleNames(id string) [3]string {
	var out [3]string
	for i, role := range escrow.Roles {
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
	for i, role := range escrow.Roles {
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

// progress shows each mode's progress on stderr: a bar redrawn in
// place on a terminal, one line per escrow otherwise.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	now    func() time.Time
	mode   Mode
	total  int
	done   int
	failed int
	began  time.Time
	active bool          // a bar is drawn on the current line
	tick   chan struct{} // closed by end to stop the redraw ticker
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	return &progress{w: w, tty: isTerminal(w), now: now}
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
func (p *progress) note(format string, args ...any) {
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

func (p *progress) draw() {
	fmt.Fprint(p.w, "\r\x1b[K"+ProgressBar(p.mode, p.done, p.failed, p.total, barWidth, p.now().Sub(p.began)))
}

// start begins a mode of total escrows.
func (p *progress) start(mode Mode, total int) {
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
func (p *progress) escrow(id string, latency time.Duration, err error) {
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
	fmt.Fprintln(p.w, ProgressLine(p.mode, p.done, p.total, id, latency, err))
}

// end finishes the mode's bar.
func (p *progress) end() {
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
