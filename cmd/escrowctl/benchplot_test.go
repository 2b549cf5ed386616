package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/escrowflow/escrowflow/bench"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Reports as escrowctl bench --json writes them, trimmed to what plots use.
const (
	// The pool-size sweep: escrowflow only, -n 12 -c 12.
	pool3Report = `{"n": 12, "concurrency": 12, "poolSize": 3, "cpus": 2, "payloadCodec": false, "modes": [
  {"mode": "escrowflow", "escrows": 12, "completed": 12, "failed": 0, "concurrency": 12, "processes": 3, "wallMs": 480000,
   "latencyMs": [], "p50Ms": 250000, "p95Ms": 400000, "escrowsPerMinute": 1.5, "cpuSecondsPerEscrow": null, "cpuSeconds": null, "peakRssMiB": null}],
 "ratios": {}}`
	pool12Report = `{"n": 12, "concurrency": 12, "poolSize": 12, "cpus": 2, "modes": [
  {"mode": "escrowflow", "escrows": 12, "completed": 12, "concurrency": 12, "processes": 12, "wallMs": 200000,
   "p50Ms": 120000, "p95Ms": 180000, "escrowsPerMinute": 3.6}]}`
	// The concurrency sweep: escrowflow and direct; direct failed at -c 2.
	c1Report = `{"n": 4, "concurrency": 1, "poolSize": 3, "cpus": 2, "modes": [
  {"mode": "escrowflow", "escrows": 4, "completed": 4, "concurrency": 1, "processes": 3, "p50Ms": 30000, "p95Ms": 31000, "escrowsPerMinute": 2},
  {"mode": "direct", "escrows": 4, "completed": 4, "concurrency": 1, "processes": 3, "p50Ms": 25000, "p95Ms": 26000, "escrowsPerMinute": 2.4}]}`
	c2Report = `{"n": 4, "concurrency": 2, "poolSize": 6, "cpus": 2, "modes": [
  {"mode": "escrowflow", "escrows": 4, "completed": 4, "concurrency": 2, "processes": 6, "p50Ms": 40000, "p95Ms": 45000, "escrowsPerMinute": 2.8},
  {"mode": "direct", "escrows": 4, "completed": 0, "concurrency": 2, "processes": 6, "p50Ms": null, "p95Ms": null, "escrowsPerMinute": null,
   "error": "wallet-rpc did not start"}]}`
)

func writeReports(t *testing.T, reports ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, r := range reports {
		p := filepath.Join(dir, "run"+string(rune('a'+i))+".json")
		require.NoError(t, os.WriteFile(p, []byte(r), 0o644))
		paths = append(paths, p)
	}
	return paths
}

// svgSummary is what the test reads of a plot.
type svgSummary struct {
	Groups []struct {
		Class   string     `xml:"class,attr"`
		Name    string     `xml:"data-name,attr"`
		Lines   []struct{} `xml:"polyline"`
		Circles []struct{} `xml:"circle"`
	} `xml:"g"`
	Texts []string `xml:"text"`
}

// readPlot parses an SVG file and returns its series names and their
// number of markers.
func readPlot(t *testing.T, path string) (names []string, markers []int, texts []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var s svgSummary
	require.NoError(t, xml.Unmarshal(b, &s), "%s is not valid XML", path)
	for _, g := range s.Groups {
		if g.Class != "series" {
			continue
		}
		require.Len(t, g.Lines, 1, "one polyline per series")
		names = append(names, g.Name)
		markers = append(markers, len(g.Circles))
	}
	return names, markers, s.Texts
}

func TestBenchPlot(t *testing.T) {
	reports := writeReports(t, pool3Report, pool12Report, c1Report, c2Report)
	out := filepath.Join(t.TempDir(), "plots", "nested")

	inv := invoke(t, &fakeEscrows{}, nil, append([]string{"bench-plot", "--out-dir", out}, reports...)...)

	require.NoError(t, inv.err, inv.stderr.String())
	assert.Empty(t, inv.dialed, "no Temporal")

	names, markers, texts := readPlot(t, filepath.Join(out, "escrows-per-minute-vs-pool-size.svg"))
	assert.Equal(t, []string{"escrowflow", "direct"}, names)
	// escrowflow: pools 3 (the -c 12 run, not -c 1's), 6 and 12; direct: 3
	// processes only (it failed at -c 2).
	assert.Equal(t, []int{3, 1}, markers)
	assert.Contains(t, texts, "Escrows per minute against pool size")

	names, markers, texts = readPlot(t, filepath.Join(out, "latency-vs-concurrency.svg"))
	assert.Equal(t, []string{"escrowflow p50", "escrowflow p95", "direct p50"}, names)
	// -c 1, 2 and 12 (the pool-12 run, not pool 3's) for escrowflow.
	assert.Equal(t, []int{3, 3, 1}, markers)
	assert.Contains(t, texts, "latency per escrow (s)")

	stdout := inv.stdout.String()
	assert.Contains(t, stdout, "wrote "+filepath.Join(out, "escrows-per-minute-vs-pool-size.svg")+": 2 series, 4 points")
	assert.Contains(t, stdout, "wrote "+filepath.Join(out, "latency-vs-concurrency.svg")+": 3 series, 7 points")
	stderr := inv.stderr.String()
	assert.Contains(t, stderr, "bench-plot: "+reports[3]+": direct (-n 4 -c 2) left out: did not run to the end: wallet-rpc did not start")
	assert.Contains(t, stderr, reports[2]+": escrowflow (-n 4 -c 1 --pool-size 3) left out of the escrows per minute plot at pool 3")
	assert.Contains(t, stderr, reports[0]+": escrowflow (-n 12 -c 12 --pool-size 3) left out of the latency plot at -c 12")
}

