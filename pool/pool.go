// Package pool supervises a set of monero-wallet-rpc processes and hands them
// out as leases.
//
// monero-wallet-rpc holds exactly one open wallet per process, so an escrow
// role can only make progress while it has a process to itself. The pool
// starts Size processes on free 127.0.0.1 ports over one wallet dir, waits
// until each answers, and gives each caller a Lease: exclusive use of one
// process until Release. Leases are sticky: a key (escrow id and role) that
// released a process gets the same process back next time, with the state it
// left there (which wallet is open), unless the process died or was lent to
// another key in the meantime. That is what lets a role keep its wallet open
// across rounds without a lock around anything else.
//
// The pool restarts a process that exits or stops answering, and stops every
// process it started on Stop. Processes are started with a parent-death
// signal so that they die with the worker even when it is killed with SIGKILL.
package pool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// ErrStopped is returned by Acquire once Stop has been called.
var ErrStopped = errors.New("wallet-rpc pool stopped")

// Endpoint is an already-running monero-wallet-rpc the pool uses instead of
// starting its own processes.
type Endpoint struct {
	URL      string // e.g. http://127.0.0.1:18083
	Username string // --rpc-login user, empty when login is disabled
	Password string
}

// Config configures a Pool. Start fills zero fields from DefaultConfig.
type Config struct {
	// Binary is the monero-wallet-rpc executable (looked up in PATH).
	Binary string
	// Size is the number of processes to run.
	Size int
	// WalletDir is the --wallet-dir shared by every process.
	WalletDir string
	// RunDir holds the processes' log files and shared ring database.
	// Default: WalletDir/.walletrpc.
	RunDir string
	// Network is "testnet", "stagenet", "mainnet" or "regtest" (a private
	// chain with mainnet-format addresses: no network flag).
	Network string
	// DaemonAddress is host:port of monerod; empty runs the processes --offline.
	DaemonAddress string
	// TrustedDaemon passes --trusted-daemon with DaemonAddress: only for a
	// daemon the operator runs (import_multisig_info then marks spent
	// outputs from the daemon's answers).
	TrustedDaemon bool
	// SSL keeps monero-wallet-rpc's default SSL autodetection. By default the
	// pool passes --rpc-ssl disabled --daemon-ssl disabled: every process
	// listens on loopback only, and the throwaway RSA certificates it would
	// otherwise generate cost over a CPU-second per start and per open.
	SSL bool
	// Login starts every process with random rpc-login credentials (HTTP
	// digest auth) instead of --disable-rpc-login. They reach the process
	// as a config file on a pipe (--config-file /dev/fd/3), so ExtraArgs
	// must not carry another --config-file.
	Login bool
	// ExtraArgs are appended to every command line.
	ExtraArgs []string
	// StartTimeout bounds the wait for a started process to answer.
	StartTimeout time.Duration
	// HealthInterval is how often idle processes are probed; HealthTimeout
	// bounds each probe. Two failed probes in a row restart the process.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// Endpoints, when set, replaces the started processes: the pool leases
	// these and neither starts nor restarts anything.
	Endpoints []Endpoint
	// Logger receives the pool's events. Default: a no-op logger.
	Logger *zap.Logger
}

// DefaultConfig returns the defaults Start applies to zero fields.
func DefaultConfig() Config {
	return Config{
		Binary:         "monero-wallet-rpc",
		Size:           runtime.NumCPU() * 3,
		Network:        "testnet",
		StartTimeout:   60 * time.Second,
		HealthInterval: 5 * time.Second,
		HealthTimeout:  10 * time.Second,
	}
}

