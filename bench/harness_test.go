package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// concurrencyProbe counts escrows in flight in a fake's Wait.
type concurrencyProbe struct {
	now, peak atomic.Int32
}

func (p *concurrencyProbe) wait() {
	n := p.now.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	p.now.Add(-1)
}

func TestRunBounded(t *testing.T) {
	var probe concurrencyProbe
	var mu sync.Mutex
	var done []int
	wall, ts := runBounded(context.Background(), 7, 3, func(_ context.Context, i int) error {
		probe.wait()
		if i == 4 {
			return errors.New("boom")
		}
		return nil
	}, func(i int, _ escrowTiming) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, i)
	})
	assert.Equal(t, int32(3), probe.peak.Load())
	assert.Len(t, done, 7)
	assert.GreaterOrEqual(t, wall, 60*time.Millisecond, "7 escrows of 20 ms, 3 at a time: 3 waves")
	for i, tm := range ts {
		assert.GreaterOrEqual(t, tm.latency, 20*time.Millisecond)
		if i == 4 {
			assert.EqualError(t, tm.err, "boom")
		} else {
			assert.NoError(t, tm.err)
		}
	}

	// A cancelled run starts nothing more.
	ctx, cancel := context.WithCancel(context.Background())
	_, ts = runBounded(ctx, 5, 1, func(context.Context, int) error {
		cancel()
		return nil
	}, func(int, escrowTiming) {})
	assert.NoError(t, ts[0].err)
	for _, tm := range ts[1:] {
		assert.ErrorIs(t, tm.err, context.Canceled)
	}

	var r Run
	collect(&r, time.Second, []string{"a", "b"}, []escrowTiming{{latency: time.Second}, {err: errors.New("x")}})
	assert.Equal(t, []time.Duration{time.Second}, r.Latencies)
	assert.Equal(t, []string{"b: x"}, r.Failures)
	assert.Equal(t, time.Second, r.Wall)
}

// walletWorld holds the fake wallet files the fake wallet-rpc processes
// share (one wallet dir).
type walletWorld struct {
	mu    sync.Mutex
	files map[string]*fakeWalletFile
}

type fakeWalletFile struct {
	multisig  bool
	exchanges int
}

// fakeWallet is one fake wallet-rpc process: at most one open wallet,
// experimental multisig enabled per open (as wallet-rpc forgets it on
// close), messages checked like the real rounds need them.
type fakeWallet struct {
	world   *walletWorld
	open    string
	enabled bool
	calls   []string
	failOn  string // method that fails
}

func newFakeWallets(n int) ([]*fakeWallet, *walletWorld) {
	w := &walletWorld{files: map[string]*fakeWalletFile{}}
	out := make([]*fakeWallet, n)
	for i := range out {
		out[i] = &fakeWallet{world: w}
	}
	return out, w
}

func (f *fakeWallet) call(method string) (*fakeWalletFile, error) {
	f.calls = append(f.calls, method)
	if method == f.failOn {
		return nil, &rpcclient.RPCError{Method: method, Code: -1, Message: "injected"}
	}
	if f.open == "" {
		return nil, &rpcclient.RPCError{Method: method, Code: rpcclient.CodeNotOpen, Message: "no wallet open"}
	}
	f.world.mu.Lock()
	defer f.world.mu.Unlock()
	return f.world.files[f.open], nil
}

func (f *fakeWallet) CreateWallet(_ context.Context, name, _ string) error {
	f.calls = append(f.calls, "create "+name)
	f.world.mu.Lock()
	defer f.world.mu.Unlock()
	if f.world.files[name] != nil {
		return &rpcclient.RPCError{Code: -21, Message: "exists"}
	}
	f.world.files[name] = &fakeWalletFile{}
	f.open, f.enabled = name, false
	return nil
}

func (f *fakeWallet) OpenWallet(_ context.Context, name, _ string) error {
	f.calls = append(f.calls, "open "+name)
	f.world.mu.Lock()
	defer f.world.mu.Unlock()
	if f.world.files[name] == nil {
		return &rpcclient.RPCError{Code: -1, Message: "no such wallet"}
	}
	f.open, f.enabled = name, false
	return nil
}

func (f *fakeWallet) CloseWallet(context.Context) error {
	if _, err := f.call("close"); err != nil {
		return err
	}
	f.open = ""
	return nil
}

func (f *fakeWallet) Store(context.Context) error {
	_, err := f.call("store")
	return err
}

func (f *fakeWallet) PrepareMultisig(_ context.Context, enable bool) (string, error) {
	file, err := f.call("prepare")
	if err != nil {
		return "", err
	}
	if !enable {
		return "", errors.New("multisig disabled")
	}
	f.enabled = true
	if file.multisig {
		return "", &rpcclient.RPCError{Code: rpcclient.CodeAlreadyMultisig, Message: "already multisig"}
	}
	return "prep-" + f.open, nil
}

// checkPeers wants two messages of the round with prefix, none of them own.
func (f *fakeWallet) checkPeers(infos []string, prefix string) error {
	if !f.enabled {
		return &rpcclient.RPCError{Code: -48, Message: "multisig disabled"}
	}
	if len(infos) != 2 || infos[0] == infos[1] {
		return fmt.Errorf("want two distinct peers, got %q", infos)
	}
	for _, m := range infos {
		if !strings.HasPrefix(m, prefix) || m == prefix+f.open {
			return fmt.Errorf("bad peer message %q for %s", m, f.open)
		}
	}
	return nil
}

