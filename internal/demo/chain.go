package demo

import (
	"context"
	"fmt"

	"github.com/escrowflow/escrowflow/internal/regchain"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// Chain facts of a regtest monerod.
const (
	// CoinbaseUnlock is how many blocks a mined output stays locked.
	CoinbaseUnlock = regchain.CoinbaseUnlock
	// SpendableAge is how many blocks an ordinary output stays locked.
	SpendableAge = regchain.SpendableAge
)

// FaucetWallet is the file name of the faucet's wallet in the demo's
// wallet-rpc (empty password: regtest coins are worth nothing).
const FaucetWallet = "faucet"

// chain is the demo's regtest daemon and its one wallet-rpc, which holds
// the faucet and the parties' own wallets, one open at a time.
type chain struct {
	daemon  *rpcclient.Daemon
	wallets *rpcclient.Client
	faucet  string // the faucet's address: mined blocks go there
}

// mine mines n blocks to the faucet (fixed difficulty 1: milliseconds).
func (c *chain) mine(ctx context.Context, n uint64) error {
	if n == 0 {
		return nil
	}
	return regchain.Mine(ctx, c.daemon, n, c.faucet)
}

// openOrCreate opens the wallet name in the demo's wallet-rpc, creating it
// when it does not exist yet, and returns its address.
func (c *chain) openOrCreate(ctx context.Context, name string) (string, error) {
	if err := c.wallets.OpenWallet(ctx, name, ""); err != nil {
		if cerr := c.wallets.CreateWallet(ctx, name, ""); cerr != nil {
			return "", fmt.Errorf("open wallet %s: %w; create: %w", name, err, cerr)
		}
	}
	addr, err := c.wallets.GetAddress(ctx)
	if err != nil {
		return "", fmt.Errorf("wallet %s: %w", name, err)
	}
	return addr, nil
}

// newWallet creates the wallet name (closed again) and returns its address.
func (c *chain) newWallet(ctx context.Context, name string) (string, error) {
	if err := c.wallets.CreateWallet(ctx, name, ""); err != nil {
		return "", fmt.Errorf("create wallet %s: %w", name, err)
	}
	addr, err := c.wallets.GetAddress(ctx)
	if err == nil {
		err = c.wallets.CloseWallet(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("wallet %s: %w", name, err)
	}
	return addr, nil
}

// openFaucet opens (or creates) the faucet and makes sure it can pay need
// piconero: a faucet short of unlocked coins mines CoinbaseUnlock+10
// blocks to itself, so at least ten coinbase outputs unlock.
func (c *chain) openFaucet(ctx context.Context, need uint64) (mined uint64, err error) {
	if c.faucet, err = c.openOrCreate(ctx, FaucetWallet); err != nil {
		return 0, err
	}
	if _, err := c.wallets.Refresh(ctx, 0); err != nil {
		return 0, fmt.Errorf("refresh faucet: %w", err)
	}
	bal, err := c.wallets.GetBalance(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("faucet balance: %w", err)
	}
	if bal.UnlockedBalance >= need {
		return 0, nil
	}
	mined = CoinbaseUnlock + 10
	return mined, c.mine(ctx, mined)
}

// pay sends amount from the open faucet to address and returns the txid
// and its tx key. When the faucet's unlocked outputs are all pending, it
// mines SpendableAge blocks and tries again (three times at most).
func (c *chain) pay(ctx context.Context, address string, amount uint64) (txid, txKey string, err error) {
	txid, txKey, err = regchain.Pay(ctx, c.wallets, address, amount, func(n uint64) error { return c.mine(ctx, n) })
	if err != nil {
		return "", "", fmt.Errorf("faucet: %w", err)
	}
	return txid, txKey, nil
}

// receivedBy opens the wallet name, refreshes it and returns what its
// incoming transfers of transaction txid add up to.
func (c *chain) receivedBy(ctx context.Context, name, txid string) (uint64, error) {
	if err := c.wallets.OpenWallet(ctx, name, ""); err != nil {
		return 0, fmt.Errorf("open wallet %s: %w", name, err)
	}
	defer func() { _ = c.wallets.CloseWallet(context.WithoutCancel(ctx)) }()
	in, err := regchain.Incoming(ctx, c.wallets)
	if err != nil {
		return 0, fmt.Errorf("wallet %s: %w", name, err)
	}
	return sumOf(in, txid), nil
}

// sumOf adds up the amounts of transfers of transaction txid.
func sumOf(in []rpcclient.Transfer, txid string) uint64 {
	var sum uint64
	for _, t := range in {
		if t.TxID == txid {
			sum += t.Amount
		}
	}
	return sum
}