func (c *Config) applyDefaults() {
	d := DefaultConfig()
	if c.Binary == "" {
		c.Binary = d.Binary
	}
	if c.Size <= 0 {
		c.Size = d.Size
	}
	if c.Network == "" {
		c.Network = d.Network
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = d.HealthInterval
	}
	if c.HealthTimeout <= 0 {
		c.HealthTimeout = d.HealthTimeout
	}
	if c.RunDir == "" && c.WalletDir != "" {
		c.RunDir = filepath.Join(c.WalletDir, ".walletrpc")
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Stats is a snapshot of the pool's occupancy.
type Stats struct {
	Size     int    // processes
	Ready    int    // processes answering
	Busy     int    // processes leased right now
	Restarts uint64 // process restarts since Start
}

// slot is one process position of the pool. All fields are guarded by
// Pool.mu except cmd, which only the slot's supervisor goroutine touches.
type slot struct {
	id       int
	client   *rpcclient.Client
	pid      int
	gen      uint64 // bumped every time the process (re)starts
	ready    bool
	busy     bool
	owner    string // key holding or last holding the process
	state    string // what the owner left open there
	lastUsed time.Time
	suspect  bool // probe before the next lease
	failures int
	backoff  time.Duration // wait before the next restart; reset when a process answers
	exited   chan struct{} // closed when the current process exits
}

// Pool is a supervised set of monero-wallet-rpc processes. It is safe for
// concurrent use.
type Pool struct {
	cfg      Config
	log      *zap.Logger
	managed  bool
	mu       sync.Mutex
	slots    []*slot
	changed  chan struct{} // closed and replaced on every state change
	stopped  bool
	restarts uint64
	stop     chan struct{}
	wg       sync.WaitGroup
}

// Start starts the pool and returns once every process answers, or with an
// error (after stopping what it started) if one does not within
// StartTimeout.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	cfg.applyDefaults()
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	if len(cfg.Endpoints) > 0 {
		for i, ep := range cfg.Endpoints {
			c := rpcclient.DefaultConfig()
			c.URL, c.Username, c.Password = ep.URL, ep.Username, ep.Password
			p.slots = append(p.slots, &slot{id: i, client: rpcclient.New(c), ready: true, gen: 1, exited: make(chan struct{})})
		}
		p.wg.Add(1)
		go p.healthLoop()
		return p, nil
	}
	if cfg.WalletDir == "" {
		return nil, errors.New("pool: WalletDir is required")
	}
	if _, err := exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	if err := os.MkdirAll(cfg.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("pool: run dir: %w", err)
	}
	p.managed = true
	for i := 0; i < cfg.Size; i++ {
		p.slots = append(p.slots, &slot{id: i, exited: make(chan struct{})})
	}
	startCtx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	errs := make(chan error, cfg.Size)
	for _, s := range p.slots {
		go func(s *slot) { errs <- p.startSlot(startCtx, s) }(s)
	}
	var firstErr error
	for range p.slots {
		if err := <-errs; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		_ = p.Stop(context.Background())
		return nil, firstErr
	}
	p.wg.Add(1)
	go p.healthLoop()
	return p, nil
}

// Stats reports the pool's occupancy.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := Stats{Size: len(p.slots), Restarts: p.restarts}
	for _, s := range p.slots {
		if s.ready {
			st.Ready++
		}
		if s.busy {
			st.Busy++
		}
	}
	return st
}

// PIDs lists the process ids the pool currently runs.
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, s := range p.slots {
		if s.pid > 0 {
			pids = append(pids, s.pid)
		}
	}
	return pids
}

// Stop stops every process the pool started: SIGTERM (monero-wallet-rpc then
// stores and closes its open wallet), SIGKILL for any still running when ctx
// ends or after 10 seconds. Leases still held fail from then on.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	close(p.stop)
	p.broadcastLocked()
	type proc struct {
		pid    int
		exited chan struct{}
	}
	var procs []proc
	for _, s := range p.slots {
		if p.managed && s.pid > 0 {
			procs = append(procs, proc{s.pid, s.exited})
		}
	}
	p.mu.Unlock()

	for _, pr := range procs {
		_ = syscall.Kill(pr.pid, syscall.SIGTERM)
	}
	graceCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pr := range procs {
		select {
		case <-pr.exited:
		case <-graceCtx.Done():
		}
	}
	for _, pr := range procs {
		select {
		case <-pr.exited:
		default:
			_ = syscall.Kill(pr.pid, syscall.SIGKILL)
		}
	}
	p.wg.Wait()
	return nil
}
