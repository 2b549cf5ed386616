package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/participant"
)

// participantFlags is `escrowctl participant`: take part in an escrow's
// setup as its external buyer or vendor (package participant) and, with
// --trade, in its trade's payout; or, with
// --print-key, print the participant's public key for the escrow's input.
func participantFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	var cfg participant.Config
	var printKey bool
	fs.StringVar(&cfg.EscrowID, "escrow", "", "escrow `id`")
	fs.StringVar(&cfg.Role, "role", "", "`role`: buyer or vendor")
	fs.StringVar(&cfg.Dir, "dir", "", "the participant's own `dir`: key, wallet password, state and wallet files (back it up)")
	fs.StringVar(&cfg.WalletRPCBinary, "wallet-rpc", "monero-wallet-rpc", "monero-wallet-rpc `binary`")
	fs.StringVar(&cfg.Network, "network", "testnet", "Monero `network`: testnet, stagenet or mainnet (also for regtest)")
	fs.StringVar(&cfg.DaemonAddress, "daemon-address", "", "monerod `host:port` (empty: offline, enough for the setup)")
	var follow bool
	var terms escrow.PayoutTerms
	fs.BoolVar(&follow, "trade", false, "after the setup, follow the escrow's trade and create or co-sign its payout "+
		"(needs --daemon-address and the terms: --amount, --vendor, --buyer-refund)")
	fs.Uint64Var(&terms.AmountAtomic, "amount", 0, "--trade: the price this participant agreed to, in `piconero`")
	fs.StringVar(&terms.VendorAddress, "vendor", "", "--trade: the vendor's `address` this participant agreed to")
	fs.StringVar(&terms.BuyerRefundAddress, "buyer-refund", "", "--trade: the buyer's refund `address` this participant agreed to")
	fs.BoolVar(&printKey, "print-key", false, "print the participant's public key (creating it in --dir) and exit")
	fs.Func("peer-key", "`role=key`: the other participant's public key; its messages must carry its signature (repeatable)", func(v string) error {
		role, key, ok := strings.Cut(v, "=")
		if !ok || (role != "buyer" && role != "vendor") {
			return fmt.Errorf("want buyer=KEY or vendor=KEY, got %q", v)
		}
		if cfg.PeerKeys == nil {
			cfg.PeerKeys = map[string]string{}
		}
		cfg.PeerKeys[role] = key
		return nil
	})
	return func(ctx context.Context, args []string) error {
		if cfg.Dir == "" {
			return usagef("participant: --dir is required")
		}
		if printKey {
			pub, err := participant.PublicKey(cfg.Dir)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]string{"publicKey": pub})
			}
			fmt.Fprintln(a.stdout, pub)
			return nil
		}
		if cfg.EscrowID == "" || cfg.Role == "" || len(args) > 0 {
			return usagef("participant: want --escrow ID --role buyer|vendor --dir DIR")
		}
		c, err := dialClient(ctx, a.target(), a.stderr)
		if err != nil {
			return err
		}
		defer c.Close()
		cfg.Temporal = c
		logCfg := zap.NewProductionConfig()
		logCfg.Encoding, logCfg.OutputPaths, logCfg.ErrorOutputPaths = "console", []string{"stderr"}, []string{"stderr"}
		log, err := logCfg.Build()
		if err != nil {
			return err
		}
		defer log.Sync() //nolint:errcheck // stderr
		cfg.Logger = log
		if follow && (cfg.DaemonAddress == "" || terms.AmountAtomic == 0 || terms.VendorAddress == "" || terms.BuyerRefundAddress == "") {
			return usagef("participant --trade needs --daemon-address, --amount, --vendor and --buyer-refund")
		}
		res, err := participant.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if !follow {
			if a.json {
				return printJSON(a.stdout, res)
			}
			fmt.Fprintf(a.stdout, "multisig address %s\nwallet %s (password in %s)\n", res.Address, res.Wallet, participant.PasswordFile)
			return nil
		}
		st, err := participant.Trade(ctx, participant.TradeConfig{Config: cfg, Terms: terms})
		if err != nil {
			return err
		}
		if a.json {
			return printJSON(a.stdout, st)
		}
		fmt.Fprintf(a.stdout, "trade %s %s: payout %s\n", st.EscrowID, st.State, st.Payout.TxHash)
		return nil
	}
}
