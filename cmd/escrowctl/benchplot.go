package main

// The bench-plot command draws the plots of a bench sweep: `escrowctl
// bench --json` measures one point per run; scripts/bench-sweep.sh runs
// the sweeps and hands their reports to bench-plot. How the points are
// chosen is bench.SweepPlots'.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/escrowflow/escrowflow/bench"
	"github.com/escrowflow/escrowflow/walletstore"
)

// The files bench-plot writes into --out-dir.
const (
	defaultPlotDir     = "docs/bench"
	throughputPlotFile = "escrows-per-minute-vs-pool-size.svg"
	latencyPlotFile    = "latency-vs-concurrency.svg"
)

// benchPlotOutput is the JSON output of bench-plot.
type benchPlotOutput struct {
	Plots []bench.PlotFile `json:"plots"`
	// Notes name the figures left out and why.
	Notes []string `json:"notes"`
}

func benchPlotFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	outDir := fs.String("out-dir", defaultPlotDir, "write "+throughputPlotFile+" (escrows per minute against wallet-rpc processes, per mode) and "+
		latencyPlotFile+" (escrowflow's p50 and p95 and direct's p50 against -c) into this `directory`, created when missing. "+
		"Where runs share an x, those with the highest -c (escrows/min) or the most wallet-rpc processes (latency) are kept and averaged; "+
		"the figures left out are named on stderr")
	return func(_ context.Context, files []string) error {
		if len(files) == 0 {
			return usagef("bench-plot: no report file given (the output of escrowctl bench --json)")
		}
		if *outDir == "" {
			return usagef("bench-plot: --out-dir is empty")
		}
		srcs := make([]bench.Source, len(files))
		for i, f := range files {
			rep, err := bench.ReadReport(f)
			if err != nil {
				return fmt.Errorf("bench-plot: %w", err)
			}
			srcs[i] = bench.Source{Name: f, Report: rep}
		}
		sw := bench.SweepPlots(srcs)
		printNotes(a, sw.Notes)
		plots := []struct {
			file string
			plot bench.Plot
			what string
		}{
			{throughputPlotFile, sw.Throughput, "an escrows-per-minute figure with a known number of wallet-rpc processes"},
			{latencyPlotFile, sw.Latency, "a latency figure of escrowflow or direct"},
		}
		// Draw both before writing either.
		svgs := make([][]byte, len(plots))
		for i, p := range plots {
			if len(p.plot.Series) == 0 {
				return fmt.Errorf("bench-plot: %s: no report has %s", p.file, p.what)
			}
			var buf bytes.Buffer
			if err := bench.WritePlot(&buf, p.plot); err != nil {
				return fmt.Errorf("bench-plot: %s: %w", p.file, err)
			}
			svgs[i] = buf.Bytes()
		}
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return fmt.Errorf("bench-plot: %w", err)
		}
		out := benchPlotOutput{Notes: sw.Notes}
		if out.Notes == nil {
			out.Notes = []string{}
		}
		for i, p := range plots {
			path := filepath.Join(*outDir, p.file)
			if err := walletstore.AtomicWriteFile(path, svgs[i], 0o644); err != nil {
				return fmt.Errorf("bench-plot: %w", err)
			}
			out.Plots = append(out.Plots, bench.FileOf(path, p.plot))
		}
		if a.json {
			return printJSON(a.stdout, out)
		}
		for _, pf := range out.Plots {
			n := 0
			for _, s := range pf.Series {
				n += len(s.Points)
			}
			fmt.Fprintf(a.stdout, "wrote %s: %d series, %d points\n", pf.File, len(pf.Series), n)
		}
		return nil
	}
}

func printNotes(a *app, notes []string) {
	for _, n := range notes {
		fmt.Fprintln(a.stderr, "bench-plot:", n)
	}
}
