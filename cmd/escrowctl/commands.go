package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/demo"
	"github.com/escrowflow/escrowflow/starter"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// custodyFlags adds the flags of external custody to fs; the returned
// function gives the custody fields of an input (nil maps when every role
// is hosted).
func custodyFlags(fs *flag.FlagSet) func() (map[escrow.Role]escrow.Custody, map[escrow.Role]escrow.Participant, string) {
	keys := map[escrow.Role]*string{
		escrow.Buyer:  fs.String("external-buyer", "", "the buyer keeps its own wallet: its participant's public `key` (escrowctl participant --print-key)"),
		escrow.Vendor: fs.String("external-vendor", "", "the vendor keeps its own wallet: its participant's public `key`"),
	}
	deadline := fs.String("participant-deadline", "", "how long a setup round waits for an external participant, a Go `duration` (default 10m)")
	return func() (custody map[escrow.Role]escrow.Custody, parts map[escrow.Role]escrow.Participant, _ string) {
		for _, role := range escrow.Roles {
			if k := keys[role]; k != nil && *k != "" {
				if custody == nil {
					custody, parts = map[escrow.Role]escrow.Custody{}, map[escrow.Role]escrow.Participant{}
				}
				custody[role] = escrow.CustodyExternal
				parts[role] = escrow.Participant{PublicKey: *k}
			}
		}
		return custody, parts, *deadline
	}
}

func startFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	wait := fs.Bool("wait", false, "wait for the setups to end and print their results")
	timeout := fs.Duration("timeout", 0, "with --wait, stop waiting after this `duration` (0: no limit)")
	custody := custodyFlags(fs)
	return func(ctx context.Context, ids []string) error {
		if len(ids) == 0 {
			return usagef("start: no escrow id given")
		}
		input := func(id string) escrow.SetupInput {
			in := escrow.SetupInput{EscrowID: id}
			in.Custody, in.Participants, in.ParticipantDeadline = custody()
			return in
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()

		outs := make([]demo.Outcome, len(ids))
		for i, id := range ids {
			outs[i].EscrowID = id
			run, err := c.StartSetup(ctx, input(id))
			if err != nil {
				outs[i].SetErr(err)
			} else {
				outs[i].WorkflowID, outs[i].RunID = run.WorkflowID, run.RunID
			}
		}
		if !a.json {
			printStarted(a.stdout, outs)
		}
		if *wait {
			wctx, cancel := withOptionalTimeout(ctx, *timeout)
			waitAll(wctx, c, outs)
			cancel()
			if !a.json {
				printFinished(a.stdout, outs)
			}
		}
		if a.json {
			if err := printJSON(a.stdout, outs); err != nil {
				return err
			}
		}
		return demo.CountFailed(outs)
	}
}

func withOptionalTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// waitAll waits, concurrently, for every started escrow of outs.
func waitAll(ctx context.Context, c escrows, outs []demo.Outcome) {
	var wg sync.WaitGroup
	for i := range outs {
		if outs[i].Err() != nil {
			continue
		}
		wg.Go(func() {
			res, err := c.Wait(ctx, outs[i].EscrowID)
			outs[i].SetResult(res, err)
		})
	}
	wg.Wait()
}

func printStarted(w io.Writer, outs []demo.Outcome) {
	tw := newTable(w)
	for _, o := range outs {
		if o.Err() != nil {
			fmt.Fprintf(tw, "%s\tnot started\t%v\n", o.EscrowID, o.Err())
			continue
		}
		fmt.Fprintf(tw, "%s\tstarted\tworkflow %s\trun %s\n", o.EscrowID, o.WorkflowID, o.RunID)
	}
	tw.Flush()
}

func printFinished(w io.Writer, outs []demo.Outcome) {
	tw := newTable(w)
	for _, o := range outs {
		switch {
		case o.Result != nil && *o.Confirmed:
			fmt.Fprintf(tw, "%s\t%s\t%s\n", o.EscrowID, escrow.StateCompleted, o.Result.MultisigAddress)
		case o.Result != nil:
			fmt.Fprintf(tw, "%s\t%s\t%s\tnot confirmed by every role\n", o.EscrowID, escrow.StateCompleted, o.Result.MultisigAddress)
		case o.WorkflowID != "": // started, then failed or not waited for
			fmt.Fprintf(tw, "%s\t%s\t%v\n", o.EscrowID, escrow.StateFailed, o.Err())
		}
	}
	tw.Flush()
}

// oneID returns the single escrow id of a command that takes one.
func oneID(cmd string, args []string) (string, error) {
	if len(args) != 1 {
		return "", usagef("%s: want exactly one escrow id, got %d", cmd, len(args))
	}
	return args[0], nil
}

func statusFlags(a *app, _ *flag.FlagSet) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		id, err := oneID("status", args)
		if err != nil {
			return err
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		d, err := c.Describe(ctx, id)
		if err != nil {
			return err
		}
		if a.json {
			return printJSON(a.stdout, d)
		}
		printStatus(a.stdout, d)
		return nil
	}
}

