package pool_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/internal/regtest"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

const password = "test-password"

// startPool starts a pool of size real wallet-rpc processes over a temp
// wallet dir and stops it when the test ends, asserting that none of its
// processes survives.
func startPool(t *testing.T, size int, tweak ...func(*pool.Config)) (*pool.Pool, string) {
	t.Helper()
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := t.TempDir()
	cfg := pool.Config{Binary: bin, Size: size, WalletDir: dir, HealthInterval: 500 * time.Millisecond, HealthTimeout: 2 * time.Second}
	for _, f := range tweak {
		f(&cfg)
	}
	p, err := pool.Start(context.Background(), cfg)
	require.NoError(t, err)
	seen := map[int]bool{}
	var mu sync.Mutex
	record := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, pid := range p.PIDs() {
			seen[pid] = true
		}
	}
	record()
	t.Cleanup(func() {
		record()
		require.NoError(t, p.Stop(context.Background()))
		for pid := range seen {
			require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "wallet-rpc pid %d survived Stop", pid)
		}
	})
	require.Equal(t, size, p.Stats().Ready)
	return p, dir
}

func acquire(t *testing.T, p *pool.Pool, key string) *pool.Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := p.Acquire(ctx, key)
	require.NoError(t, err)
	return l
}

// peersOf returns the messages of every role but i.
func peersOf(infos []string, i int) []string {
	var out []string
	for j, m := range infos {
		if j != i {
			out = append(out, m)
		}
	}
	return out
}

// parallel runs fn for the three roles at once and fails on any error.
func parallel(t *testing.T, fn func(i int) error) {
	t.Helper()
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i) }()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// setupUntilMade creates the three wallets and runs prepare and make on
// clients[i]; it returns the round-1 exchange messages.
func setupUntilMade(t *testing.T, ctx context.Context, clients []*rpcclient.Client, names []string) []string {
	t.Helper()
	parallel(t, func(i int) error { return clients[i].CreateWallet(ctx, names[i], password) })
	infos := make([]string, 3)
	parallel(t, func(i int) (err error) {
		infos[i], err = clients[i].PrepareMultisig(ctx, true)
		return err
	})
	for _, m := range infos {
		require.True(t, strings.HasPrefix(m, "Multisig"), "prepare message prefix")
	}
	next := make([]string, 3)
	parallel(t, func(i int) error {
		r, err := clients[i].MakeMultisig(ctx, peersOf(infos, i), 2, password)
		next[i] = r.MultisigInfo
		return err
	})
	return next
}

func assertReady(t *testing.T, ctx context.Context, clients []*rpcclient.Client, finals []string) {
	t.Helper()
	require.NotEmpty(t, finals[0])
	for i, c := range clients {
		require.Equal(t, finals[0], finals[i], "role %d address", i)
		st, err := c.IsMultisig(ctx)
		require.NoError(t, err)
		require.Equal(t, rpcclient.MultisigStatus{Multisig: true, Ready: true, Threshold: 2, Total: 3}, st)
		addr, err := c.GetAddress(ctx)
		require.NoError(t, err)
		require.Equal(t, finals[0], addr)
	}
}

// TestProtocol2of3 drives the whole 2-of-3 setup through the Go client on
// three pool processes, wallets kept open.
func TestProtocol2of3(t *testing.T) {
	p, _ := startPool(t, 3)
	ctx := context.Background()
	var clients []*rpcclient.Client
	for _, role := range []string{"buyer", "vendor", "arbiter"} {
		l := acquire(t, p, "e1/"+role)
		defer l.Release("")
		clients = append(clients, l.Client)
	}
	infos := setupUntilMade(t, ctx, clients, []string{"e1.buyer", "e1.vendor", "e1.arbiter"})
	next := make([]string, 3)
	parallel(t, func(i int) error {
		r, err := clients[i].ExchangeMultisigKeys(ctx, peersOf(infos, i), password)
		if err == nil && r.Address != "" {
			err = fmt.Errorf("round 1 already returned an address")
		}
		next[i] = r.MultisigInfo
		return err
	})
	finals := make([]string, 3)
	parallel(t, func(i int) error {
		r, err := clients[i].ExchangeMultisigKeys(ctx, peersOf(next, i), password)
		finals[i] = r.Address
		return err
	})
	assertReady(t, ctx, clients, finals)

	// A further exchange is refused: the wallet is finalized.
	_, err := clients[0].ExchangeMultisigKeys(ctx, peersOf(next, 0), password)
	require.Error(t, err)
	require.False(t, rpcclient.IsRetryable(err))
}

