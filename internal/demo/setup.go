package demo

// The setup part of make demo: escrowctl's demo command sets up several
// escrows at once and shows how they overlapped.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/starter"
)

// statusTimeout bounds one status poll of the demo.
const statusTimeout = 5 * time.Second

// RandomTag returns 4 random hex digits that keep two demos started in the
// same second apart.
func RandomTag() string {
	b := make([]byte, 2)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// SetupIDs returns count escrow ids <prefix>-<YYYYMMDD-HHMMSS>-<tag>-<n>.
func SetupIDs(prefix string, count int, now time.Time, tag string) ([]string, error) {
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

// SetupDemo is one run of escrowctl's demo: several escrow setups started
// at once, followed to their ends, and how they overlapped.
type SetupDemo struct {
	Setups Setups
	IDs    []string
	// Poll is the status poll interval; Width the timeline's columns.
	Poll  time.Duration
	Width int
	// Progress receives timestamped progress lines.
	Progress io.Writer
	Now      func() time.Time

	began    time.Time
	outs     []Outcome
	walls    []time.Duration // measured by escrowctl: Start call to result
	measured time.Duration
}

// Setups is what the setup demo uses of *starter.Client.
type Setups interface {
	Start(ctx context.Context, escrowID string) (starter.Run, error)
	Status(ctx context.Context, escrowID string) (escrow.Status, error)
	Wait(ctx context.Context, escrowID string) (*escrow.SetupResult, error)
}

// SetupReport is the demo's JSON output.
type SetupReport struct {
	Escrows []Outcome `json:"escrows"`
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

// Run starts the escrows at once and follows them to their ends; Report,
// WriteText and Err tell the outcome.
func (d *SetupDemo) Run(ctx context.Context) error {
	d.began = d.Now()
	d.outs = make([]Outcome, len(d.IDs))
	d.walls = make([]time.Duration, len(d.IDs))

	// Start them all at once.
	var wg sync.WaitGroup
	for i, id := range d.IDs {
		d.outs[i].EscrowID = id
		wg.Go(func() {
			run, err := d.Setups.Start(ctx, id)
			if err != nil {
				d.outs[i].SetErr(err)
				return
			}
			d.outs[i].WorkflowID, d.outs[i].RunID = run.WorkflowID, run.RunID
		})
	}
	wg.Wait()
	for _, o := range d.outs {
		if o.Err() != nil {
			d.progress("%s  not started: %v", o.EscrowID, o.Err())
			continue
		}
		d.progress("%s  started  run %s", o.EscrowID, o.RunID)
	}

	if err := d.follow(ctx); err != nil {
		return err
	}
	d.measured = d.Now().Sub(d.began)
	return nil
}

// Report is the demo's outcome as its JSON output shows it.
func (d *SetupDemo) Report() SetupReport {
	tl := d.timeline()
	rep := SetupReport{Escrows: d.outs, WallMs: make([]int64, len(d.outs)),
		BatchWallMs: tl.Batch.Duration().Milliseconds(), MeasuredMs: d.measured.Milliseconds(), Overlap: tl.Overlap}
	for i, o := range d.outs {
		if o.Result != nil {
			if s, ok := instrument.EscrowSpan(instrument.RoundSpans(o.Result.Rounds)); ok {
				rep.WallMs[i] = s.Duration().Milliseconds()
			}
		}
	}
	return rep
}

// Err names how many escrows failed or are not confirmed (nil: none).
func (d *SetupDemo) Err() error { return CountFailed(d.outs) }

// progress prints a progress line to stderr.
func (d *SetupDemo) progress(format string, args ...any) {
	fmt.Fprintf(d.Progress, "%8s  %s\n", "+"+d.Now().Sub(d.began).Round(100*time.Millisecond).String(), fmt.Sprintf(format, args...))
}

// follow waits for every started escrow, polling their states meanwhile
// and printing each change.
func (d *SetupDemo) follow(ctx context.Context) error {
	type done struct {
		i   int
		res *escrow.SetupResult
		err error
	}
	results := make(chan done, len(d.IDs))
	pending := map[int]bool{}
	last := make([]escrow.State, len(d.IDs))
	for i := range d.outs {
		if d.outs[i].Err() != nil {
			continue
		}
		pending[i] = true
		go func() {
			res, err := d.Setups.Wait(ctx, d.outs[i].EscrowID)
			results <- done{i: i, res: res, err: err}
		}()
	}

	ticker := time.NewTicker(d.Poll)
	defer ticker.Stop()
	// pollAll asks every pending escrow for its status at once and prints
	// the changes, in escrow order. A failed poll is skipped: Wait has the
	// last word.
	pollAll := func() {
		states := make([]escrow.State, len(d.IDs))
		var wg sync.WaitGroup
		for i := range d.IDs {
			if !pending[i] {
				continue
			}
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, statusTimeout)
				defer cancel()
				if st, err := d.Setups.Status(pctx, d.IDs[i]); err == nil {
					states[i] = st.State
				}
			})
		}
		wg.Wait()
		for i, st := range states {
			if st != "" && st != last[i] && st != escrow.StateCompleted && st != escrow.StateFailed {
				last[i] = st
				d.progress("%s  %s", d.IDs[i], st)
			}
		}
	}
	pollAll()
	for len(pending) > 0 {
		select {
		case r := <-results:
			delete(pending, r.i)
			d.walls[r.i] = d.Now().Sub(d.began)
			d.outs[r.i].SetResult(r.res, r.err)
			if r.err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("stopped waiting (%w); the escrows keep running in Temporal", context.Cause(ctx))
				}
				var failed *starter.EscrowFailedError
				if errors.As(r.err, &failed) {
					d.progress("%s  %s (%s)", d.IDs[r.i], escrow.StateFailed, failed.Type)
				} else {
					d.progress("%s  error: %v", d.IDs[r.i], r.err)
				}
				continue
			}
			d.progress("%s  %s", d.IDs[r.i], escrow.StateCompleted)
		case <-ticker.C:
			pollAll()
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting (%w); the escrows keep running in Temporal", context.Cause(ctx))
		}
	}
	return nil
}

// timeline renders the completed escrows' rounds.
func (d *SetupDemo) timeline() instrument.Timeline {
	in := make([]instrument.EscrowRounds, 0, len(d.outs))
	for _, o := range d.outs {
		er := instrument.EscrowRounds{EscrowID: o.EscrowID}
		if o.Result != nil {
			er.Rounds = o.Result.Rounds
		}
		in = append(in, er)
	}
	return instrument.RenderTimeline(in, d.Width)
}

// WriteText prints each escrow's outcome, the timeline, and the verdict.
func (d *SetupDemo) WriteText(w io.Writer) {
	tl, measured := d.timeline(), d.measured
	fmt.Fprintln(w)
	for i, o := range d.outs {
		if o.Result == nil {
			fmt.Fprintf(w, "%s  %s  %v\n\n", o.EscrowID, escrow.StateFailed, o.Err())
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
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", role, orDash(addr), Mark(addr != "" && addr == res.MultisigAddress))
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