func printStatus(w io.Writer, d starter.Description) {
	tw := newTable(w)
	st, sum := d.Status, d.Summary
	fmt.Fprintf(tw, "escrow\t%s\n", sum.EscrowID)
	fmt.Fprintf(tw, "workflow\t%s\trun %s\n", sum.WorkflowID, sum.RunID)
	exec := sum.Status + "\tstarted " + sum.Start.Format(time.RFC3339)
	if !sum.Close.IsZero() {
		exec += ", closed " + sum.Close.Format(time.RFC3339) + " (" + sum.Close.Sub(sum.Start).Round(time.Millisecond).String() + ")"
	}
	fmt.Fprintf(tw, "execution\t%s\n", exec)
	fmt.Fprintf(tw, "state\t%s\n", st.State)
	for _, role := range escrow.Roles {
		if rs, ok := st.Roles[role]; ok {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", role, rs.Round, rs.Step)
		}
	}
	if st.Reason != "" || st.ReasonType != "" {
		fmt.Fprintf(tw, "reason\t%s: %s\n", st.ReasonType, st.Reason)
	}
	if !d.Queried {
		fmt.Fprintf(tw, "note\tno answer to the status query (%v); is a worker polling task queue %s? State from the %s search attribute\n",
			d.QueryError, escrow.TaskQueue, escrow.EscrowStateKey.GetName())
	}
	tw.Flush()
}

func resultFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	wait := fs.Bool("wait", false, "wait for the setup to end instead of failing while it runs")
	timeout := fs.Duration("timeout", 0, "with --wait, stop waiting after this `duration` (0: no limit)")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("result", args)
		if err != nil {
			return err
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		var res *escrow.SetupResult
		if *wait {
			wctx, cancel := withOptionalTimeout(ctx, *timeout)
			res, err = c.Wait(wctx, id)
			cancel()
		} else {
			res, err = c.Result(ctx, id)
		}
		if err != nil {
			return err
		}
		if a.json {
			if err := printJSON(a.stdout, res); err != nil {
				return err
			}
		} else {
			printResult(a.stdout, res)
		}
		if !res.Confirmed() {
			return fmt.Errorf("escrow %q: multisig address not confirmed by every role", id)
		}
		return nil
	}
}

func printResult(w io.Writer, res *escrow.SetupResult) {
	tw := newTable(w)
	fmt.Fprintf(tw, "escrow\t%s\n", res.EscrowID)
	fmt.Fprintf(tw, "multisig address\t%s\n", res.MultisigAddress)
	tw.Flush()

	fmt.Fprintln(w, "\nwallets")
	tw = newTable(w)
	fmt.Fprintln(tw, "  ROLE\tADDRESS\tCONFIRMED\tWALLET")
	for _, role := range escrow.Roles {
		wr, ok := res.Wallets[role]
		if !ok {
			fmt.Fprintf(tw, "  %s\t-\t%s\t-\n", role, demo.Mark(false))
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", role, wr.Address, demo.Mark(wr.Address != "" && wr.Address == res.MultisigAddress), wr.Wallet)
	}
	tw.Flush()

	if len(res.Rounds) == 0 {
		return
	}
	rounds := sortedRounds(res.Rounds)
	t0 := rounds[0].Started
	fmt.Fprintln(w, "\nrounds")
	tw = newTable(w)
	fmt.Fprintln(tw, "  ROUND\tROLE\tSTART\tDURATION\tATTEMPTS\tLEASE WAIT\tRPC\tRECOVERED")
	for _, r := range rounds {
		recovered := "no"
		if r.Recovered {
			recovered = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%s\t+%s\t%s\t%d\t%dms\t%dms\t%s\n", r.Round, r.Role,
			r.Started.Sub(t0).Round(time.Millisecond), r.Finished.Sub(r.Started).Round(time.Millisecond),
			r.Attempts, r.LeaseWaitMs, r.RPCMs, recovered)
	}
	tw.Flush()
}

// sortedRounds returns the timings ordered by start, then role.
func sortedRounds(in []escrow.RoundTiming) []escrow.RoundTiming {
	out := append([]escrow.RoundTiming(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return roleIndex(out[i].Role) < roleIndex(out[j].Role)
	})
	return out
}

func roleIndex(r escrow.Role) int {
	for i, role := range escrow.Roles {
		if role == r {
			return i
		}
	}
	return len(escrow.Roles)
}

func listFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	state := fs.String("state", "", "only escrows in this `state` (CREATING, …, COMPLETED, FAILED)")
	pageSize := fs.Int("page-size", starter.DefaultPageSize, "executions fetched per request")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("list: unexpected arguments %q", args)
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		list, err := c.List(ctx, escrow.State(strings.ToUpper(*state)), *pageSize)
		if err != nil {
			return err
		}
		if a.json {
			if list == nil {
				list = []starter.Summary{}
			}
			return printJSON(a.stdout, list)
		}
		tw := newTable(a.stdout)
		fmt.Fprintln(tw, "ESCROW\tSTATE\tSTATUS\tSTARTED\tDURATION")
		for _, s := range list {
			dur := "-"
			if !s.Close.IsZero() {
				dur = s.Close.Sub(s.Start).Round(time.Millisecond).String()
			}
			st := string(s.State)
			if st == "" {
				st = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.EscrowID, st, s.Status, s.Start.Local().Format(time.DateTime), dur)
		}
		return tw.Flush()
	}
}