func TestBenchPlotJSON(t *testing.T) {
	reports := writeReports(t, c1Report, c2Report)
	out := t.TempDir()

	inv := invoke(t, &fakeEscrows{}, nil, append([]string{"bench-plot", "--json", "--out-dir", out}, reports...)...)

	require.NoError(t, inv.err, inv.stderr.String())
	var got bench.PlotsOutput
	require.NoError(t, json.Unmarshal(inv.stdout.Bytes(), &got), inv.stdout.String())
	require.Len(t, got.Plots, 2)
	assert.Equal(t, filepath.Join(out, bench.ThroughputPlotFile), got.Plots[0].File)
	require.Len(t, got.Plots[0].Series, 2)
	assert.Equal(t, []bench.PlotPoint{{X: 3, Y: 2}, {X: 6, Y: 2.8}}, got.Plots[0].Series[0].Points)
	assert.Equal(t, []bench.PlotPoint{{X: 1, Y: 25}}, got.Plots[1].Series[2].Points, "direct p50 in seconds")
	assert.Len(t, got.Notes, 1)
	assert.FileExists(t, filepath.Join(out, bench.LatencyPlotFile))
}

func TestBenchPlotErrors(t *testing.T) {
	dir := t.TempDir()
	noFigure := `{"n": 1, "concurrency": 1, "poolSize": 3, "modes": [{"mode": "escrowflow", "escrows": 1, "completed": 0, "failed": 1, "concurrency": 1, "processes": 3}]}`
	tests := []struct {
		name     string
		give     []string // reports, written to files
		giveArgs []string
		wantCode int
		wantErr  string
	}{
		{name: "no report", wantCode: 2, wantErr: "no report file given"},
		{name: "empty out dir", give: []string{c1Report}, giveArgs: []string{"--out-dir", ""}, wantCode: 2, wantErr: "--out-dir is empty"},
		{name: "not JSON", give: []string{"escrowflow 3/3"}, wantCode: 1, wantErr: "not an escrowctl bench --json report"},
		{name: "no modes", give: []string{`{"n": 3}`}, wantCode: 1, wantErr: "no modes"},
		{name: "missing file", giveArgs: []string{filepath.Join(dir, "nope.json")}, wantCode: 1, wantErr: "nope.json"},
		{name: "no figure", give: []string{noFigure}, wantCode: 1, wantErr: "escrows-per-minute-vs-pool-size.svg: no report has"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"bench-plot", "--out-dir", out}, tt.giveArgs...)
			args = append(args, writeReports(t, tt.give...)...)

			inv := invoke(t, &fakeEscrows{}, nil, args...)

			require.Error(t, inv.err)
			assert.Equal(t, tt.wantCode, exitCode(inv.err), "%v", inv.err)
			assert.Contains(t, inv.err.Error(), tt.wantErr)
			assert.NoDirExists(t, out, "nothing written")
		})
	}
}

func TestBenchPlotHelp(t *testing.T) {
	inv := invoke(t, &fakeEscrows{}, nil, "bench-plot", "--help")

	require.NoError(t, inv.err)
	out := inv.stdout.String()
	assert.Contains(t, out, "Usage: escrowctl bench-plot [--out-dir DIR] REPORT.json...")
	for _, want := range []string{"-out-dir", `(default "docs/bench")`, bench.ThroughputPlotFile, bench.LatencyPlotFile} {
		assert.Contains(t, out, want)
	}
	inv = invoke(t, &fakeEscrows{}, nil, "--help")
	assert.True(t, strings.Contains(inv.stdout.String(), "bench-plot [--out-dir DIR]"), inv.stdout.String())
}
