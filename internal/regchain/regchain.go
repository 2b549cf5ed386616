// Package regchain is what code does on a regtest Monero chain once its
// processes run: mine blocks, pay from a wallet that mined its own coins
// (a faucet), and read what a wallet received. internal/regtest (which
// starts monerod and wallet-rpc for tests) and internal/demo (make demo's
// money part) both use it.
package regchain

import (
	"context"
	"errors"
	"fmt"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// CoinbaseUnlock is how many blocks a mined output stays locked;
// SpendableAge is the same for an ordinary output.
const (
	CoinbaseUnlock = 60
	SpendableAge   = 10
)

// Mine mines n blocks to address (regtest's fixed difficulty 1:
// milliseconds).
func Mine(ctx context.Context, d *rpcclient.Daemon, n uint64, address string) error {
	if _, err := d.GenerateBlocks(ctx, n, address); err != nil {
		return fmt.Errorf("generateblocks %d: %w", n, err)
	}
	return nil
}

// Pay sends amount from the open wallet w to address and returns the txid
// and its tx key (what a buyer announces). When w's unlocked outputs are
// all pending, it calls mine(SpendableAge) and tries again (three times at
// most).
func Pay(ctx context.Context, w *rpcclient.Client, address string, amount uint64, mine func(n uint64) error) (txid, txKey string, err error) {
	for try := 0; ; try++ {
		if _, err := w.Refresh(ctx, 0); err != nil {
			return "", "", fmt.Errorf("refresh: %w", err)
		}
		r, err := w.Transfer(ctx, rpcclient.TransferParams{
			Destinations: []rpcclient.Destination{{Amount: amount, Address: address}}, GetTxKey: true})
		if err == nil {
			return r.TxHash, r.TxKey, nil
		}
		var rpcErr *rpcclient.RPCError
		if try == 3 || !errors.As(err, &rpcErr) {
			return "", "", fmt.Errorf("transfer: %w", err)
		}
		if err := mine(SpendableAge); err != nil {
			return "", "", err
		}
	}
}

// Incoming refreshes the open wallet w and returns its incoming transfers.
func Incoming(ctx context.Context, w *rpcclient.Client) ([]rpcclient.Transfer, error) {
	if _, err := w.Refresh(ctx, 0); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	tr, err := w.GetTransfers(ctx, rpcclient.GetTransfersParams{In: true})
	if err != nil {
		return nil, err
	}
	return tr.In, nil
}
