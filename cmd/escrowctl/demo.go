package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/starter"
)

// demoStatusTimeout bounds one status poll of the demo.
const demoStatusTimeout = 5 * time.Second

func demoFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	count := fs.Int("count", 3, "number of escrows to set up at once (1-100)")
	prefix := fs.String("prefix", "demo", "escrow id `prefix`; ids are <prefix>-<YYYYMMDD-HHMMSS>-<4 hex>-<n>")
	poll := fs.Duration("poll", 500*time.Millisecond, "status poll `interval`")
	width := fs.Int("width", 60, "timeline width in `columns`")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up waiting after this `duration`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("demo: unexpected arguments %q", args)
		}
		if *count < 1 || *count > 100 {
			return usagef("demo: --count must be 1-100, got %d", *count)
		}
		if *poll <= 0 || *width < 10 {
			return usagef("demo: --poll must be positive and --width at least 10")
		}
		ids, err := demoIDs(*prefix, *count, a.now(), randomTag())
		if err != nil {
			return usagef("demo: %v", err)
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		d := &demo{app: a, c: c, ids: ids, poll: *poll, width: *width}
		return d.run(ctx)
	}
}

// randomTag returns 4 random hex digits that keep two demos started in the
// same second apart.
func randomTag() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// demoIDs returns count escrow ids <prefix>-<YYYYMMDD-HHMMSS>-<tag>-<n>.
func demoIDs(prefix string, count int, now time.Time, tag string) ([]string, error) {
	ids := make([]string, count)
	stamp := now.UTC().Format("20060102-150405")
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%s-%s-%d", prefix, stamp, tag, i+1)
		if err := escrow.ValidateEscrowID(ids[i]); err != nil {
			return nil, fmt.Errorf("prefix %q gives an invalid escrow id: %w", prefix, err)
		}
	}
	return ids, nil
}

// demo is one run of the demo command.
type demo struct {
	*app
	c     escrows
	ids   []string
	poll  time.Duration
	width int

	began time.Time
	outs  []outcome
	walls []time.Duration // measured by escrowctl: Start call to result
}

// demoReport is the demo's JSON output.
type demoReport struct {
	Escrows []outcome `json:"escrows"`
	// WallMs is each escrow's time from its first round's start to its last
	// round's finish, in the order of Escrows (0 without timings).
	WallMs []int64 `json:"wallMs"`
	// BatchWallMs is the earliest round start to the latest round finish.
	BatchWallMs int64 `json:"batchWallMs"`
	// MeasuredMs is escrowctl's own clock from the first start to the last
	// result.
	MeasuredMs int64 `json:"measuredMs"`
	// Overlap reports whether all escrows were running at one moment.
	Overlap bool `json:"overlap"`
}

func (d *demo) run(ctx context.Context) error {
	d.began = d.now()
	d.outs = make([]outcome, len(d.ids))
	d.walls = make([]time.Duration, len(d.ids))

	// Start them all at once.
	var wg sync.WaitGroup
	for i, id := range d.ids {
		d.outs[i].EscrowID = id
		wg.Go(func() {
			run, err := d.c.Start(ctx, id)
			if err != nil {
				d.outs[i].setErr(err)
				return
			}
			d.outs[i].WorkflowID, d.outs[i].RunID = run.WorkflowID, run.RunID
		})
	}
	wg.Wait()
	for _, o := range d.outs {
		if o.err != nil {
			d.progress("%s  not started: %v", o.EscrowID, o.err)
			continue
		}
		d.progress("%s  started  run %s", o.EscrowID, o.RunID)
	}

	if err := d.follow(ctx); err != nil {
		return err
	}
	measured := d.now().Sub(d.began)

	tl := d.timeline()
	if d.json {
		rep := demoReport{Escrows: d.outs, WallMs: make([]int64, len(d.outs)),
			BatchWallMs: tl.Batch.Duration().Milliseconds(), MeasuredMs: measured.Milliseconds(), Overlap: tl.Overlap}
		for i, o := range d.outs {
			if o.Result != nil {
				if s, ok := instrument.EscrowSpan(instrument.RoundSpans(o.Result.Rounds)); ok {
					rep.WallMs[i] = s.Duration().Milliseconds()
				}
			}
		}
		if err := printJSON(d.stdout, rep); err != nil {
			return err
		}
	} else {
		d.report(d.stdout, tl, measured)
	}
	return countFailed(d.outs)
}

// progress prints a progress line to stderr.
func (d *demo) progress(format string, args ...any) {
	fmt.Fprintf(d.stderr, "%8s  %s\n", "+"+d.now().Sub(d.began).Round(100*time.Millisecond).String(), fmt.Sprintf(format, args...))
}

