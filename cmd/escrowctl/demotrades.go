package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/escrowflow/escrowflow/internal/demo"
)

func demoTradesFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	daemon := fs.String("daemon-address", "", "the regtest monerod's RPC `host:port` (required)")
	walletRPC := fs.String("wallet-rpc", "", "`URL` of a monero-wallet-rpc on that daemon, without login, for the faucet and the parties' wallets (required)")
	prefix := fs.String("prefix", "order", "escrow id `prefix`; ids are <prefix>-<YYYYMMDD-HHMMSS>-<4 hex>-release|refund|dispute")
	amount := fs.Uint64("amount", demo.DefaultAmount, "each trade's price in `piconero`")
	poll := fs.Duration("poll", time.Second, "status poll `interval`")
	timeout := fs.Duration("timeout", 20*time.Minute, "give up waiting after this `duration`")
	external := fs.Bool("external", false, "instead, one trade whose buyer and vendor keep their own wallets (participants run here), released")
	partsDir := fs.String("participants-dir", "", "--external: `dir` of the participants' keys, passwords and wallets (required with --external)")
	partRPC := fs.String("participant-wallet-rpc", "monero-wallet-rpc", "--external: the participants' monero-wallet-rpc `binary`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("demo-trades: unexpected arguments %q", args)
		}
		if *daemon == "" || *walletRPC == "" {
			return usagef("demo-trades needs --daemon-address and --wallet-rpc")
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		t, ok := c.(demo.Trades)
		if !ok {
			return errors.New("this client cannot drive trades")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		cfg := demo.Config{Trades: t, DaemonAddress: *daemon, WalletRPC: *walletRPC,
			IDs: demo.TradeIDs(*prefix, a.now(), demo.RandomTag()), AmountAtomic: *amount, Poll: *poll,
			Progress: a.stderr, Now: a.now}
		if *external {
			if *partsDir == "" {
				return usagef("demo-trades --external needs --participants-dir")
			}
			tc, err := dialClient(ctx, a.target(), a.stderr)
			if err != nil {
				return err
			}
			defer tc.Close()
			cfg.External = &demo.External{ID: demo.ExternalID(*prefix, a.now(), demo.RandomTag()), Dir: *partsDir,
				Temporal: tc, WalletRPCBinary: *partRPC}
		}
		rep, err := demo.Run(ctx, cfg)
		if rep != nil {
			if a.json {
				if perr := printJSON(a.stdout, rep); perr != nil {
					return perr
				}
			} else if perr := demo.WriteText(a.stdout, rep); perr != nil {
				return perr
			}
		}
		return err
	}
}
