package activities

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The warm stock: wallets created ahead of demand, each kept open in an
// otherwise idle wallet-rpc process, so that an escrow's CREATING round
// takes one over (change_wallet_password to the role's password, ≈ 0.25 s)
// instead of calling create_wallet (≈ 2.2 s of CPU, most of it generating
// an RSA key wallet-rpc throws away). The stock is filled only while the
// worker holds no escrow, and has held none for stockQuiet: it moves
// create_wallet off the escrows' critical path, it does not make it
// cheaper, and under sustained load it stays empty rather than slow the
// escrows down.
//
// A stock wallet keeps its name after the takeover: wallet-rpc writes an
// open wallet under the name it was opened with, so the files cannot be
// renamed while it is open. Only the working copy carries that name; every
// snapshot is named after the escrow as usual, and recovery never uses a
// working copy. Stock names start with a 66-character first component,
// longer than any escrow id, so no escrow's "<escrowId>." prefix matches
// one: escrow clean-up and duplicate checks never see them, and stock
// clean-up never sees an escrow's files.

const (
	stockPrefix  = "stock-"
	stockKeyPart = "stock/"
	// stockOrphanAge is how long the files of a stock wallet the stock no
	// longer knows must stay unmodified before they are removed: a process
	// that still has such a wallet open stores it (and so touches it) when
	// it is next used for anything else.
	stockOrphanAge = time.Minute
	// stockIdleTick is how often the filler looks for idle time;
	// stockSweepEvery how often it looks for orphaned stock files.
	stockIdleTick = 250 * time.Millisecond
	// stockQuiet is how long the worker must have held no escrow before
	// the filler starts a wallet: the gap between two escrows of a steady
	// stream is shorter, and a 2 s create_wallet started in it would hold
	// up the next escrow.
	stockQuiet      = time.Second
	stockSweepEvery = 10 * time.Second
)

// newStockName returns "stock-" and 60 random hex digits.
func newStockName() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	return stockPrefix + hex.EncodeToString(b)
}

// isStockName reports a stock wallet name: "stock-" and a first component
// longer than any escrow id.
func isStockName(name string) bool {
	first, _, _ := strings.Cut(name, ".")
	return strings.HasPrefix(name, stockPrefix) && len(first) > 64
}

// stockWallet is one wallet of the stock: open in the process its lease
// key holds, under a password that never leaves this process's memory.
type stockWallet struct {
	key, name, password string
}

// stock is the bookkeeping of the warm stock. A stock name is known while
// it is ready or taken; the files of names it does not know are orphans.
type stock struct {
	target int
	wake   chan struct{}

	mu    sync.Mutex
	ready []stockWallet
	taken map[string]string // lease key of an escrow role → stock name it took
}

func newStock(target int) *stock {
	return &stock{target: target, wake: make(chan struct{}, 1), taken: map[string]string{}}
}

// claim moves the oldest ready wallet to key's.
func (s *stock) claim(key string) (stockWallet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) == 0 {
		return stockWallet{}, false
	}
	sw := s.ready[0]
	s.ready = s.ready[1:]
	s.taken[key] = sw.name
	return sw, true
}

func (s *stock) add(sw stockWallet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = append(s.ready, sw)
}

func (s *stock) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready)
}

// release forgets and returns the stock wallet key took, if any.
func (s *stock) release(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := s.taken[key]
	delete(s.taken, key)
	return name
}

func (s *stock) known(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sw := range s.ready {
		if sw.name == name {
			return true
		}
	}
	for _, n := range s.taken {
		if n == name {
			return true
		}
	}
	return false
}

// RunStock fills the warm stock (Config.Stock wallets) until ctx ends. It
// first removes every stock wallet a previous run of the worker left: none
// is open in a process of this run, and none holds anything an escrow
// needs (escrows recover from their snapshots). Call it once, before the
// worker takes tasks; it returns at once when the stock is off. (A
// function, not a method: every exported method of Activities is an
// activity.)
func RunStock(ctx context.Context, a *Activities) {
	if a.stock == nil {
		return
	}
	a.sweepStock(0)
	t := time.NewTicker(stockIdleTick)
	defer t.Stop()
	start, filled := time.Now(), false
	var backoff, lastSweep time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.stock.wake:
		}
		if now := time.Now(); now.Sub(lastSweep) >= stockSweepEvery {
			a.sweepStock(stockOrphanAge)
			lastSweep = now
		}
		if a.stock.size() >= a.stock.target || a.idleFor() < stockQuiet || len(a.calls) > 0 || time.Now().Before(backoff) {
			continue // full, or not idle: fill in idle time only
		}
		if err := a.addStockWallet(ctx); err != nil {
			backoff = time.Now().Add(5 * time.Second)
			continue
		}
		if !filled && a.stock.size() >= a.stock.target {
			filled = true
			a.log.Info("wallet stock filled", zap.Int("wallets", a.stock.target), zap.Int64("ms", time.Since(start).Milliseconds()))
		}
	}
}

