package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/demo"
)

// tradeSubs are the subcommands of `escrowctl trade`.
var tradeSubs = []string{"start", "deposit", "release", "refund", "dispute", "resolve", "status", "wait"}

const tradeHelp = `Subcommands (start prints the run; the others print the trade's status):
  start ID --amount N --vendor ADDR --buyer-refund ADDR [--deposit-timeout 72h] [--confirmations 10] [--scan-interval 10m]
        [--external-buyer KEY] [--external-vendor KEY] [--participant-deadline 10m] [--payout-deadline 24h]
        (an external role signs with its own wallet: escrowctl participant --trade)
  deposit ID --txid TXID --tx-key KEY   announce the buyer's payment
  release ID                            the buyer pays the vendor
  refund ID                             the vendor pays the buyer back
  dispute ID --by buyer|vendor [--reason TEXT]
  resolve ID --vendor-share-bps 0..10000   the arbiter's split of a dispute
  status ID                             the trade's status query
  wait ID                               wait for the trade's end and print its final status
`

func tradeFlags(a *app, fs *flag.FlagSet) func(ctx context.Context, args []string) error {
	var (
		in     escrow.TradeInput
		ann    escrow.DepositAnnouncement
		by     string
		reason string
		share  int
	)
	fs.Uint64Var(&in.AmountAtomic, "amount", 0, "start: the price in `piconero`")
	fs.StringVar(&in.VendorAddress, "vendor", "", "start: the vendor's `address`")
	fs.StringVar(&in.BuyerRefundAddress, "buyer-refund", "", "start: the buyer's refund `address`")
	fs.StringVar(&in.DepositTimeout, "deposit-timeout", "", "start: how long to wait for the deposit (Go `duration`, default 72h)")
	fs.Uint64Var(&in.Confirmations, "confirmations", 0, "start: confirmations the deposit and the payout need (default 10)")
	fs.StringVar(&in.ScanInterval, "scan-interval", "", "start: how often to scan for an unannounced deposit (Go `duration`, default 10m)")
	fs.StringVar(&in.PayoutDeadline, "payout-deadline", "", "start: how long a payout step waits for an external signer (Go `duration`, default 24h)")
	custody := custodyFlags(fs)
	fs.StringVar(&ann.TxID, "txid", "", "deposit: the payment's transaction `id`")
	fs.StringVar(&ann.TxKey, "tx-key", "", "deposit: the payment's tx `key` (the buyer wallet's get_tx_key)")
	fs.StringVar(&by, "by", "", "dispute: who opens it (`role`: buyer or vendor)")
	fs.StringVar(&reason, "reason", "", "dispute: why (`text`)")
	fs.IntVar(&share, "vendor-share-bps", 0, "resolve (required): the vendor's share in `basis points`, 0..10000")
	return func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return usagef("trade needs a subcommand and an escrow id: escrowctl trade %s ID", strings.Join(tradeSubs, "|"))
		}
		sub, id := args[0], args[1]
		shareSet := false
		fs.Visit(func(f *flag.Flag) { shareSet = shareSet || f.Name == "vendor-share-bps" })
		if sub == "resolve" && !shareSet {
			return usagef("trade resolve needs --vendor-share-bps")
		}
		if !slices.Contains(tradeSubs, sub) {
			return usagef("unknown trade subcommand %q: want one of %s", sub, strings.Join(tradeSubs, ", "))
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
		var st escrow.TradeStatus
		switch sub {
		case "start":
			in.EscrowID = id
			in.Custody, in.Participants, in.ParticipantDeadline = custody()
			run, err := t.StartTrade(ctx, in)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, run)
			}
			fmt.Fprintf(a.stdout, "started trade %s (workflow %s, run %s)\n", id, run.WorkflowID, run.RunID)
			return nil
		case "deposit":
			st, err = t.AnnounceDeposit(ctx, id, ann)
		case "release":
			st, err = t.Release(ctx, id)
		case "refund":
			st, err = t.Refund(ctx, id)
		case "dispute":
			st, err = t.Dispute(ctx, id, by, reason)
		case "resolve":
			st, err = t.Resolve(ctx, id, share)
		case "status":
			st, err = t.TradeStatus(ctx, id)
		case "wait":
			var res *escrow.TradeStatus
			if res, err = t.WaitTrade(ctx, id); res != nil {
				st = *res
			}
		}
		if err != nil {
			return err
		}
		return a.printTrade(st)
	}
}

// printTrade prints a trade's status.
func (a *app) printTrade(st escrow.TradeStatus) error {
	if a.json {
		return printJSON(a.stdout, st)
	}
	w := newTable(a.stdout)
	fmt.Fprintf(w, "trade\t%s\n", st.EscrowID)
	fmt.Fprintf(w, "state\t%s\n", st.State)
	if st.MultisigAddress != "" {
		fmt.Fprintf(w, "multisig address\t%s\n", st.MultisigAddress)
	}
	d := st.Deposit
	fmt.Fprintf(w, "deposit\t%d piconero, %d confirmations, txids %s\n", d.ReceivedAtomic, d.Confirmations, strings.Join(d.TxIDs, ","))
	if st.Dispute != "" {
		fmt.Fprintf(w, "dispute\t%s\n", st.Dispute)
	}
	if p := st.Payout; p.Kind != "" {
		fmt.Fprintf(w, "payout\t%s, tx %s, fee %d, %d confirmations\n", p.Kind, p.TxHash, p.FeeAtomic, p.Confirmations)
		for _, o := range p.Outputs {
			fmt.Fprintf(w, "  to\t%s: %d piconero\n", o.Address, o.AmountAtomic)
		}
	}
	if st.ReasonType != "" {
		fmt.Fprintf(w, "reason\t%s: %s\n", st.ReasonType, st.Reason)
	}
	return w.Flush()
}