// TestProtocolReopenBetweenRounds closes every wallet between the exchange
// rounds and reopens it in a different process: the exchange then fails
// with -48 until experimental multisig is re-enabled with prepare_multisig.
func TestProtocolReopenBetweenRounds(t *testing.T) {
	p, dir := startPool(t, 3)
	ctx := context.Background()
	names := []string{"e2.buyer", "e2.vendor", "e2.arbiter"}
	leases := make([]*pool.Lease, 3)
	clients := make([]*rpcclient.Client, 3)
	for i := range 3 {
		leases[i] = acquire(t, p, fmt.Sprint("e2/", i))
		defer leases[i].Release("")
		clients[i] = leases[i].Client
	}
	infos := setupUntilMade(t, ctx, clients, names)

	// rotate moves every role's wallet to the next process the way the
	// activities' recovery path does: store, snapshot the files of the
	// still-open wallet, restore the snapshot under a new name, open that
	// in a different process.
	store, err := walletstore.Open(dir)
	require.NoError(t, err)
	rotation := 0
	rotate := func() {
		rotation++
		parallel(t, func(i int) error { return clients[i].Store(ctx) })
		for i := range names {
			snap := fmt.Sprintf("%s.snap%d", names[i], rotation)
			_, err := store.Snapshot(names[i], snap)
			require.NoError(t, err)
			names[i] = fmt.Sprintf("%s.copy%d", names[i], rotation)
			_, err = store.Restore(snap, names[i])
			require.NoError(t, err)
		}
		clients = append(clients[1:], clients[0])
		parallel(t, func(i int) error { return clients[i].OpenWallet(ctx, names[i], password) })
	}
	reenable := func() {
		parallel(t, func(i int) error {
			_, err := clients[i].PrepareMultisig(ctx, true)
			if rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig) {
				return nil
			}
			return err
		})
	}

	for round := 1; round <= 2; round++ {
		rotate()
		// Round 1 works without it here (make_multisig rewrote the keys file
		// with the flag set); a wallet restored from a snapshot may not, so
		// the activities always re-enable after an open. The documented
		// answer is ALREADY_MULTISIG, and the flag is set anyway.
		_, err := clients[0].PrepareMultisig(ctx, true)
		require.True(t, rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig), "re-enable answers already multisig: %v", err)
		reenable()
		next := make([]string, 3)
		parallel(t, func(i int) error {
			r, err := clients[i].ExchangeMultisigKeys(ctx, peersOf(infos, i), password)
			if round == 2 {
				next[i] = r.Address
			} else {
				next[i] = r.MultisigInfo
			}
			return err
		})
		infos = next
	}
	assertReady(t, ctx, clients, infos)
}

