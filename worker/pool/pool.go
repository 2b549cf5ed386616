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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/internal/spawn"
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loginConfig returns the read end of a pipe that holds a wallet-rpc config
// file with the rpc-login line; the child reads it as /dev/fd/3 while it
// parses its options. Nothing touches the disk, and the line is far below
// the pipe's buffer, so writing it cannot block.
func loginConfig(user, pass string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(w, "rpc-login=%s:%s\n", user, pass)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// args builds the command line of one process.
func (p *Pool) args(port int) []string {
	c := p.cfg
	var a []string
	switch c.Network {
	case "testnet":
		a = append(a, "--testnet")
	case "stagenet":
		a = append(a, "--stagenet")
	}
	if c.DaemonAddress == "" {
		a = append(a, "--offline")
	} else {
		a = append(a, "--daemon-address", c.DaemonAddress)
		if c.TrustedDaemon {
			a = append(a, "--trusted-daemon")
		}
	}
	if c.Login {
		// The credentials come through a pipe on fd 3 (see startProcess),
		// never on the command line, which every local user can read.
		a = append(a, "--config-file", "/dev/fd/3")
	} else {
		a = append(a, "--disable-rpc-login")
	}
	if !c.SSL {
		a = append(a, "--rpc-ssl", "disabled", "--daemon-ssl", "disabled")
	}
	a = append(a,
		"--non-interactive",
		"--shared-ringdb-dir", filepath.Join(c.RunDir, "ringdb"),
		"--rpc-bind-ip", "127.0.0.1",
		"--rpc-bind-port", strconv.Itoa(port),
		"--wallet-dir", c.WalletDir,
		"--log-file", filepath.Join(c.RunDir, "wallet-rpc-"+strconv.Itoa(port)+".log"),
		"--max-log-files", "2",
	)
	return append(a, c.ExtraArgs...)
}

// errSupervised marks a start that failed after the process was spawned:
// its own supervisor restarts it, so the caller must not start another.
var errSupervised = errors.New("supervised")

// errExited marks a process that exited before it answered.
var errExited = errors.New("exited during start")

// startAttempts is how many processes Start lets a slot go through before
// it gives up on the slot.
const startAttempts = 3

// startSlot starts the first process of slot s. A process that exits before
// it answers (it lost the race for its port, say) is restarted by its
// supervisor on a new port; startSlot waits for that instead of failing the
// whole pool, up to startAttempts processes, so that a binary that can never
// start still fails fast.
func (p *Pool) startSlot(ctx context.Context, s *slot) error {
	first := p.startProcess(ctx, s)
	if !errors.Is(first, errExited) {
		return first
	}
	for {
		p.mu.Lock()
		ready, gen, exited, changed, stopped := s.ready, s.gen, s.exited, p.changed, p.stopped
		p.mu.Unlock()
		if ready {
			return nil
		}
		if stopped {
			return ErrStopped
		}
		if gen >= startAttempts {
			select {
			case <-exited:
				return fmt.Errorf("%w (%d processes tried)", first, gen)
			default:
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w; no restart answered: %w", first, ctx.Err())
		}
	}
}

// startProcess starts the process of slot s and waits until it answers.
// Once the process is spawned, a supervisor goroutine owns it; a failure
// after that point wraps errSupervised.
func (p *Pool) startProcess(ctx context.Context, s *slot) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pool: free port: %w", err)
	}
	var user, pass string
	if p.cfg.Login {
		user, pass = "escrowflow", randomToken()
	}
	cmd := exec.Command(p.cfg.Binary, p.args(port)...)
	cmd.Dir = p.cfg.RunDir
	if p.cfg.Login {
		conf, err := loginConfig(user, pass)
		if err != nil {
			return fmt.Errorf("pool: wallet-rpc login: %w", err)
		}
		defer conf.Close()
		cmd.ExtraFiles = []*os.File{conf}
	}
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("pool: start %s: %w", p.cfg.Binary, err)
	}
	cc := rpcclient.DefaultConfig()
	cc.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	cc.Username, cc.Password = user, pass
	client := rpcclient.New(cc)
	exited := make(chan struct{})

	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return ErrStopped
	}
	s.client, s.pid, s.exited = client, cmd.Process.Pid, exited
	s.gen++
	s.ready, s.busy, s.owner, s.state, s.suspect, s.failures = false, false, "", "", false, 0
	gen := s.gen
	p.mu.Unlock()

	p.wg.Add(1)
	go p.supervise(s, cmd, gen, exited)

	start := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.GetVersion(pctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("pool: wallet-rpc on port %d (see %s): %w (%w)", port, p.cfg.RunDir, errExited, errSupervised)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return fmt.Errorf("pool: wallet-rpc on port %d did not answer: %w (%w)", port, ctx.Err(), errSupervised)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.mu.Lock()
	if s.gen == gen {
		s.ready, s.backoff = true, 0
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Info("wallet-rpc ready", zap.Int("slot", s.id), zap.Int("pid", cmd.Process.Pid),
		zap.Int("port", port), zap.Duration("start", time.Since(start)))
	return nil
}

// supervise waits for the process to exit and restarts it unless the pool
// is stopping.
func (p *Pool) supervise(s *slot, cmd *exec.Cmd, gen uint64, exited chan struct{}) {
	defer p.wg.Done()
	err := cmd.Wait()
	close(exited)
	p.mu.Lock()
	if s.gen == gen {
		s.ready, s.busy, s.owner, s.state = false, false, "", ""
	}
	stopped := p.stopped
	p.broadcastLocked()
	p.mu.Unlock()
	if stopped {
		return
	}
	p.log.Warn("wallet-rpc exited, restarting", zap.Int("slot", s.id), zap.Int("pid", cmd.Process.Pid), zap.Error(err))
	for {
		// A process that keeps failing is restarted ever more slowly (up
		// to 10 s apart), however many supervisors its restarts spawn.
		p.mu.Lock()
		s.backoff = min(max(2*s.backoff, 100*time.Millisecond), 10*time.Second)
		backoff := s.backoff
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
		err := p.startProcess(ctx, s)
		cancel()
		if err == nil || errors.Is(err, errSupervised) || errors.Is(err, ErrStopped) {
			return // running, or the new process's own supervisor takes over
		}
		p.log.Error("wallet-rpc restart failed", zap.Int("slot", s.id), zap.Error(err))
	}
}

func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Lease is the exclusive use of one wallet-rpc process. Call Release or
// Discard exactly once.
type Lease struct {
	p      *Pool
	s      *slot
	gen    uint64
	key    string
	once   sync.Once
	Client *rpcclient.Client // the leased process
	Wait   time.Duration     // how long Acquire waited for a process
	Slot   int               // slot index, for logs and reports
	PID    int               // process id, 0 for external endpoints
	// State is what this key left in the process at its last Release (for
	// example the name of the open wallet), or "" when the process is fresh,
	// was restarted, or was used by another key since.
	State string
}

// Acquire waits until a process is free for key and leases it. It prefers
// the process key used last (its wallet is still open there), then an idle
// process no key is attached to, then the idle process used least recently
// (whose key will have to reopen its wallet). It returns ctx.Err() if ctx
// ends first and ErrStopped after Stop.
func (p *Pool) Acquire(ctx context.Context, key string) (*Lease, error) {
	return p.acquire(ctx, key, false, key)
}

// AcquireOwned leases the process key used last, waiting while it is busy,
// and returns (nil, nil) when key has no process (it never had one, or the
// process was restarted or lent to another key since).
func (p *Pool) AcquireOwned(ctx context.Context, key string) (*Lease, error) {
	return p.acquire(ctx, key, true, key)
}

// Transfer is AcquireOwned for key from, with the process attached to key
// to from then on: to's next lease finds it, with what from left there as
// this lease's State.
func (p *Pool) Transfer(ctx context.Context, from, to string) (*Lease, error) {
	return p.acquire(ctx, from, true, to)
}

// TryAcquireIdle leases, without waiting, an idle process no key is
// attached to, for key; it returns nil when there is none. Use it for work
// that must not take a process from anyone.
func (p *Pool) TryAcquireIdle(key string) *Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	for _, s := range p.slots {
		if s.ready && !s.busy && !s.suspect && s.owner == "" {
			s.busy, s.owner, s.state = true, key, ""
			return &Lease{p: p, s: s, gen: s.gen, key: key, Client: s.client, Slot: s.id, PID: s.pid}
		}
	}
	return nil
}

