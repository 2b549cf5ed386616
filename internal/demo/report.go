package demo

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText prints the report: per trade its payout tx hash and fee, and
// per recipient what the payout says and what its own wallet received.
func WriteText(w io.Writer, rep *Report) error {
	fmt.Fprintln(w)
	for _, t := range rep.Trades {
		fmt.Fprintf(w, "%s  %s  %s\n", t.EscrowID, t.State, t.Decision)
		if t.Error != "" {
			fmt.Fprintf(w, "  error: %s\n\n", t.Error)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  deposit tx\t%s\n", t.DepositTxID)
		fmt.Fprintf(tw, "  payout tx\t%s\n", t.PayoutTxHash)
		fmt.Fprintf(tw, "  fee\t%s\n", xmr(t.FeeAtomic))
		for _, r := range t.Recipients {
			verdict := "✓ as the payout says"
			if r.ReceivedAtomic != r.ExpectedAtomic {
				verdict = "✗ the payout says " + xmr(r.ExpectedAtomic)
			}
			fmt.Fprintf(tw, "  %s's own wallet\t%s…\treceived %s\t%s\n", r.Role, short(r.Address), xmr(r.ReceivedAtomic), verdict)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintf(w, "measured by escrowctl: %s from the trades' start to the last wallet read\n",
		(time.Duration(rep.MeasuredMs) * time.Millisecond).Round(100*time.Millisecond))
	return err
}