// TestBadInput feeds garbage, truncated and wrong-round messages, a wrong
// password and an unknown wallet to real wallets: each is a typed,
// non-retryable error.
func TestBadInput(t *testing.T) {
	p, _ := startPool(t, 3)
	ctx := context.Background()
	var clients []*rpcclient.Client
	for i := range 3 {
		l := acquire(t, p, fmt.Sprint("e3/", i))
		defer l.Release("")
		clients = append(clients, l.Client)
	}
	names := []string{"e3.buyer", "e3.vendor", "e3.arbiter"}
	parallel(t, func(i int) error { return clients[i].CreateWallet(ctx, names[i], password) })
	prep := make([]string, 3)
	parallel(t, func(i int) (err error) {
		prep[i], err = clients[i].PrepareMultisig(ctx, true)
		return err
	})
	c := clients[0]
	good := peersOf(prep, 0)

	bad := func(t *testing.T, err error) {
		t.Helper()
		var rpcErr *rpcclient.RPCError
		require.True(t, errors.As(err, &rpcErr), "want *RPCError, got %T %v", err, err)
		require.False(t, rpcclient.IsRetryable(err), "%v", err)
		require.NotContains(t, err.Error(), good[0][:40], "errors never quote kex messages")
	}
	tests := []struct {
		name string
		give []string
	}{
		{"garbage", []string{"not a multisig message", "neither is this"}},
		{"truncated", []string{good[0][:len(good[0])/2], good[1]}},
		// Not here: make_multisig with ONE peer message succeeds and makes a
		// 2-of-2 wallet; the activities refuse anything but two peer
		// messages before calling wallet-rpc (activities.checkPeers).
		// Nor a role's own message in place of a peer's: wallet-rpc accepts
		// it. The workflow only ever passes the two peers' messages.
	}
	for _, tt := range tests {
		t.Run("make_multisig/"+tt.name, func(t *testing.T) {
			_, err := c.MakeMultisig(ctx, tt.give, 2, password)
			bad(t, err)
			st, err := c.IsMultisig(ctx)
			require.NoError(t, err)
			require.False(t, st.Multisig, "a refused make_multisig changes nothing")
		})
	}
	t.Run("exchange before make (wrong round)", func(t *testing.T) {
		_, err := c.ExchangeMultisigKeys(ctx, good, password)
		bad(t, err)
	})
	// Now make the wallets multisig and feed round-1 messages to the wrong round.
	round1 := make([]string, 3)
	parallel(t, func(i int) error {
		r, err := clients[i].MakeMultisig(ctx, peersOf(prep, i), 2, password)
		round1[i] = r.MultisigInfo
		return err
	})
	t.Run("make_multisig again (already multisig)", func(t *testing.T) {
		_, err := c.MakeMultisig(ctx, good, 2, password)
		bad(t, err)
		require.True(t, rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig), "%v", err)
	})
	t.Run("exchange with prepare messages (wrong round)", func(t *testing.T) {
		_, err := c.ExchangeMultisigKeys(ctx, good, password)
		bad(t, err)
	})
	t.Run("exchange with garbage", func(t *testing.T) {
		_, err := c.ExchangeMultisigKeys(ctx, []string{"MultisigxV2Rgarbage", "MultisigxV2Rjunk"}, password)
		bad(t, err)
	})
	t.Run("exchange replayed", func(t *testing.T) {
		// (wallet-rpc ignores the password of exchange_multisig_keys: a
		// wrong one is accepted, so it is not a case here.)
		_, err := c.ExchangeMultisigKeys(ctx, peersOf(round1, 0), password)
		require.NoError(t, err)
		_, err = c.ExchangeMultisigKeys(ctx, peersOf(round1, 0), password)
		bad(t, err)
	})
	t.Run("open with wrong password", func(t *testing.T) {
		require.NoError(t, clients[1].CloseWallet(ctx))
		err := clients[1].OpenWallet(ctx, names[1], "wrong")
		bad(t, err)
	})
	t.Run("open unknown wallet", func(t *testing.T) {
		err := clients[1].OpenWallet(ctx, "no-such-wallet", password)
		bad(t, err)
	})
	t.Run("path in file name", func(t *testing.T) {
		err := clients[1].CreateWallet(ctx, "../escape", password)
		bad(t, err)
	})
}

// TestLeases checks stickiness, eviction and the measured wait.
func TestLeases(t *testing.T) {
	p, _ := startPool(t, 2)
	a := acquire(t, p, "a")
	slotA := a.Slot
	a.Release("a-state")
	a = acquire(t, p, "a")
	require.Equal(t, slotA, a.Slot, "a key gets its process back")
	require.Equal(t, "a-state", a.State, "with the state it left")
	b := acquire(t, p, "b")
	require.NotEqual(t, slotA, b.Slot)
	require.Equal(t, "", b.State)

	// Both busy: c waits until one is released, and the wait is measured.
	go func() { time.Sleep(300 * time.Millisecond); b.Release("b-state") }()
	c := acquire(t, p, "c")
	require.GreaterOrEqual(t, c.Wait, 250*time.Millisecond)
	require.Equal(t, "", c.State, "an evicted process carries no state over")
	c.Release("c-state")
	b = acquire(t, p, "b")
	require.Equal(t, "", b.State, "b's process went to c, so b starts fresh")
	b.Release("")
	a.Release("")

	owned, err := p.AcquireOwned(context.Background(), "nobody")
	require.NoError(t, err)
	require.Nil(t, owned)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	x, y := acquire(t, p, "x"), acquire(t, p, "y")
	_, err = p.Acquire(ctx, "z")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	x.Release("")
	y.Release("")
}