func (p *Pool) acquire(ctx context.Context, key string, ownedOnly bool, owner string) (*Lease, error) {
	start := time.Now()
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil, ErrStopped
		}
		if ownedOnly && !p.ownsLocked(key) {
			p.mu.Unlock()
			return nil, nil
		}
		if s := p.pickLocked(key); s != nil {
			l := &Lease{p: p, s: s, gen: s.gen, key: owner, Client: s.client, Slot: s.id, PID: s.pid, Wait: time.Since(start)}
			if s.owner == key {
				l.State = s.state
			}
			s.busy, s.owner, s.state = true, owner, ""
			p.mu.Unlock()
			return l, nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (p *Pool) ownsLocked(key string) bool {
	for _, s := range p.slots {
		if s.owner == key && s.ready {
			return true
		}
	}
	return false
}

func (p *Pool) pickLocked(key string) *slot {
	var free, lru *slot
	for _, s := range p.slots {
		if s.owner == key && s.ready {
			if s.busy || s.suspect {
				return nil // our process is in use by an earlier attempt: wait for it
			}
			return s
		}
		if !s.ready || s.busy || s.suspect {
			continue
		}
		if s.owner == "" && free == nil {
			free = s
		}
		if lru == nil || s.lastUsed.Before(lru.lastUsed) {
			lru = s
		}
	}
	if free != nil {
		return free
	}
	return lru
}

// Release returns the process to the pool, remembering state for the key's
// next lease.
func (l *Lease) Release(state string) {
	l.once.Do(func() { l.p.release(l, state, false) })
}

// Discard returns the process to the pool and forgets what it holds: use it
// when the outcome of a call is unknown. The process is probed before it is
// leased again.
func (l *Lease) Discard() {
	l.once.Do(func() { l.p.release(l, "", true) })
}

func (p *Pool) release(l *Lease, state string, suspect bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := l.s
	if s.gen != l.gen {
		return // the process was restarted meanwhile
	}
	s.busy = false
	s.state = state
	s.lastUsed = time.Now()
	if suspect {
		s.owner = ""
		s.suspect = true
		go p.probe(s, s.gen)
	}
	p.broadcastLocked()
}

// Forget detaches key from its process, if it has one idle: call it when an
// escrow role is done so its process is preferred for new keys.
func (p *Pool) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.owner == key && !s.busy {
			s.owner, s.state = "", ""
		}
	}
	p.broadcastLocked()
}

// probe checks that the process of slot s answers; after two failures in a
// row it kills the process so the supervisor restarts it.
func (p *Pool) probe(s *slot, gen uint64) {
	p.mu.Lock()
	client, pid := s.client, s.pid
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.HealthTimeout)
	_, err := client.GetVersion(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.gen != gen {
		return
	}
	if err == nil {
		s.failures, s.suspect = 0, false
		p.broadcastLocked()
		return
	}
	s.failures++
	p.log.Warn("wallet-rpc health probe failed", zap.Int("slot", s.id), zap.Int("pid", pid), zap.Int("failures", s.failures), zap.Error(err))
	if s.failures >= 2 && p.managed && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return
	}
	if !p.managed && s.failures >= 2 {
		s.suspect = true // external endpoint: keep probing, never lease while down
	}
}

func (p *Pool) healthLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		var idle []*slot
		var gens []uint64
		for _, s := range p.slots {
			if s.ready && !s.busy {
				idle = append(idle, s)
				gens = append(gens, s.gen)
			}
		}
		p.mu.Unlock()
		for i, s := range idle {
			p.probe(s, gens[i])
		}
	}
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
