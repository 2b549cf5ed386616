package activities

// The per-round wallet protocol of a 2-of-3 escrow, written once: what each
// round calls on one role's open wallet. The activities run it under their
// leases, snapshots and retries; the bench's direct and global-lock
// baselines run the same calls without them.

import (
	"context"
	"fmt"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// Caller runs fn, one wallet call named after its wallet-rpc method. The
// activities pass one that bounds, times and logs the calls.
type Caller func(ctx context.Context, method string, fn func(ctx context.Context) error) error

// Protocol runs the setup rounds on one role's open wallet.
type Protocol struct {
	Wallet Wallet
	// Password is the wallet's password, which make_multisig and
	// exchange_multisig_keys need.
	Password string
	// Call runs each wallet call; nil runs it directly.
	Call Caller
}

func (p Protocol) call(ctx context.Context, method string, fn func(ctx context.Context) error) error {
	if p.Call == nil {
		return fn(ctx)
	}
	return p.Call(ctx, method, fn)
}

// Prepare enables experimental multisig and returns the role's first
// multisig message (prepare_multisig).
func (p Protocol) Prepare(ctx context.Context) (info string, err error) {
	err = p.call(ctx, "prepare_multisig", func(ctx context.Context) (err error) {
		info, err = p.Wallet.PrepareMultisig(ctx, true)
		return err
	})
	return info, err
}

// Reenable enables experimental multisig on a wallet just opened:
// monero-wallet-rpc does not keep the flag across close and open, and
// without it make_multisig and exchange_multisig_keys fail with -48. On a
// wallet that is already multisig, prepare_multisig sets the flag and
// answers CodeAlreadyMultisig, which is success here.
func (p Protocol) Reenable(ctx context.Context) error {
	return p.call(ctx, "prepare_multisig", func(ctx context.Context) error {
		_, err := p.Wallet.PrepareMultisig(ctx, true)
		if rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig) {
			return nil // expected on a multisig wallet; the flag is set anyway
		}
		return err
	})
}

// Make turns the wallet into a 2-of-3 multisig wallet from the two peers'
// Prepare messages (make_multisig) and returns the message of the first
// key-exchange round.
func (p Protocol) Make(ctx context.Context, peers []string) (res rpcclient.MultisigRound, err error) {
	err = p.call(ctx, "make_multisig", func(ctx context.Context) (err error) {
		res, err = p.Wallet.MakeMultisig(ctx, peers, escrow.Threshold, p.Password)
		return err
	})
	return res, err
}

// Exchange runs one key-exchange round with the two peers' previous
// messages (exchange_multisig_keys). The last round returns the multisig
// address.
func (p Protocol) Exchange(ctx context.Context, peers []string) (res rpcclient.MultisigRound, err error) {
	err = p.call(ctx, "exchange_multisig_keys", func(ctx context.Context) (err error) {
		res, err = p.Wallet.ExchangeMultisigKeys(ctx, peers, p.Password)
		return err
	})
	return res, err
}

// MultisigRound runs round, which is RoundMake, RoundExchange1 or
// RoundExchange2, with the peers' messages of the round before.
func (p Protocol) MultisigRound(ctx context.Context, round escrow.Round, peers []string) (rpcclient.MultisigRound, error) {
	switch round {
	case escrow.RoundMake:
		return p.Make(ctx, peers)
	case escrow.RoundExchange1, escrow.RoundExchange2:
		return p.Exchange(ctx, peers)
	}
	return rpcclient.MultisigRound{}, fmt.Errorf("%s is not a multisig round", round)
}

// MultisigRounds are the rounds MultisigRound runs, in order.
var MultisigRounds = []escrow.Round{escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2}

// Verify reads the wallet's multisig status (is_multisig) and, if that
// succeeded, its address (get_address). It judges neither.
func (p Protocol) Verify(ctx context.Context) (st rpcclient.MultisigStatus, addr string, err error) {
	if err = p.call(ctx, "is_multisig", func(ctx context.Context) (err error) {
		st, err = p.Wallet.IsMultisig(ctx)
		return err
	}); err != nil {
		return st, "", err
	}
	err = p.call(ctx, "get_address", func(ctx context.Context) (err error) {
		addr, err = p.Wallet.GetAddress(ctx)
		return err
	})
	return st, addr, err
}

// protocol is the protocol on r's wallet, its calls run by r.call.
func (r *run) protocol() Protocol {
	return Protocol{Wallet: r.w, Password: r.password, Call: r.call}
}
