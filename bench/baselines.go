package bench

// The two baselines: direct (the wallet-rpc rounds alone) and global-lock
// (the old design).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
)

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
