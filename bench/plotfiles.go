package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/escrowflow/escrowflow/walletstore"
)

// The files WritePlots writes.
const (
	// DefaultPlotDir is where escrowctl bench-plot writes them.
	DefaultPlotDir     = "docs/bench"
	ThroughputPlotFile = "escrows-per-minute-vs-pool-size.svg"
	LatencyPlotFile    = "latency-vs-concurrency.svg"
)

// PlotsOutput is what WritePlots wrote (bench-plot's JSON output).
type PlotsOutput struct {
	Plots []PlotFile `json:"plots"`
	// Notes name the figures left out and why.
	Notes []string `json:"notes"`
}

// WritePlots reads the bench --json reports files, draws the sweep's plots
// (see SweepPlots) and writes them into dir, created when missing; note
// gets each figure left out. It draws both plots before writing either.
func WritePlots(dir string, files []string, note func(string)) (PlotsOutput, error) {
	srcs := make([]Source, len(files))
	for i, f := range files {
		rep, err := ReadReport(f)
		if err != nil {
			return PlotsOutput{}, err
		}
		srcs[i] = Source{Name: f, Report: rep}
	}
	sw := SweepPlots(srcs)
	for _, n := range sw.Notes {
		note(n)
	}
	plots := []struct {
		file string
		plot Plot
		what string
	}{
		{ThroughputPlotFile, sw.Throughput, "an escrows-per-minute figure with a known number of wallet-rpc processes"},
		{LatencyPlotFile, sw.Latency, "a latency figure of escrowflow or direct"},
	}
	// Draw both before writing either.
	svgs := make([][]byte, len(plots))
	for i, p := range plots {
		if len(p.plot.Series) == 0 {
			return PlotsOutput{}, fmt.Errorf("%s: no report has %s", p.file, p.what)
		}
		var buf bytes.Buffer
		if err := WritePlot(&buf, p.plot); err != nil {
			return PlotsOutput{}, fmt.Errorf("%s: %w", p.file, err)
		}
		svgs[i] = buf.Bytes()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return PlotsOutput{}, err
	}
	out := PlotsOutput{Notes: sw.Notes}
	if out.Notes == nil {
		out.Notes = []string{}
	}
	for i, p := range plots {
		path := filepath.Join(dir, p.file)
		if err := walletstore.AtomicWriteFile(path, svgs[i], 0o644); err != nil {
			return PlotsOutput{}, err
		}
		out.Plots = append(out.Plots, FileOf(path, p.plot))
	}
	return out, nil
}
