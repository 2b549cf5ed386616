package activities

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stockFixture is a fixture with a warm stock of size n over n spare fake
// processes, filled by RunStock until the test ends.
func stockFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := newFixture(t, func(c *Config) { c.Stock = n })
	f.leaser.spare = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunStock(ctx, f.acts) }()
	t.Cleanup(func() { cancel(); <-done })
	waitStock(t, f.acts, n)
	return f
}

func waitStock(t *testing.T, a *Activities, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for StockSize(a) != n {
		require.True(t, time.Now().Before(deadline), "stock of %d, want %d", StockSize(a), n)
		time.Sleep(10 * time.Millisecond)
	}
}

// stockFiles lists the files of stock wallets in dir.
func stockFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range dirNames(t, dir) {
		if first, _, _ := strings.Cut(n, "."); isStockName(first) {
			out = append(out, n)
		}
	}
	return out
}

func TestStockNames(t *testing.T) {
	n := newStockName()
	assert.True(t, isStockName(n))
	assert.NotEqual(t, n, newStockName())
	assert.Error(t, escrow.ValidateEscrowID(n), "no escrow id can be a stock name")
	assert.False(t, strings.HasPrefix(n+".keys", escrowPrefix("stock")), "no escrow's prefix matches")
	for _, s := range []string{"stock-abc", "stock-abc.buyer.work.a1", "e1.buyer.work.a1", strings.Repeat("a", 70)} {
		assert.False(t, isStockName(s), s)
	}
}

// TestStockTakeover: with a full stock, CreateWallet takes over a stock
// wallet (new password, no create_wallet), the escrow completes on it, and
// FinishEscrow removes the stock working copies but keeps the final
// snapshots, which open with the roles' passwords.
func TestStockTakeover(t *testing.T) {
	f := stockFixture(t, 3)
	require.Len(t, stockFiles(t, f.dir), 9, "three wallets of three files")
	calls := len(f.world.Calls())

	runA := runInfo{RunID: "run-A"}
	res := runProtocol(t, f, "e1", runA)
	for i, o := range res["CREATING"] {
		assert.True(t, o.Stock, roles[i])
		assert.False(t, o.Recovered, roles[i])
	}
	methods := f.world.Methods(calls)
	assert.NotContains(t, methods, "create_wallet")
	assert.NotContains(t, methods, "open_wallet", "the fast path all the way")
	assert.Equal(t, 3, countPrefix(methods, "change_wallet_password"))
	assert.Equal(t, 0, StockSize(f.acts))

	keep := finals(res)
	_, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeCompleted, Keep: keep})
	require.NoError(t, err)
	assert.Empty(t, stockFiles(t, f.dir), "stock working copies removed")
	for i, k := range keep {
		_, err := f.store.Verify(k)
		require.NoError(t, err)
		pw, err := f.acts.passwords.For("e1", roles[i])
		require.NoError(t, err)
		w := &fakeWallet{world: f.world, id: 999}
		require.NoError(t, w.OpenWallet(context.Background(), k, pw), "%s opens with the role's password", k)
		require.NoError(t, w.CloseWallet(context.Background()))
	}
}

// TestStockFailedEscrowParksItsCopy: a failed escrow that took stock
// wallets parks a copy of each under its own name.
func TestStockFailedEscrowParksItsCopy(t *testing.T) {
	f := stockFixture(t, 3)
	runA := runInfo{RunID: "run-A"}
	mustExecute(t, f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
	forRoles(t, func(i int) (StepOutput, error) {
		return execute(f.acts, runA, f.acts.CreateWallet, StepInput{EscrowID: "e1", Role: roles[i], Round: "CREATING"})
	})
	out, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeFailed, Reason: "test", ReasonType: escrow.TypeWalletRejected})
	require.NoError(t, err)
	assert.True(t, out.Parked)
	assert.Empty(t, stockFiles(t, f.dir))
	for _, role := range roles {
		_, err := f.store.Verify(workName("e1", role, "stock"))
		require.NoError(t, err, "%s's stock working copy parked", role)
	}
}

// TestStockLostProcess: a stock wallet whose process was lent to another
// key is skipped (create_wallet instead) and its files are swept once
// orphaned.
func TestStockLostProcess(t *testing.T) {
	f := stockFixture(t, 1)
	stale := stockFiles(t, f.dir)
	require.NotEmpty(t, stale)
	f.acts.stock.mu.Lock()
	key := f.acts.stock.ready[0].key
	f.acts.stock.mu.Unlock()
	f.leaser.steal(key, "other/buyer")
	calls := len(f.world.Calls())

	out := mustExecute(t, f.acts, runInfo{}, f.acts.CreateWallet, StepInput{EscrowID: "e1", Role: "buyer", Round: "CREATING"})
	assert.False(t, out.Stock)
	assert.Contains(t, f.world.Methods(calls), "create_wallet")
	assert.Equal(t, 0, StockSize(f.acts))

	f.acts.sweepStock(time.Hour)
	assert.Equal(t, stale, stockFiles(t, f.dir), "recently touched orphans stay")
	f.acts.sweepStock(0)
	assert.Empty(t, stockFiles(t, f.dir))
	_, err := f.store.Verify(out.Snapshot)
	require.NoError(t, err, "the escrow's own snapshot is untouched")
}

// TestStockSweptAtStart: RunStock first removes every stock file an earlier
// run left, and nothing else — not the files of an escrow whose id starts
// with "stock-".
func TestStockSweptAtStart(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Stock = 1 })
	old := newStockName()
	leftovers := []string{old, old + ".keys", old + ".address.txt", old + ".new", old + ".keys.new", "." + old + ".keys.123.tmp"}
	others := []string{"stock-abc.buyer.work.a1.keys", "stock-abc.claim", "e1.buyer.work.a1.keys"}
	for _, n := range append(append([]string{}, leftovers...), others...) {
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, n), []byte("x"), 0o600))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunStock(ctx, f.acts) }()
	time.Sleep(200 * time.Millisecond) // less than one tick: only the start-up sweep ran
	cancel()
	<-done
	names := dirNames(t, f.dir)
	for _, n := range leftovers {
		assert.NotContains(t, names, n)
	}
	for _, n := range others {
		assert.Contains(t, names, n)
	}
}

// TestStockFillsOnlyWhenIdle: while a wallet call runs, the filler waits.
func TestStockFillsOnlyWhenIdle(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Stock = 2 })
	f.leaser.spare = 2
	f.acts.calls <- struct{}{} // a wallet call in flight
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunStock(ctx, f.acts) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(4 * stockIdleTick)
	assert.Equal(t, 0, StockSize(f.acts), "no stock while a call runs")
	assert.NotContains(t, f.world.Methods(0), "create_wallet")
	<-f.acts.calls
	waitStock(t, f.acts, 2)
}

// TestStockFillsOnlyWithoutEscrows: while the worker holds an escrow, and
// for stockQuiet after the last one finished, the filler waits.
func TestStockFillsOnlyWithoutEscrows(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Stock = 1 })
	f.leaser.spare = 1
	runA := runInfo{RunID: "run-A"}
	mustExecute(t, f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); RunStock(ctx, f.acts) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(stockQuiet + 4*stockIdleTick)
	assert.Equal(t, 0, StockSize(f.acts), "no stock while an escrow is held")
	_, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeFailed, Reason: "test", ReasonType: escrow.TypeWalletRejected})
	require.NoError(t, err)
	finished := time.Now()
	waitStock(t, f.acts, 1)
	assert.GreaterOrEqual(t, time.Since(finished), stockQuiet, "not before the quiet period")
}
