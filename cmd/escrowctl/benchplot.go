package main

// The bench-plot command draws the plots of a bench sweep: `escrowctl
// bench --json` measures one point per run; scripts/bench-sweep.sh runs
// the sweeps and hands their reports to bench-plot. How the points are
// chosen is bench.SweepPlots'.

import (
	"context"
	"flag"
	"fmt"

	"github.com/escrowflow/escrowflow/bench"
)

func benchPlotFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	outDir := fs.String("out-dir", bench.DefaultPlotDir, "write "+bench.ThroughputPlotFile+" (escrows per minute against wallet-rpc processes, per mode) and "+
		bench.LatencyPlotFile+" (escrowflow's p50 and p95 and direct's p50 against -c) into this `directory`, created when missing. "+
		"Where runs share an x, those with the highest -c (escrows/min) or the most wallet-rpc processes (latency) are kept and averaged; "+
		"the figures left out are named on stderr")
	return func(_ context.Context, files []string) error {
		if len(files) == 0 {
			return usagef("bench-plot: no report file given (the output of escrowctl bench --json)")
		}
		if *outDir == "" {
			return usagef("bench-plot: --out-dir is empty")
		}
		out, err := bench.WritePlots(*outDir, files, func(n string) { fmt.Fprintln(a.stderr, "bench-plot:", n) })
		if err != nil {
			return fmt.Errorf("bench-plot: %w", err)
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