// addStockWallet creates one stock wallet on an idle process no key holds;
// it does nothing when there is none.
func (a *Activities) addStockWallet(ctx context.Context) error {
	name := newStockName()
	key := stockKeyPart + name
	lease := a.leases.TryAcquireIdle(key)
	if lease == nil {
		return nil
	}
	pw := make([]byte, 32)
	_, _ = rand.Read(pw)
	sw := stockWallet{key: key, name: name, password: hex.EncodeToString(pw)}
	// Under the same bound as the escrows' calls, but logged as its own
	// event: "rpc call completed" belongs to an escrow role.
	select {
	case a.calls <- struct{}{}:
	case <-ctx.Done():
		lease.Release("")
		return ctx.Err()
	}
	start := time.Now()
	err := lease.Wallet().CreateWallet(ctx, sw.name, sw.password)
	<-a.calls
	d := time.Since(start)
	a.metrics.RPCCall("create_wallet", d, err)
	log := a.log.With(zap.String("stock", name[:len(stockPrefix)+8]), zap.Int64("ms", d.Milliseconds()))
	if err != nil {
		lease.Discard() // what it left is an orphan, swept later
		log.Warn("stock wallet not created", zap.Error(err))
		return err
	}
	log.Debug("stock wallet created")
	lease.Release(name)
	a.stock.add(sw)
	return nil
}

// takeStock hands the escrow role of key a stock wallet with its process:
// it returns (nil, nil, nil) when the stock is off or empty. Stock wallets
// whose process was restarted or lent to another key meanwhile are
// forgotten (their files are swept as orphans).
func (a *Activities) takeStock(ctx context.Context, key string) (Lease, *stockWallet, error) {
	if a.stock == nil {
		return nil, nil, nil
	}
	for {
		sw, ok := a.stock.claim(key)
		if !ok {
			return nil, nil, nil
		}
		select {
		case a.stock.wake <- struct{}{}:
		default:
		}
		lease, err := a.leases.Transfer(ctx, sw.key, key)
		if err != nil {
			a.stock.release(key)
			return nil, nil, err
		}
		if lease == nil || lease.State() != sw.name {
			if lease != nil {
				lease.Discard()
			}
			a.stock.release(key)
			continue
		}
		return lease, &sw, nil
	}
}

// finishStock deals with the stock wallet the escrow role of key took, if
// any, once FinishEscrow has closed the role's wallet: closed names the
// working wallet it closed ("" if none). When that was the stock wallet, a
// completed escrow's is removed and a failed one's is first copied under
// the escrow's name, so that it is parked with the escrow's other wallets.
// Otherwise it may still be open in some process and is left to the
// orphan sweep.
func (a *Activities) finishStock(key, escrowID, role string, completed bool, closed string) {
	if a.stock == nil {
		return
	}
	name := a.stock.release(key)
	if name == "" || name != closed {
		return
	}
	if !completed {
		dst := workName(escrowID, role, "stock")
		if _, err := a.store.Snapshot(name, dst); err != nil {
			a.log.Error("stock working copy not parked; the orphan sweep removes it",
				zap.String("escrow_id", escrowID), zap.String("role", role), zap.Error(err))
			return
		}
	}
	a.removeStockWallet(name)
}

func (a *Activities) removeStockWallet(name string) {
	if err := a.store.Remove(name); err != nil {
		a.log.Warn("stock wallet not removed", zap.Error(err))
	}
	if _, err := a.store.RemoveTemps(name); err != nil {
		a.log.Warn("stock wallet temp files not removed", zap.Error(err))
	}
}

// sweepStock removes the files (wallet files, wallet-rpc's ".new"
// leftovers) of stock wallets the stock does not know that were not
// modified for minAge, and walletstore temp files of stock wallets.
func (a *Activities) sweepStock(minAge time.Duration) {
	entries, err := os.ReadDir(a.store.Dir())
	if err != nil {
		a.log.Warn("stock sweep failed", zap.Error(err))
		return
	}
	now, n := time.Now(), 0
	for _, e := range entries {
		name, _, _ := strings.Cut(e.Name(), ".")
		if !e.Type().IsRegular() || !isStockName(name) || a.stock.known(name) {
			continue
		}
		if info, err := e.Info(); err != nil || now.Sub(info.ModTime()) < minAge {
			continue
		}
		if err := os.Remove(filepath.Join(a.store.Dir(), e.Name())); err != nil {
			a.log.Warn("stock file not removed", zap.Error(err))
			continue
		}
		n++
	}
	if minAge == 0 {
		if _, err := a.store.RemoveTemps(stockPrefix); err != nil {
			a.log.Warn("stock temp files not removed", zap.Error(err))
		}
	}
	if n > 0 {
		a.log.Info("orphaned stock wallet files removed", zap.Int("files", n))
	}
}