// follow waits for every started escrow, polling their states meanwhile
// and printing each change.
func (d *demo) follow(ctx context.Context) error {
	type done struct {
		i   int
		res *escrow.SetupResult
		err error
	}
	results := make(chan done, len(d.ids))
	pending := map[int]bool{}
	last := make([]escrow.State, len(d.ids))
	for i := range d.outs {
		if d.outs[i].err != nil {
			continue
		}
		pending[i] = true
		go func() {
			res, err := d.c.Wait(ctx, d.outs[i].EscrowID)
			results <- done{i: i, res: res, err: err}
		}()
	}

	ticker := time.NewTicker(d.poll)
	defer ticker.Stop()
	// pollAll asks every pending escrow for its status at once and prints
	// the changes, in escrow order. A failed poll is skipped: Wait has the
	// last word.
	pollAll := func() {
		states := make([]escrow.State, len(d.ids))
		var wg sync.WaitGroup
		for i := range d.ids {
			if !pending[i] {
				continue
			}
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, demoStatusTimeout)
				defer cancel()
				if st, err := d.c.Status(pctx, d.ids[i]); err == nil {
					states[i] = st.State
				}
			})
		}
		wg.Wait()
		for i, st := range states {
			if st != "" && st != last[i] && st != escrow.StateCompleted && st != escrow.StateFailed {
				last[i] = st
				d.progress("%s  %s", d.ids[i], st)
			}
		}
	}
	pollAll()
	for len(pending) > 0 {
		select {
		case r := <-results:
			delete(pending, r.i)
			d.walls[r.i] = d.now().Sub(d.began)
			d.outs[r.i].setResult(r.res, r.err)
			if r.err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("stopped waiting (%w); the escrows keep running in Temporal", context.Cause(ctx))
				}
				var failed *starter.EscrowFailedError
				if errors.As(r.err, &failed) {
					d.progress("%s  %s (%s)", d.ids[r.i], escrow.StateFailed, failed.Type)
				} else {
					d.progress("%s  error: %v", d.ids[r.i], r.err)
				}
				continue
			}
			d.progress("%s  %s", d.ids[r.i], escrow.StateCompleted)
		case <-ticker.C:
			pollAll()
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (%w); the escrows keep running in Temporal", context.Cause(ctx))
		}
	}
	return nil
}

// timeline renders the completed escrows' rounds.
func (d *demo) timeline() instrument.Timeline {
	in := make([]instrument.EscrowRounds, 0, len(d.outs))
	for _, o := range d.outs {
		er := instrument.EscrowRounds{EscrowID: o.EscrowID}
		if o.Result != nil {
			er.Rounds = o.Result.Rounds
		}
		in = append(in, er)
	}
	return instrument.RenderTimeline(in, d.width)
}

// report prints each escrow's outcome, the timeline, and the verdict.
func (d *demo) report(w io.Writer, tl instrument.Timeline, measured time.Duration) {
	fmt.Fprintln(w)
	for i, o := range d.outs {
		if o.Result == nil {
			fmt.Fprintf(w, "%s  %s  %v\n\n", o.EscrowID, escrow.StateFailed, o.err)
			continue
		}
		res := o.Result
		verdict := "all roles confirm the address"
		if !*o.Confirmed {
			verdict = "NOT confirmed by every role"
		}
		fmt.Fprintf(w, "%s  %s  %s (result after %s)\n", o.EscrowID, escrow.StateCompleted, verdict, instrument.Wall(d.walls[i]))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  multisig\t%s\n", res.MultisigAddress)
		for _, role := range escrow.Roles {
			addr := res.Wallets[role].Address
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", role, orDash(addr), mark(addr != "" && addr == res.MultisigAddress))
		}
		tw.Flush()
		fmt.Fprintf(w, "  %s\n\n", roundStats(res.Rounds))
	}
	for _, l := range tl.Lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "measured by escrowctl: %s from the first start to the last result\n", instrument.Wall(measured))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// roundStats summarizes the lease waits and retries of an escrow's rounds.
func roundStats(rounds []escrow.RoundTiming) string {
	var maxWait, totalWait int64
	var retried, recovered int
	for _, r := range rounds {
		maxWait = max(maxWait, r.LeaseWaitMs)
		totalWait += r.LeaseWaitMs
		if r.Attempts > 1 {
			retried++
		}
		if r.Recovered {
			recovered++
		}
	}
	return fmt.Sprintf("lease wait max %dms, total %dms; %d of %d role steps retried, %d recovered from a snapshot",
		maxWait, totalWait, retried, len(rounds), recovered)
}
