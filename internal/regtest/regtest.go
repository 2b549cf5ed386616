// Package regtest runs a private Monero chain for tests: monerod in regtest
// mode on free loopback ports in a temp dir, a faucet wallet that mines its
// own coins and pays addresses, and independent wallets that read what an
// address received. Every process it starts is stopped by its pid.
//
// Under CI (see testenv.InCI) a missing monerod or monero-wallet-rpc fails
// the test; locally it skips.
package regtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/internal/regchain"
	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// CoinbaseUnlock is how many blocks a mined output stays locked;
// SpendableAge is the same for an ordinary output.
const (
	CoinbaseUnlock = regchain.CoinbaseUnlock
	SpendableAge   = regchain.SpendableAge
)

// burnAddress receives blocks mined while no faucet exists: a valid
// mainnet-format address (regtest uses mainnet's format) nobody here holds.
const burnAddress = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"

// Chain is a running regtest monerod.
type Chain struct {
	// Address is the daemon's RPC host:port (for --daemon-address).
	Address string
	Daemon  *rpcclient.Daemon
	dir     string

	mu     sync.Mutex
	procs  []*proc
	miner  string // address that gets mined blocks
	faucet *Faucet
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(20 * time.Second):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

func (c *Chain) start(t testing.TB, name, logFile string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := os.Create(logFile + ".out") // seed-check: not a wallet file (a process log)
	if err != nil {
		t.Fatalf("regtest: %v", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := spawn.Start(cmd); err != nil {
		_ = out.Close()
		t.Fatalf("regtest: start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(p.exited)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// Start starts a regtest monerod, stopped when t's cleanup runs.
func Start(t testing.TB) *Chain {
	t.Helper()
	c := start(t)
	t.Cleanup(c.Stop)
	return c
}

var (
	sharedMu sync.Mutex
	shared   *Chain
)

// Shared returns the test binary's one chain, started on first use. Call
// StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Chain {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		shared = start(t)
	}
	return shared
}

// StopShared stops the chain Shared started, if any.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

func start(t testing.TB) *Chain {
	t.Helper()
	bin := testenv.RequireBinary(t, "monerod")
	testenv.RequireBinary(t, "monero-wallet-rpc")
	dir, err := os.MkdirTemp("", "regtest-")
	if err != nil {
		t.Fatalf("regtest: %v", err)
	}
	c := &Chain{dir: dir, miner: burnAddress}
	for try := 0; ; try++ {
		port, p2p := testenv.FreePort(t), testenv.FreePort(t)
		data := filepath.Join(dir, "monerod-"+strconv.Itoa(try))
		p := c.start(t, "monerod", data+".log", bin, "--regtest", "--offline", "--fixed-difficulty", "1",
			"--data-dir", data, "--non-interactive", "--no-igd", "--no-zmq",
			"--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", strconv.Itoa(port),
			"--p2p-bind-ip", "127.0.0.1", "--p2p-bind-port", strconv.Itoa(p2p),
			"--log-file", data+".log")
		c.Address = "127.0.0.1:" + strconv.Itoa(port)
		c.Daemon = rpcclient.NewDaemon(c.Address, 2*time.Minute)
		err := waitReady(p, func(ctx context.Context) error { _, err := c.Daemon.GetInfo(ctx); return err })
		if err == nil {
			return c
		}
		p.stop()
		if try == 2 {
			c.Stop()
			t.Fatalf("regtest: monerod did not start: %v\n%s", err, tailFile(p.log+".out"))
		}
	}
}

// waitReady polls ready until it succeeds, the process exits or a minute
// passes.
func waitReady(p *proc, ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %w", p.name, err)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop stops every process the chain started (wallets first) and removes
// its temp dir. It is safe to call more than once.
func (c *Chain) Stop() {
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// PID is the process id of the chain's monerod (for CPU measurements).
func (c *Chain) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == "monerod" {
			return p.cmd.Process.Pid
		}
	}
	return 0
}

// Dir is the chain's temp dir.
func (c *Chain) Dir() string { return c.dir }

// Height returns the chain's height.
func (c *Chain) Height(t testing.TB) uint64 {
	t.Helper()
	info, err := c.Daemon.GetInfo(context.Background())
	if err != nil {
		t.Fatalf("regtest: get_info: %v", err)
	}
	return info.Height
}

// Mine mines n blocks (to the faucet once there is one).
func (c *Chain) Mine(t testing.TB, n uint64) {
	t.Helper()
	if err := c.MineE(n); err != nil {
		t.Fatalf("regtest: %v", err)
	}
}

// MineE is Mine for code outside the test goroutine.
func (c *Chain) MineE(n uint64) error {
	c.mu.Lock()
	miner := c.miner
	c.mu.Unlock()
	return regchain.Mine(context.Background(), c.Daemon, n, miner)
}

// MineEvery mines a block every period until the test ends, so that
// deposits unlock and payouts confirm without the test mining by hand.
func (c *Chain) MineEvery(t testing.TB, period time.Duration) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(period)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				_ = c.MineE(1)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// Wallet is a wallet in its own monero-wallet-rpc process, connected to the
// chain.
type Wallet struct {
	*rpcclient.Client
	Address string
	proc    *proc
}

// NewWallet starts a monero-wallet-rpc on the chain and creates a fresh
// wallet in it. The process is stopped with the chain, or earlier by Close.
func (c *Chain) NewWallet(t testing.TB, name string) *Wallet {
	t.Helper()
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := filepath.Join(c.dir, "wallet-"+name+"-"+strconv.Itoa(testenv.FreePort(t)))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("regtest: %v", err)
	}
	for try := 0; ; try++ {
		port := testenv.FreePort(t)
		p := c.start(t, "wallet-rpc "+name, filepath.Join(dir, "rpc.log"), bin,
			"--daemon-address", c.Address, "--trusted-daemon", "--disable-rpc-login",
			"--rpc-ssl", "disabled", "--daemon-ssl", "disabled", "--non-interactive",
			"--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", strconv.Itoa(port),
			"--wallet-dir", dir, "--log-file", filepath.Join(dir, "rpc.log"))
		cfg := rpcclient.DefaultConfig()
		cfg.URL = "http://127.0.0.1:" + strconv.Itoa(port)
		cl := rpcclient.New(cfg)
		err := waitReady(p, func(ctx context.Context) error { _, err := cl.GetVersion(ctx); return err })
		if err != nil {
			p.stop()
			if try == 2 {
				t.Fatalf("regtest: wallet-rpc did not start: %v\n%s", err, tailFile(p.log+".out"))
			}
			continue
		}
		ctx := context.Background()
		if err := cl.CreateWallet(ctx, name, ""); err != nil {
			t.Fatalf("regtest: create wallet %s: %v", name, err)
		}
		addr, err := cl.GetAddress(ctx)
		if err != nil {
			t.Fatalf("regtest: %v", err)
		}
		return &Wallet{Client: cl, Address: addr, proc: p}
	}
}

// Close stops the wallet's process.
func (w *Wallet) Close() { w.proc.stop() }

// Received refreshes the wallet and returns the sum of its incoming
// transfers with at least minConf confirmations, and how many there are.
func (w *Wallet) Received(t testing.TB, minConf uint64) (total uint64, n int) {
	t.Helper()
	total, n, err := w.ReceivedE(minConf)
	if err != nil {
		t.Fatalf("regtest: %v", err)
	}
	return total, n
}

// ReceivedE is Received for code outside the test goroutine.
func (w *Wallet) ReceivedE(minConf uint64) (total uint64, n int, err error) {
	in, err := regchain.Incoming(context.Background(), w.Client)
	if err != nil {
		return 0, 0, err
	}
	for _, tr := range in {
		if tr.Confirmations >= minConf {
			total += tr.Amount
			n++
		}
	}
	return total, n, nil
}

// Faucet is a wallet that mined its own coins and pays addresses.
type Faucet struct {
	*Wallet
	chain *Chain
	mu    sync.Mutex
}

// Faucet returns the chain's faucet, creating it on first use: a wallet
// that mines CoinbaseUnlock+blocks blocks so that blocks coinbase outputs
// are spendable. Later blocks mined by Mine go to it too.
func (c *Chain) Faucet(t testing.TB) *Faucet {
	t.Helper()
	c.mu.Lock()
	f := c.faucet
	c.mu.Unlock()
	if f != nil {
		return f
	}
	w := c.NewWallet(t, "faucet")
	c.mu.Lock()
	c.miner = w.Address
	c.faucet = &Faucet{Wallet: w, chain: c}
	f = c.faucet
	c.mu.Unlock()
	c.Mine(t, CoinbaseUnlock+40)
	return f
}

// Pay sends amount to address, mines nothing, and returns the txid and its
// tx key (what a buyer announces).
func (f *Faucet) Pay(t testing.TB, address string, amount uint64) (txid, txKey string) {
	t.Helper()
	txid, txKey, err := f.PayE(address, amount)
	if err != nil {
		t.Fatalf("regtest: faucet pay: %v", err)
	}
	return txid, txKey
}

// PayE is Pay for code outside the test goroutine. A faucet that has no
// unlocked coins left mines SpendableAge blocks and tries again.
func (f *Faucet) PayE(address string, amount uint64) (txid, txKey string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return regchain.Pay(context.Background(), f.Client, address, amount, f.chain.MineE)
}