// TestKillDuringLease kills the leased process in the middle of a call: the
// call fails with a retryable error and the pool restarts the process.
func TestKillDuringLease(t *testing.T) {
	p, _ := startPool(t, 1)
	l := acquire(t, p, "k")
	oldPID := l.PID
	errc := make(chan error, 1)
	go func() { errc <- l.Client.CreateWallet(context.Background(), "k.wallet", password) }()
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, syscall.Kill(oldPID, syscall.SIGKILL))
	err := <-errc
	require.Error(t, err)
	require.True(t, rpcclient.IsRetryable(err), "a killed wallet-rpc is retryable: %v", err)
	l.Discard()

	testenv.WaitFor(t, 60*time.Second, "restarted wallet-rpc", func() bool {
		pids := p.PIDs()
		return p.Stats().Ready == 1 && len(pids) == 1 && pids[0] != oldPID
	})
	require.GreaterOrEqual(t, p.Stats().Restarts, uint64(1))
	l = acquire(t, p, "k")
	require.Equal(t, "", l.State, "a restarted process holds no wallet")
	_, err = l.Client.GetVersion(context.Background())
	require.NoError(t, err)
	l.Release("")
}

// TestHungProcessIsRestarted stops (SIGSTOP) an idle process: the health
// probe notices and the pool replaces it.
func TestHungProcessIsRestarted(t *testing.T) {
	p, _ := startPool(t, 1)
	old := p.PIDs()[0]
	require.NoError(t, syscall.Kill(old, syscall.SIGSTOP))
	testenv.WaitFor(t, 60*time.Second, "hung wallet-rpc replaced", func() bool {
		pids := p.PIDs()
		return p.Stats().Ready == 1 && len(pids) == 1 && pids[0] != old
	})
	require.ErrorIs(t, syscall.Kill(old, 0), syscall.ESRCH)
}

// TestExternalEndpoints leases already-running processes and starts none.
func TestExternalEndpoints(t *testing.T) {
	managed, _ := startPool(t, 1, func(c *pool.Config) { c.Login = true })
	l := acquire(t, managed, "probe")
	url := l.Client.URL()
	l.Release("")

	// Without credentials the login-protected process refuses us...
	ext, err := pool.Start(context.Background(), pool.Config{Endpoints: []pool.Endpoint{{URL: strings.TrimSuffix(url, "/json_rpc")}}})
	require.NoError(t, err)
	defer ext.Stop(context.Background())
	require.Empty(t, ext.PIDs())
	el := acquire(t, ext, "x")
	_, err = el.Client.GetVersion(context.Background())
	var httpErr *rpcclient.HTTPError
	require.ErrorAs(t, err, &httpErr)
	require.Equal(t, 401, httpErr.StatusCode)
	el.Release("")
}

