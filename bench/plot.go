package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/escrowflow/escrowflow/instrument"
)

// Point is one point of a series. Label, when set, is the point's tooltip
// (after the series name); otherwise the tooltip shows X and Y.
type Point struct {
	X, Y  float64
	Label string
}

// Series is one line of a plot.
type Series struct {
	Name   string
	Points []Point
}

// Plot is a line chart: one line per series against shared axes.
type Plot struct {
	Title string
	// Note is an optional line under the title (how the points were
	// chosen, the machine).
	Note           string
	XLabel, YLabel string
	Series         []Series
}

// PlotColors are the series colours, in series order (repeated after the
// last).
var PlotColors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"}

// Plot layout, in pixels.
const (
	plotLeft    = 76  // y tick labels and the y axis label
	plotTop     = 60  // title and note
	plotW       = 520 // the plot area
	plotH       = 320
	plotBottom  = 56 // x tick labels and the x axis label
	plotLegendX = 24 // gap between the plot area and the legend
	plotLegendW = 7  // per character of a series name, roughly
	plotTicks   = 6  // ticks per axis, roughly
	plotMarkerR = 3.5
)

// WritePlot draws p as a standalone SVG document: a title, axes with ticks
// at round steps and their numeric labels, faint grid lines, one polyline
// (class "line") and one circle per point (class "marker", with a tooltip)
// per series, and a legend. Both axes include 0; the points of a series are
// joined in ascending X. Every series needs a name and at least one point,
// and every coordinate must be finite. The output is a function of p alone:
// the same plot gives the same bytes. Nothing is written on error.
func WritePlot(w io.Writer, p Plot) error {
	if len(p.Series) == 0 {
		return errors.New("plot: no series")
	}
	var xs, ys []float64
	series := make([]Series, len(p.Series))
	for i, s := range p.Series {
		if s.Name == "" {
			return fmt.Errorf("plot: series %d has no name", i+1)
		}
		if len(s.Points) == 0 {
			return fmt.Errorf("plot: series %q has no point", s.Name)
		}
		for j, pt := range s.Points {
			if !finite(pt.X) || !finite(pt.Y) {
				return fmt.Errorf("plot: series %q point %d is not finite: (%v, %v)", s.Name, j+1, pt.X, pt.Y)
			}
			xs, ys = append(xs, pt.X), append(ys, pt.Y)
		}
		pts := slices.Clone(s.Points)
		slices.SortStableFunc(pts, func(a, b Point) int { return cmp.Compare(a.X, b.X) })
		series[i] = Series{Name: s.Name, Points: pts}
	}
	xa, ya := newAxis(xs), newAxis(ys)
	sx := func(v float64) float64 { return plotLeft + (v-xa.lo)/(xa.hi-xa.lo)*plotW }
	sy := func(v float64) float64 { return plotTop + plotH - (v-ya.lo)/(ya.hi-ya.lo)*plotH }

	nameLen := 0
	for _, s := range series {
		nameLen = max(nameLen, len([]rune(s.Name)))
	}
	legendX := plotLeft + plotW + plotLegendX
	width := legendX + 30 + plotLegendW*nameLen + 16
	height := plotTop + plotH + plotBottom

	var b bytes.Buffer
	instrument.WriteSVGStart(&b, width, height, 12)
	fmt.Fprintf(&b, `<text class="title" x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", plotLeft, instrument.XMLText(p.Title))
	if p.Note != "" {
		fmt.Fprintf(&b, `<text class="note" x="%d" y="42" fill="#555555">%s</text>`+"\n", plotLeft, instrument.XMLText(p.Note))
	}

	// Grid, ticks and tick labels, then the axes over them.
	bottom := plotTop + plotH
	for _, t := range ya.ticks() {
		y := coord(sy(t))
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e5e5e5"/>`+"\n", plotLeft, y, plotLeft+plotW, y)
		fmt.Fprintf(&b, `<line class="tick" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#333333"/>`+"\n", plotLeft-5, y, plotLeft, y)
		fmt.Fprintf(&b, `<text class="tick-label y" x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
			plotLeft-8, y, ya.label(t))
	}
	for _, t := range xa.ticks() {
		x := coord(sx(t))
		fmt.Fprintf(&b, `<line class="grid" x1="%s" y1="%d" x2="%s" y2="%d" stroke="#f0f0f0"/>`+"\n", x, plotTop, x, bottom)
		fmt.Fprintf(&b, `<line class="tick" x1="%s" y1="%d" x2="%s" y2="%d" stroke="#333333"/>`+"\n", x, bottom, x, bottom+5)
		fmt.Fprintf(&b, `<text class="tick-label x" x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", x, bottom+19, xa.label(t))
	}
	fmt.Fprintf(&b, `<line class="axis x" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#333333"/>`+"\n",
		plotLeft, coord(sy(0)), plotLeft+plotW, coord(sy(0)))
	fmt.Fprintf(&b, `<line class="axis y" x1="%s" y1="%d" x2="%s" y2="%d" stroke="#333333"/>`+"\n",
		coord(sx(xa.lo)), plotTop, coord(sx(xa.lo)), bottom)
	fmt.Fprintf(&b, `<text class="axis-label x" x="%d" y="%d" text-anchor="middle">%s</text>`+"\n",
		plotLeft+plotW/2, bottom+44, instrument.XMLText(p.XLabel))
	fmt.Fprintf(&b, `<text class="axis-label y" x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">%s</text>`+"\n",
		plotTop+plotH/2, plotTop+plotH/2, instrument.XMLText(p.YLabel))

	for i, s := range series {
		color := PlotColors[i%len(PlotColors)]
		fmt.Fprintf(&b, `<g class="series" data-name="%s">`+"\n", instrument.XMLText(s.Name))
		coords := make([]string, len(s.Points))
		for j, pt := range s.Points {
			coords[j] = coord(sx(pt.X)) + "," + coord(sy(pt.Y))
		}
		fmt.Fprintf(&b, `<polyline class="line" points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(coords, " "), color)
		for _, pt := range s.Points {
			tip := pt.Label
			if tip == "" {
				tip = "(" + num(pt.X) + ", " + num(pt.Y) + ")"
			}
			fmt.Fprintf(&b, `<circle class="marker" cx="%s" cy="%s" r="%s" fill="%s"><title>%s</title></circle>`+"\n",
				coord(sx(pt.X)), coord(sy(pt.Y)), num(plotMarkerR), color, instrument.XMLText(s.Name+": "+tip))
		}
		b.WriteString("</g>\n")
	}

	b.WriteString(`<g class="legend">` + "\n")
	for i, s := range series {
		color := PlotColors[i%len(PlotColors)]
		y := plotTop + 10 + 20*i
		fmt.Fprintf(&b, `<line class="swatch" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", legendX, y, legendX+22, y, color)
		fmt.Fprintf(&b, `<circle class="swatch" cx="%d" cy="%d" r="%s" fill="%s"/>`+"\n", legendX+11, y, num(plotMarkerR), color)
		fmt.Fprintf(&b, `<text class="legend-label" x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", legendX+30, y, instrument.XMLText(s.Name))
	}
	b.WriteString("</g>\n</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// axis is a scale from lo to hi, both multiples of step.
type axis struct {
	lo, hi, step float64
	decimals     int // of the tick labels
}

// newAxis returns an axis over vs and 0, with about plotTicks ticks at a
// step of 1, 2 or 5 times a power of ten.
func newAxis(vs []float64) axis {
	lo, hi := 0.0, 0.0
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi == lo {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / plotTicks)
	a := axis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step, step: step}
	if d := -int(math.Floor(math.Log10(step) + 1e-9)); d > 0 {
		a.decimals = d
	}
	return a
}

// niceStep returns the least of 1, 2 and 5 times a power of ten that is at
// least raw (> 0).
func niceStep(raw float64) float64 {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// ticks returns the axis' tick values, lo to hi.
func (a axis) ticks() []float64 {
	first, last := math.Round(a.lo/a.step), math.Round(a.hi/a.step)
	var out []float64
	for k := first; k <= last; k++ {
		out = append(out, k*a.step)
	}
	return out
}

func (a axis) label(v float64) string {
	s := strconv.FormatFloat(v, 'f', a.decimals, 64)
	if strings.Trim(s, "-0.") == "" {
		return "0" // not "-0"
	}
	return s
}

// coord formats an SVG coordinate.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// num formats a value for a tooltip.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Source is one bench report (escrowctl bench --json) and its name, the
// file it came from, for the notes.
type Source struct {
	Name   string
	Report Report
}

// Sweep is what SweepPlots makes of a set of reports.
type Sweep struct {
	// Throughput is escrows per minute against the number of wallet-rpc
	// processes, one series per mode.
	Throughput Plot
	// Latency is the per-escrow latency in seconds against -c: escrowflow's
	// p50 and p95 and direct's p50.
	Latency Plot
	// Notes name the figures left out and why: first the modes left out
	// of both plots, in the order of the sources, then the runs a point
	// did not keep.
	Notes []string
}

// candidate is one run's figure for one point of a series.
type candidate struct {
	x, y float64
	// rank orders runs at the same x: only the highest are kept.
	rank int
	src  string
	mode Mode
	run  string // the run's settings, "-n 12 -c 12 --pool-size 6"
}

// seriesBuilder gathers the candidates of one series.
type seriesBuilder struct {
	name string
	// rankNoun names what candidate.rank counts, for the notes.
	rankNoun string
	cands    []candidate
}

// SweepPlots builds the two plots of a bench sweep from its reports:
//
//   - Throughput, escrows per minute against wallet-rpc processes: x is
//     --pool-size for escrowflow (runs on an external stack are left out:
//     their pool is unknown) and the mode's processes figure for direct
//     (3 per escrow in flight) and global-lock (1); left out when 0. At the
//     same x, only the runs with the highest -c are kept: the pool is the
//     limit there, not the load.
//   - Latency, p50 and p95 per escrow (seconds) against -c, for escrowflow,
//     and direct's p50: at the same -c, only the runs with the most
//     wallet-rpc processes are kept: the load is the limit there, not the
//     pool. Escrowflow on an external stack is left out.
//
// Runs kept at the same x are averaged. A mode that did not run to the end
// (error) or has no figure (no escrow completed) is left out. Points are in
// ascending x; series without points are dropped, so a plot may have no
// series (WritePlot then fails).
func SweepPlots(srcs []Source) Sweep {
	var notes []string
	tp := map[Mode]*seriesBuilder{}
	for _, m := range Modes {
		tp[m] = &seriesBuilder{name: string(m), rankNoun: "concurrency"}
	}
	const procsNoun = "wallet-rpc processes"
	efP50 := &seriesBuilder{name: "escrowflow p50", rankNoun: procsNoun}
	efP95 := &seriesBuilder{name: "escrowflow p95", rankNoun: procsNoun}
	dirP50 := &seriesBuilder{name: "direct p50", rankNoun: procsNoun}

	cpus := -1
	for _, src := range srcs {
		rep := src.Report
		switch {
		case cpus == -1:
			cpus = rep.CPUs
		case cpus != rep.CPUs:
			cpus = 0
		}
		for _, m := range rep.Modes {
			if !slices.Contains(Modes, m.Mode) {
				notes = append(notes, fmt.Sprintf("%s: unknown mode %q left out", src.Name, m.Mode))
				continue
			}
			run := fmt.Sprintf("-n %d -c %d", m.Escrows, m.Concurrency)
			if m.Mode == Escrowflow {
				run += fmt.Sprintf(" --pool-size %d", rep.PoolSize)
			}
			if m.Failed > 0 {
				run += fmt.Sprintf(", %d of %d failed", m.Failed, m.Escrows)
			}
			leftOut := func(why string) {
				notes = append(notes, fmt.Sprintf("%s: %s (%s) left out: %s", src.Name, m.Mode, run, why))
			}
			switch {
			case m.Error != "":
				leftOut("did not run to the end: " + m.Error)
				continue
			case m.Mode == Escrowflow && m.ExternalStack:
				leftOut("ran on an external stack, whose pool and machine are not the bench's")
				continue
			case m.EscrowsPerMinute == nil && m.P50Ms == nil:
				leftOut("no escrow completed")
				continue
			}
			procs := m.Processes
			if m.Mode == Escrowflow {
				procs = rep.PoolSize
			}
			if m.EscrowsPerMinute != nil && procs > 0 {
				tp[m.Mode].add(candidate{x: float64(procs), y: *m.EscrowsPerMinute, rank: m.Concurrency, src: src.Name, mode: m.Mode, run: run})
			}
			if m.P50Ms == nil {
				continue
			}
			lat := candidate{x: float64(m.Concurrency), rank: procs, src: src.Name, mode: m.Mode, run: run}
			switch m.Mode {
			case Escrowflow:
				efP50.add(lat.with(float64(*m.P50Ms) / 1000))
				if m.P95Ms != nil {
					efP95.add(lat.with(float64(*m.P95Ms) / 1000))
				}
			case Direct:
				dirP50.add(lat.with(float64(*m.P50Ms) / 1000))
			}
		}
	}
	machine := ""
	if cpus > 0 {
		machine = fmt.Sprintf("; %s", plural(cpus, "CPU"))
	}

	sw := Sweep{
		Throughput: Plot{
			Title:  "Escrows per minute against pool size",
			Note:   "At each x, the runs with the highest -c; repeated runs averaged" + machine,
			XLabel: "wallet-rpc processes (escrowflow: --pool-size; direct: 3 per escrow in flight)",
			YLabel: "escrows per minute",
		},
		Latency: Plot{
			Title:  "Per-escrow latency against concurrency",
			Note:   "At each -c, the runs with the most wallet-rpc processes; repeated runs averaged" + machine,
			XLabel: "escrows in flight at most (-c)",
			YLabel: "latency per escrow (s)",
		},
	}
	const tpName, latName = "escrows per minute", "latency"
	for _, m := range Modes {
		xdesc := func(x float64) string {
			if x == 1 {
				return "1 wallet-rpc process"
			}
			return num(x) + " wallet-rpc processes"
		}
		if m == Escrowflow {
			xdesc = func(x float64) string { return "pool " + num(x) }
		}
		if s, n := tp[m].build(tpName, xdesc, func(y float64) string { return num(y) + " escrows/min" }); len(s.Points) > 0 {
			sw.Throughput.Series = append(sw.Throughput.Series, s)
			notes = append(notes, n...)
		}
	}
	for _, sb := range []*seriesBuilder{efP50, efP95, dirP50} {
		xdesc := func(x float64) string { return "-c " + num(x) }
		if s, n := sb.build(latName, xdesc, func(y float64) string { return num(y) + " s" }); len(s.Points) > 0 {
			sw.Latency.Series = append(sw.Latency.Series, s)
			for _, note := range n { // p50 and p95 leave out the same runs
				if !slices.Contains(notes, note) {
					notes = append(notes, note)
				}
			}
		}
	}
	sw.Notes = notes
	return sw
}

func (c candidate) with(y float64) candidate {
	c.y = y
	return c
}

func (sb *seriesBuilder) add(c candidate) { sb.cands = append(sb.cands, c) }

// build keeps, at each x, the candidates of the highest rank, averages
// them, and returns the series and notes on the runs left out.
func (sb *seriesBuilder) build(plot string, xdesc, ydesc func(float64) string) (Series, []string) {
	s := Series{Name: sb.name}
	var notes []string
	var xs []float64
	for _, c := range sb.cands {
		if !slices.Contains(xs, c.x) {
			xs = append(xs, c.x)
		}
	}
	slices.Sort(xs)
	for _, x := range xs {
		best := math.MinInt
		for _, c := range sb.cands {
			if c.x == x {
				best = max(best, c.rank)
			}
		}
		var kept []candidate
		for _, c := range sb.cands {
			switch {
			case c.x != x:
			case c.rank == best:
				kept = append(kept, c)
			default:
				note := fmt.Sprintf("%s: %s (%s) left out of the %s plot at %s: a run there has more %s",
					c.src, c.mode, c.run, plot, xdesc(x), sb.rankNoun)
				if !slices.Contains(notes, note) {
					notes = append(notes, note)
				}
			}
		}
		sum := 0.0
		var runs []string
		for _, c := range kept {
			sum += c.y
			if !slices.Contains(runs, c.run) {
				runs = append(runs, c.run)
			}
		}
		y := round3(sum / float64(len(kept)))
		label := fmt.Sprintf("%s: %s (%s", xdesc(x), ydesc(y), strings.Join(runs, "; "))
		if len(kept) > 1 {
			label += fmt.Sprintf("; mean of %d runs", len(kept))
		}
		s.Points = append(s.Points, Point{X: x, Y: y, Label: label + ")"})
	}
	return s, notes
}

// PlotFile is one written plot, as `escrowctl bench-plot --json` shows it.
type PlotFile struct {
	File   string       `json:"file"`
	Title  string       `json:"title"`
	Series []PlotSeries `json:"series"`
}

// PlotSeries is one series of a PlotFile.
type PlotSeries struct {
	Name   string      `json:"name"`
	Points []PlotPoint `json:"points"`
}

// PlotPoint is one point of a PlotSeries.
type PlotPoint struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// FileOf describes plot p written to path.
func FileOf(path string, p Plot) PlotFile {
	pf := PlotFile{File: path, Title: p.Title}
	for _, s := range p.Series {
		ps := PlotSeries{Name: s.Name}
		for _, pt := range s.Points {
			ps.Points = append(ps.Points, PlotPoint{X: pt.X, Y: pt.Y})
		}
		pf.Series = append(pf.Series, ps)
	}
	return pf
}

// ReadReport reads one `escrowctl bench --json` report.
func ReadReport(path string) (Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Report{}, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return Report{}, fmt.Errorf("%s: not an escrowctl bench --json report: %w", path, err)
	}
	if len(rep.Modes) == 0 {
		return Report{}, fmt.Errorf("%s: no modes: not an escrowctl bench --json report", path)
	}
	return rep, nil
}