func (f *fakeWallet) MakeMultisig(_ context.Context, infos []string, threshold uint32, _ string) (rpcclient.MultisigRound, error) {
	file, err := f.call("make")
	if err != nil {
		return rpcclient.MultisigRound{}, err
	}
	if err := f.checkPeers(infos, "prep-"); err != nil || threshold != 2 || file.multisig {
		return rpcclient.MultisigRound{}, fmt.Errorf("make: %v", err)
	}
	file.multisig = true
	return rpcclient.MultisigRound{MultisigInfo: "kex1-" + f.open}, nil
}

func (f *fakeWallet) ExchangeMultisigKeys(_ context.Context, infos []string, _ string) (rpcclient.MultisigRound, error) {
	file, err := f.call("exchange")
	if err != nil {
		return rpcclient.MultisigRound{}, err
	}
	file.exchanges++
	if err := f.checkPeers(infos, fmt.Sprintf("kex%d-", file.exchanges)); err != nil || !file.multisig {
		return rpcclient.MultisigRound{}, fmt.Errorf("exchange: %v", err)
	}
	if file.exchanges == 2 {
		return rpcclient.MultisigRound{Address: "9multisig"}, nil
	}
	return rpcclient.MultisigRound{MultisigInfo: "kex2-" + f.open}, nil
}

func (f *fakeWallet) IsMultisig(context.Context) (rpcclient.MultisigStatus, error) {
	file, err := f.call("is_multisig")
	if err != nil {
		return rpcclient.MultisigStatus{}, err
	}
	return rpcclient.MultisigStatus{Multisig: file.multisig, Ready: file.exchanges == 2, Threshold: 2, Total: 3}, nil
}

func (f *fakeWallet) GetAddress(context.Context) (string, error) {
	file, err := f.call("get_address")
	if err != nil {
		return "", err
	}
	if file.exchanges == 2 {
		return "9multisig", nil
	}
	return "9std-" + f.open, nil
}

func TestDirectEscrowRounds(t *testing.T) {
	fakes, _ := newFakeWallets(3)
	ws := [3]benchWallet{fakes[0], fakes[1], fakes[2]}
	names := roleNames("direct-1")
	assert.Equal(t, [3]string{"direct-1.buyer", "direct-1.vendor", "direct-1.arbiter"}, names)

	require.NoError(t, directEscrow(context.Background(), ws, names, "pw"))
	for i, f := range fakes {
		assert.Equal(t, []string{"create " + names[i], "prepare", "make", "exchange", "exchange", "is_multisig", "get_address", "close"}, f.calls)
	}

	// A failed round stops the escrow and closes the wallets.
	fakes, _ = newFakeWallets(3)
	fakes[1].failOn = "make"
	ws = [3]benchWallet{fakes[0], fakes[1], fakes[2]}
	err := directEscrow(context.Background(), ws, roleNames("direct-2"), "pw")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "make_multisig: ")
	assert.Contains(t, err.Error(), "injected")
	for _, f := range fakes {
		assert.NotContains(t, f.calls, "exchange")
		assert.Equal(t, "close", f.calls[len(f.calls)-1])
	}
}

func TestGlobalLockEscrowSteps(t *testing.T) {
	fakes, world := newFakeWallets(1)
	names := roleNames("global-lock-1")
	require.NoError(t, globalLockEscrow(context.Background(), fakes[0], names, "pw"))

	var want []string
	for _, n := range names {
		want = append(want, "create "+n, "close")
	}
	for _, n := range names {
		want = append(want, "open "+n, "prepare", "close")
	}
	for _, step := range []string{"make", "exchange", "exchange"} {
		for _, n := range names {
			want = append(want, "open "+n, "prepare", step, "store", "close")
		}
	}
	for _, n := range names {
		want = append(want, "open "+n, "is_multisig", "get_address", "close")
	}
	assert.Equal(t, want, fakes[0].calls)
	assert.Len(t, world.files, 3)
	assert.Empty(t, fakes[0].open, "every wallet closed")

	// The same wallet names again: create fails, nothing else runs.
	fakes[0].calls = nil
	err := globalLockEscrow(context.Background(), fakes[0], names, "pw")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "global-lock-1.buyer: create_wallet")
	assert.Len(t, fakes[0].calls, 1)
}

func TestBenchProgressNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newProgress(&buf, func() time.Time { return at })
	assert.False(t, p.tty)
	p.note("direct: starting %d wallet-rpc processes", 3)
	p.start(Direct, 2)
	p.escrow("direct-1", 1500*time.Millisecond, nil)
	p.escrow("direct-2", 2*time.Second, errors.New("boom"))
	p.end()
	assert.Equal(t, "bench: direct: starting 3 wallet-rpc processes\n"+
		"direct      1/2  direct-1  done in 1.5s\n"+
		"direct      2/2  direct-2  FAILED after 2s: boom\n", buf.String())
}

func TestBenchProgressTerminalRedraws(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	p := &progress{w: &buf, tty: true, now: func() time.Time { return at }}
	p.start(Escrowflow, 2)
	p.escrow("a", time.Second, nil)
	p.note("hello")
	p.end()
	out := buf.String()
	assert.NotContains(t, out, "done in", "a terminal gets the bar, not lines")
	assert.Contains(t, out, "\r\x1b[Kbench: hello\n")
	assert.True(t, strings.HasSuffix(out, "\r\x1b[K"+ProgressBar(Escrowflow, 1, 0, 2, barWidth, 0)+"\n"), "%q", out)
}

func TestIsTerminal(t *testing.T) {
	assert.False(t, isTerminal(&bytes.Buffer{}))
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f))
}