// TestLoginOffCommandLine checks that a process started with Login requires
// digest auth, that the pool's own client passes it, and that the
// credentials are nowhere on the process's command line.
func TestLoginOffCommandLine(t *testing.T) {
	p, _ := startPool(t, 1, func(c *pool.Config) { c.Login = true })
	l := acquire(t, p, "probe")
	defer l.Release("")
	_, err := l.Client.GetVersion(context.Background())
	require.NoError(t, err, "the pool's client authenticates")

	resp, err := http.Post(l.Client.URL(), "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":"0","method":"get_version"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no credentials, no answer")

	pid := p.PIDs()[0]
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	require.Contains(t, args, "--config-file")
	for _, a := range args {
		require.NotContains(t, a, "rpc-login", "credentials on the command line: %q", args)
		require.NotContains(t, a, "escrowflow:", "credentials on the command line: %q", args)
	}
}

// TestParentDeathKillsChildren runs a pool in a child process, kills that
// process with SIGKILL and checks that its wallet-rpc processes die too.
func TestParentDeathKillsChildren(t *testing.T) {
	if os.Getenv("POOL_CHILD_DIR") != "" {
		runChild(t)
		return
	}
	bin := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	cmd := exec.Command(os.Args[0], "-test.run=^TestParentDeathKillsChildren$", "-test.v")
	cmd.Env = append(os.Environ(), "POOL_CHILD_DIR="+dir, "POOL_CHILD_BIN="+bin)
	require.NoError(t, cmd.Start())
	var pids []int
	testenv.WaitFor(t, 60*time.Second, "child pool ready", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		return len(pids) == 2
	})
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	for _, pid := range pids {
		pid := pid
		testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("wallet-rpc %d gone", pid), func() bool {
			return testenv.ProcessGone(pid)
		})
	}
}

func runChild(t *testing.T) {
	dir := os.Getenv("POOL_CHILD_DIR")
	p, err := pool.Start(context.Background(), pool.Config{Binary: os.Getenv("POOL_CHILD_BIN"), Size: 2, WalletDir: filepath.Join(dir, "w")})
	require.NoError(t, err)
	var b strings.Builder
	for _, pid := range p.PIDs() {
		fmt.Fprintf(&b, "%d ", pid)
	}
	b.WriteString("\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pids.tmp"), []byte(b.String()), 0o600))
	require.NoError(t, os.Rename(filepath.Join(dir, "pids.tmp"), filepath.Join(dir, "pids")))
	time.Sleep(time.Minute) // killed by the parent test long before
}

// TestStartFailsCleanly gives the pool a "wallet-rpc" that exits at once:
// Start reports it and leaves no process or restart loop behind.
func TestStartFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "crashing-wallet-rpc")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nexit 3\n"), 0o700))
	p, err := pool.Start(context.Background(), pool.Config{Binary: bin, Size: 2, WalletDir: filepath.Join(dir, "w"), StartTimeout: 10 * time.Second})
	require.Error(t, err)
	require.Contains(t, err.Error(), "exited during start")
	require.Nil(t, p)
}

// TestStartSurvivesOneEarlyExit gives the pool a wallet-rpc whose first
// process exits before it answers (as one that lost the race for its port
// does): Start waits for that slot's supervised restart instead of failing.
func TestStartSurvivesOneEarlyExit(t *testing.T) {
	real := testenv.RequireBinary(t, "monero-wallet-rpc")
	dir := t.TempDir()
	bin := filepath.Join(dir, "flaky-wallet-rpc")
	marker := filepath.Join(dir, "failed-once")
	script := fmt.Sprintf("#!/bin/sh\nif mkdir %q 2>/dev/null; then exit 3; fi\nexec %q \"$@\"\n", marker, real)
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o700))
	p, _ := startPool(t, 2, func(c *pool.Config) { c.Binary = bin })
	require.DirExists(t, marker, "one process did exit early")
	require.Equal(t, 2, p.Stats().Ready)
	require.Len(t, p.PIDs(), 2)
}

