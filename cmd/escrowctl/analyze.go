package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/walletstore"
)

// analysisReport is the JSON output of analyze (without --diff).
type analysisReport struct {
	Escrows []instrument.Analysis `json:"escrows"`
	// Overlap reports whether all escrows ran at one moment (two or
	// more); From and To bound that moment.
	Overlap bool      `json:"overlap"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	// SVG is the file --svg wrote.
	SVG string `json:"svg,omitempty"`
}

func analyzeFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	diff := fs.Bool("diff", false, "compare exactly two exports step by step and show where they diverge")
	svg := fs.String("svg", "", "also draw a Gantt timeline of the escrows into this SVG `file`")
	threshold := fs.Duration("lease-threshold", instrument.DefaultLeaseThresholdMs*time.Millisecond, "flag lease waits above this `duration`")
	width := fs.Int("width", instrument.DefaultWidth, "text timeline width in `columns`")
	return func(_ context.Context, files []string) error {
		switch {
		case len(files) == 0:
			return usagef("analyze: no export file given")
		case *diff && len(files) != 2:
			return usagef("analyze: --diff wants exactly two export files, got %d", len(files))
		case *width < 10:
			return usagef("analyze: --width must be at least 10")
		case *threshold < time.Millisecond:
			return usagef("analyze: --lease-threshold must be at least 1ms")
		}
		es := make([]instrument.Escrow, len(files))
		for i, f := range files {
			e, err := instrument.ReadFile(f)
			if err != nil {
				return err
			}
			es[i] = e
		}
		if *svg != "" {
			var buf bytes.Buffer
			if err := instrument.WriteSVG(&buf, es); err != nil {
				return err
			}
			if err := walletstore.AtomicWriteFile(*svg, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write SVG: %w", err)
			}
		}
		opt := instrument.Options{LeaseThresholdMs: threshold.Milliseconds(), Width: *width}
		switch {
		case *diff && a.json:
			return printJSON(a.stdout, instrument.Diff(es[0], es[1]))
		case *diff:
			if err := instrument.WriteDiff(a.stdout, instrument.Diff(es[0], es[1])); err != nil {
				return err
			}
		case a.json:
			rep := analysisReport{SVG: *svg}
			for _, e := range es {
				rep.Escrows = append(rep.Escrows, instrument.Analyze(e, opt))
			}
			rep.From, rep.To, rep.Overlap = instrument.Overlap(es)
			if !rep.Overlap {
				rep.From, rep.To = time.Time{}, time.Time{}
			}
			return printJSON(a.stdout, rep)
		default:
			for i, e := range es {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				if err := instrument.WriteReport(a.stdout, e, opt); err != nil {
					return err
				}
			}
			if len(es) > 1 {
				fmt.Fprintln(a.stdout)
				if err := instrument.WriteOverlap(a.stdout, es, *width); err != nil {
					return err
				}
			}
		}
		if *svg != "" {
			steps := 0
			for _, e := range es {
				steps += len(e.Steps)
			}
			fmt.Fprintf(a.stdout, "\nwrote %s: %d escrows, %d steps\n", *svg, len(es), steps)
		}
		return nil
	}
}