// TestTransferAndTryAcquireIdle: TryAcquireIdle only takes processes no key
// is attached to, never waits; Transfer hands a process, with what its key
// left there, to another key.
func TestTransferAndTryAcquireIdle(t *testing.T) {
	p, _ := startPool(t, 2)
	ctx := context.Background()
	a := p.TryAcquireIdle("stock/a")
	require.NotNil(t, a)
	b := p.TryAcquireIdle("stock/b")
	require.NotNil(t, b)
	require.NotEqual(t, a.Slot, b.Slot)
	require.Nil(t, p.TryAcquireIdle("stock/c"), "both busy")
	a.Release("wallet-a")
	b.Release("wallet-b")
	require.Nil(t, p.TryAcquireIdle("stock/c"), "both idle, but attached to a key")

	l, err := p.Transfer(ctx, "stock/a", "e1/buyer")
	require.NoError(t, err)
	require.NotNil(t, l)
	require.Equal(t, a.Slot, l.Slot)
	require.Equal(t, "wallet-a", l.State, "what the old key left")
	l.Release("e1-work")

	gone, err := p.AcquireOwned(ctx, "stock/a")
	require.NoError(t, err)
	require.Nil(t, gone, "the old key holds nothing now")
	none, err := p.Transfer(ctx, "stock/never", "e2/buyer")
	require.NoError(t, err)
	require.Nil(t, none)

	own, err := p.AcquireOwned(ctx, "e1/buyer")
	require.NoError(t, err)
	require.NotNil(t, own)
	require.Equal(t, a.Slot, own.Slot)
	require.Equal(t, "e1-work", own.State)
	own.Release("")
	p.Forget("e1/buyer")
	c := p.TryAcquireIdle("stock/c")
	require.NotNil(t, c, "a forgotten process is free again")
	require.Equal(t, a.Slot, c.Slot)
	c.Release("")
}

// TestChildrenDoNotInheritSecrets: the worker's secrets in its environment
// are not in a wallet-rpc process's /proc/PID/environ.
func TestChildrenDoNotInheritSecrets(t *testing.T) {
	t.Setenv("ESCROWFLOW_MASTER_SECRET", "master-secret-in-env")
	t.Setenv("ESCROWFLOW_CODEC_KEYS", "k1:0011")
	p, _ := startPool(t, 1)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PIDs()[0]))
	require.NoError(t, err)
	require.NotContains(t, string(b), "master-secret-in-env")
	require.NotContains(t, string(b), "ESCROWFLOW_")
	require.Contains(t, string(b), "PATH=", "the allow-listed variables are kept")
}

// EnvRecordRPCGolden makes TestRecordRPCGolden rewrite the rpcclient golden
// files it covers from a real wallet-rpc.
const EnvRecordRPCGolden = "ESCROWFLOW_RECORD_RPC_GOLDEN"

// goldenRecorder is an http.RoundTripper that keeps the last request and
// response of every JSON-RPC method it carries (of the methods in only, if
// only is not nil).
type goldenRecorder struct {
	only map[string]bool
	mu   sync.Mutex
	last map[string][2][]byte
}

func (g *goldenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	var m struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(body, &m) == nil && m.Method != "" && (g.only == nil || g.only[m.Method]) {
		g.mu.Lock()
		g.last[m.Method] = [2][]byte{body, out}
		g.mu.Unlock()
	}
	return resp, nil
}

// normalized returns b, a JSON-RPC message, with its id set to 0.
func normalized(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["id"] = 0
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// TestRecordRPCGolden is a recorder, not a test: with
// ESCROWFLOW_RECORD_RPC_GOLDEN=1 it runs a 2-of-3 setup on a real pool
// connected to a private regtest monerod (internal/regtest), funds the
// multisig address from the chain's faucet and spends from it, and writes
// the last request and response of every method it used to
// rpcclient/testdata/<method>.json: every call of the arbiter's wallet
// ("escrow-7f3a-arbiter", the rpcclient tests' password), and the vendor's
// transfer, which the arbiter then signs and submits. Every value in them
// (passwords, multisig messages, the transaction set) is a throwaway of
// that temp chain.
func TestRecordRPCGolden(t *testing.T) {
	if os.Getenv(EnvRecordRPCGolden) == "" {
		t.Skipf("golden-file recorder, not a test: %s=1 rewrites rpcclient/testdata from a real wallet-rpc", EnvRecordRPCGolden)
	}
	const pw, newPW = "s3cret-wallet-pw", "n3w-s3cret-pw"
	const funded, paid = 3_000_000_000_000, 1_000_000_000_000
	chain := regtest.Start(t)
	faucet := chain.Faucet(t)
	p, _ := startPool(t, 3, func(c *pool.Config) {
		c.Network, c.DaemonAddress, c.TrustedDaemon = "regtest", chain.Address, true
		c.HealthTimeout = 10 * time.Second
	})
	ctx := context.Background()
	recs := map[string]*goldenRecorder{
		"arbiter": {last: map[string][2][]byte{}},
		"vendor":  {only: map[string]bool{rpcclient.MethodTransfer: true}, last: map[string][2][]byte{}},
	}
	var clients []*rpcclient.Client
	for _, role := range []string{"buyer", "vendor", "arbiter"} {
		l := acquire(t, p, "e1/"+role)
		defer l.Release("")
		cfg := rpcclient.DefaultConfig()
		cfg.URL = l.Client.URL()
		if rec := recs[role]; rec != nil {
			cfg.HTTPClient = &http.Client{Transport: rec}
		}
		clients = append(clients, rpcclient.New(cfg))
	}
	vendor, arb := clients[1], clients[2]
	_, err := arb.GetVersion(ctx)
	require.NoError(t, err)
	names := []string{"escrow-7f3a-buyer", "escrow-7f3a-vendor", "escrow-7f3a-arbiter"}
	parallel(t, func(i int) error { return clients[i].CreateWallet(ctx, names[i], pw) })
	infos := make([]string, 3)
	parallel(t, func(i int) (err error) {
		infos[i], err = clients[i].PrepareMultisig(ctx, true)
		return err
	})
	// make_multisig, then the two key-exchange rounds of a 2-of-3 wallet.
	for round := 0; round < 3; round++ {
		next := make([]string, 3)
		parallel(t, func(i int) error {
			var r rpcclient.MultisigRound
			var err error
			if round == 0 {
				r, err = clients[i].MakeMultisig(ctx, peersOf(infos, i), 2, pw)
			} else {
				r, err = clients[i].ExchangeMultisigKeys(ctx, peersOf(infos, i), pw)
			}
			next[i] = r.MultisigInfo
			return err
		})
		infos = next
	}
	st, err := arb.IsMultisig(ctx)
	require.NoError(t, err)
	require.True(t, st.Ready, "%+v", st)
	msig, err := arb.GetAddress(ctx)
	require.NoError(t, err)

	// Fund the escrow and let the deposit unlock.
	faucet.Pay(t, msig, funded)
	chain.Mine(t, regtest.SpendableAge)
	parallel(t, func(i int) error { _, err := clients[i].Refresh(ctx, 0); return err })
	bal, err := arb.GetBalance(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(funded), bal.Balance, "%+v", bal)

	// Exchange the multisig key images, then the vendor proposes a payout
	// that the arbiter signs (2 of 3) and submits.
	parallel(t, func(i int) (err error) {
		infos[i], err = clients[i].ExportMultisigInfo(ctx)
		return err
	})
	parallel(t, func(i int) error {
		n, err := clients[i].ImportMultisigInfo(ctx, peersOf(infos, i))
		if err == nil && n == 0 {
			err = fmt.Errorf("role %d imported no outputs", i)
		}
		return err
	})
	tx, err := vendor.Transfer(ctx, rpcclient.TransferParams{Destinations: []rpcclient.Destination{{Amount: paid, Address: faucet.Address}}})
	require.NoError(t, err)
	require.NotEmpty(t, tx.MultisigTxset)
	signed, err := arb.SignMultisig(ctx, tx.MultisigTxset)
	require.NoError(t, err)
	hashes, err := arb.SubmitMultisig(ctx, signed.TxDataHex)
	require.NoError(t, err)
	require.Equal(t, signed.TxHashList, hashes)

	require.NoError(t, arb.Store(ctx))
	require.NoError(t, arb.CloseWallet(ctx))
	require.NoError(t, arb.OpenWallet(ctx, names[2], pw))
	require.NoError(t, arb.ChangeWalletPassword(ctx, pw, newPW))

	dir := filepath.Join(testenv.RepoRoot(t), "rpcclient", "testdata")
	for _, rec := range recs {
		for method, rr := range rec.last {
			b, err := json.MarshalIndent(struct {
				Request  json.RawMessage `json:"request"`
				Response json.RawMessage `json:"response"`
			}{normalized(t, rr[0]), normalized(t, rr[1])}, "", "  ")
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, method+".json"), append(b, '\n'), 0o644))
			t.Logf("recorded %s (%d bytes)", method, len(b))
		}
	}
}
