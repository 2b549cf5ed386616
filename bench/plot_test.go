package bench

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// svgNode is any element of an SVG document.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []svgNode  `xml:",any"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) num(t *testing.T, name string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(n.attr(name), 64)
	require.NoError(t, err, "attribute %s of <%s>", name, n.XMLName.Local)
	return v
}

// find returns the elements under n (n included) named name whose class
// list has class ("" for any).
func (n svgNode) find(name, class string) []svgNode {
	var out []svgNode
	if n.XMLName.Local == name && (class == "" || strings.Contains(" "+n.attr("class")+" ", " "+class+" ")) {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.find(name, class)...)
	}
	return out
}

func texts(ns []svgNode) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Text
	}
	return out
}

func parseSVG(t *testing.T, b []byte) svgNode {
	t.Helper()
	var root svgNode
	require.NoError(t, xml.Unmarshal(b, &root), "%s", b)
	require.Equal(t, "svg", root.XMLName.Local)
	return root
}

func renderPlot(t *testing.T, p Plot) svgNode {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, WritePlot(&b, p))
	return parseSVG(t, b.Bytes())
}

func testPlot() Plot {
	return Plot{
		Title: "Throughput <&> things", Note: "a note", XLabel: "pool size", YLabel: "escrows/min",
		Series: []Series{
			// Not in x order: WritePlot joins them in ascending x.
			{Name: "escrowflow", Points: []Point{{X: 12, Y: 47}, {X: 3, Y: 40}, {X: 6, Y: 44, Label: "pool 6: 44/min"}}},
			{Name: "direct", Points: []Point{{X: 1, Y: 41.5}, {X: 9, Y: 45}}},
		},
	}
}

func TestWritePlot(t *testing.T) {
	root := renderPlot(t, testPlot())

	lines := root.find("polyline", "line")
	require.Len(t, lines, 2, "one polyline per series")
	markers := root.find("circle", "marker")
	require.Len(t, markers, 5, "one marker per point")
	assert.Len(t, root.find("g", "series"), 2)

	// The polylines join the points in ascending x.
	for _, l := range lines {
		var prev float64 = -1
		for _, xy := range strings.Fields(l.attr("points")) {
			x, err := strconv.ParseFloat(strings.Split(xy, ",")[0], 64)
			require.NoError(t, err)
			assert.Greater(t, x, prev, "points %q", l.attr("points"))
			prev = x
		}
	}

	// Markers sit where their values say: a larger X is further right, a
	// larger Y higher up (a smaller svg y), across both series.
	type placed struct{ x, y, cx, cy float64 }
	var ps []placed
	for _, s := range testPlot().Series {
		for _, p := range s.Points {
			ps = append(ps, placed{x: p.X, y: p.Y})
		}
	}
	byTip := map[string]svgNode{}
	for _, m := range markers {
		byTip[m.find("title", "")[0].Text] = m
	}
	for i, tip := range []string{"escrowflow: (12, 47)", "escrowflow: (3, 40)", "escrowflow: pool 6: 44/min", "direct: (1, 41.5)", "direct: (9, 45)"} {
		m, ok := byTip[tip]
		require.True(t, ok, "marker %q in %v", tip, byTip)
		ps[i].cx, ps[i].cy = m.num(t, "cx"), m.num(t, "cy")
	}
	for _, a := range ps {
		for _, b := range ps {
			if a.y > b.y {
				assert.Less(t, a.cy, b.cy, "Y %v above Y %v", a.y, b.y)
			}
			if a.x > b.x {
				assert.Greater(t, a.cx, b.cx, "X %v right of X %v", a.x, b.x)
			}
		}
	}

	// Round ticks, the y axis from 0.
	assert.Equal(t, []string{"0", "10", "20", "30", "40", "50"}, texts(root.find("text", "y")[:6]))
	assert.Equal(t, []string{"0", "2", "4", "6", "8", "10", "12"}, texts(root.find("text", "x")[:7]))
	xAxis := root.find("line", "axis")[0]
	require.Equal(t, "axis x", xAxis.attr("class"))
	var zeroTick svgNode
	for _, l := range root.find("text", "tick-label") {
		if strings.Contains(l.attr("class"), " y") && l.Text == "0" {
			zeroTick = l
		}
	}
	assert.Equal(t, xAxis.attr("y1"), zeroTick.attr("y"), "the x axis is at y = 0")
	// 40 is the least value: its marker is well above the x axis, at 40/50
	// of the plot's height.
	axisY := xAxis.num(t, "y1")
	top := root.find("line", "grid")[5].num(t, "y1") // the tick at 50
	assert.InDelta(t, axisY-0.8*(axisY-top), ps[1].cy, 0.1)

	all := strings.Join(texts(root.find("text", "")), "\n")
	for _, want := range []string{"Throughput <&> things", "a note", "pool size", "escrows/min"} {
		assert.Contains(t, all, want)
	}
	assert.Equal(t, []string{"escrowflow", "direct"}, texts(root.find("text", "legend-label")))
	assert.Equal(t, []string{"escrowflow", "direct"}, []string{root.find("g", "series")[0].attr("data-name"), root.find("g", "series")[1].attr("data-name")})
}

func TestWritePlotDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	require.NoError(t, WritePlot(&a, testPlot()))
	require.NoError(t, WritePlot(&b, testPlot()))
	assert.Equal(t, a.String(), b.String())

	p := testPlot()
	p.Series[1].Points[0].Y = 30
	require.NoError(t, WritePlot(&c, p))
	assert.NotEqual(t, a.String(), c.String(), "the output depends on the values")
}

func TestWritePlotOnePoint(t *testing.T) {
	root := renderPlot(t, Plot{Title: "t", Series: []Series{{Name: "only", Points: []Point{{X: 12, Y: 0}}}}})

	assert.Len(t, root.find("polyline", "line"), 1)
	assert.Len(t, root.find("circle", "marker"), 1)
	// A zero Y sits on the x axis.
	assert.Equal(t, root.find("line", "axis")[0].attr("y1"), root.find("circle", "marker")[0].attr("cy"))
}

func TestWritePlotRejects(t *testing.T) {
	pts := []Point{{X: 1, Y: 1}}
	tests := []struct {
		name    string
		give    Plot
		wantErr string
	}{
		{name: "no series", give: Plot{Title: "t"}, wantErr: "no series"},
		{name: "empty series", give: Plot{Series: []Series{{Name: "a", Points: pts}, {Name: "b"}}}, wantErr: `series "b" has no point`},
		{name: "no name", give: Plot{Series: []Series{{Points: pts}}}, wantErr: "series 1 has no name"},
		{name: "NaN x", give: Plot{Series: []Series{{Name: "a", Points: []Point{{X: 1, Y: 1}, {X: math.NaN(), Y: 1}}}}}, wantErr: `series "a" point 2 is not finite`},
		{name: "NaN y", give: Plot{Series: []Series{{Name: "a", Points: []Point{{X: 1, Y: math.NaN()}}}}}, wantErr: "not finite"},
		{name: "infinite y", give: Plot{Series: []Series{{Name: "a", Points: []Point{{X: 1, Y: math.Inf(1)}}}}}, wantErr: "not finite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := WritePlot(&b, tt.give)

			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Zero(t, b.Len(), "nothing written")
		})
	}
}

func TestNewAxis(t *testing.T) {
	tests := []struct {
		name       string
		give       []float64
		wantLabels []string
	}{
		{name: "includes zero", give: []float64{40, 47}, wantLabels: []string{"0", "10", "20", "30", "40", "50"}},
		{name: "steps of 2", give: []float64{1, 12}, wantLabels: []string{"0", "2", "4", "6", "8", "10", "12"}},
		{name: "steps of 5", give: []float64{3, 26}, wantLabels: []string{"0", "5", "10", "15", "20", "25", "30"}},
		{name: "fractions", give: []float64{0.03, 0.27}, wantLabels: []string{"0", "0.05", "0.10", "0.15", "0.20", "0.25", "0.30"}},
		{name: "negative", give: []float64{-3, 5}, wantLabels: []string{"-4", "-2", "0", "2", "4", "6"}},
		{name: "all zero", give: []float64{0, 0}, wantLabels: []string{"0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{name: "step of 500", give: []float64{1234}, wantLabels: []string{"0", "500", "1000", "1500"}},
		{name: "step of 200", give: []float64{1100}, wantLabels: []string{"0", "200", "400", "600", "800", "1000", "1200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAxis(tt.give)
			var got []string
			for _, v := range a.ticks() {
				got = append(got, a.label(v))
			}
			assert.Equal(t, tt.wantLabels, got)
		})
	}
}

func i64(v int64) *int64        { return &v }
func f64(v float64) *float64    { return &v }
func points(s Series) []float64 { return pointXs(s.Points) }

func pointXs(ps []Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.X
	}
	return out
}

func pointYs(ps []Point) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Y
	}
	return out
}

func seriesNames(p Plot) []string {
	var out []string
	for _, s := range p.Series {
		out = append(out, s.Name)
	}
	return out
}

// ef is escrowflow's figures of a run at -c c on a pool of pool.
func efReport(n, c, pool int, perMin float64, p50, p95 int64) Report {
	return Report{N: n, Concurrency: c, PoolSize: pool, CPUs: 2, Modes: []ModeFigures{{
		Mode: Escrowflow, Escrows: n, Completed: n, Concurrency: c, Processes: pool,
		EscrowsPerMinute: f64(perMin), P50Ms: i64(p50), P95Ms: i64(p95),
	}}}
}

func withDirect(r Report, perMin float64, p50 int64) Report {
	r.Modes = append(r.Modes, ModeFigures{
		Mode: Direct, Escrows: r.N, Completed: r.N, Concurrency: r.Concurrency, Processes: 3 * r.Concurrency,
		EscrowsPerMinute: f64(perMin), P50Ms: i64(p50), P95Ms: i64(p50 + 1000),
	})
	return r
}

func TestSweepPlots(t *testing.T) {
	srcs := []Source{
		// The pool-size sweep: -n 12 -c 12, escrowflow only.
		{Name: "pool3.json", Report: efReport(12, 12, 3, 1.5, 40000, 50000)},
		{Name: "pool6.json", Report: efReport(12, 12, 6, 2.5, 30000, 40000)},
		{Name: "pool12.json", Report: efReport(12, 12, 12, 3.5, 20000, 30000)},
		// The concurrency sweep: escrowflow and direct.
		{Name: "c1.json", Report: withDirect(efReport(4, 1, 3, 0.9, 9000, 9500), 1.1, 7000)},
		{Name: "c2.json", Report: withDirect(efReport(4, 2, 6, 1.2, 10000, 11000), 1.6, 7500)},
		{Name: "c12.json", Report: withDirect(efReport(12, 12, 12, 4.5, 22000, 34000), 5.5, 12000)},
	}
	// A direct run that did not finish, one with no escrow completed, an
	// escrowflow run on an external stack.
	broken := withDirect(efReport(4, 4, 12, 2, 12000, 13000), 3, 9000)
	broken.Modes[1].Error = "stack did not start"
	srcs = append(srcs, Source{Name: "c4.json", Report: broken})
	none := efReport(8, 8, 12, 0, 0, 0)
	none.Modes[0].EscrowsPerMinute, none.Modes[0].P50Ms, none.Modes[0].P95Ms = nil, nil, nil
	srcs = append(srcs, Source{Name: "c8.json", Report: none})
	ext := efReport(2, 2, 9, 9, 1000, 1000)
	ext.Modes[0].ExternalStack = true
	srcs = append(srcs, Source{Name: "ext.json", Report: ext})

	sw := SweepPlots(srcs)

	tp := sw.Throughput
	require.Equal(t, []string{"escrowflow", "direct"}, seriesNames(tp))
	// Escrowflow at each pool size: the -c 12 runs, not c1's or c2's;
	// at pool 12 the mean of pool12 and c12 (same settings).
	assert.Equal(t, []float64{3, 6, 12}, points(tp.Series[0]))
	assert.Equal(t, []float64{1.5, 2.5, 4}, pointYs(tp.Series[0].Points))
	assert.Contains(t, tp.Series[0].Points[2].Label, "pool 12: 4 escrows/min (-n 12 -c 12 --pool-size 12; mean of 2 runs)")
	// Direct at 3 processes per escrow in flight; c4's direct failed.
	assert.Equal(t, []float64{3, 6, 36}, points(tp.Series[1]))
	assert.Equal(t, []float64{1.1, 1.6, 5.5}, pointYs(tp.Series[1].Points))

	lat := sw.Latency
	require.Equal(t, []string{"escrowflow p50", "escrowflow p95", "direct p50"}, seriesNames(lat))
	// At -c 12 the runs on the largest pool (12): pool12 and c12, in
	// seconds.
	assert.Equal(t, []float64{1, 2, 4, 12}, points(lat.Series[0]))
	assert.Equal(t, []float64{9, 10, 12, 21}, pointYs(lat.Series[0].Points))
	assert.Equal(t, []float64{9.5, 11, 13, 32}, pointYs(lat.Series[1].Points))
	assert.Equal(t, []float64{1, 2, 12}, points(lat.Series[2]))
	assert.Equal(t, []float64{7, 7.5, 12}, pointYs(lat.Series[2].Points))

	notes := strings.Join(sw.Notes, "\n")
	for _, want := range []string{
		"c4.json: direct (-n 4 -c 4) left out: did not run to the end: stack did not start",
		"c8.json: escrowflow (-n 8 -c 8 --pool-size 12) left out: no escrow completed",
		"ext.json: escrowflow (-n 2 -c 2 --pool-size 9) left out: ran on an external stack",
		"c1.json: escrowflow (-n 4 -c 1 --pool-size 3) left out of the escrows per minute plot at pool 3: a run there has more concurrency",
		"c4.json: escrowflow (-n 4 -c 4 --pool-size 12) left out of the escrows per minute plot at pool 12",
		"pool3.json: escrowflow (-n 12 -c 12 --pool-size 3) left out of the latency plot at -c 12: a run there has more wallet-rpc processes",
	} {
		assert.Contains(t, notes, want)
	}
	assert.Equal(t, 1, strings.Count(notes, "pool6.json: escrowflow (-n 12 -c 12 --pool-size 6) left out of the latency plot"), "p50 and p95 share their notes:\n%s", notes)
	assert.NotContains(t, notes, "pool12.json", "kept runs have no note")
	assert.Contains(t, tp.Note, "2 CPUs")

	for _, p := range []Plot{tp, lat} {
		root := renderPlot(t, p)
		n := 0
		for _, s := range p.Series {
			n += len(s.Points)
		}
		assert.Len(t, root.find("polyline", "line"), len(p.Series))
		assert.Len(t, root.find("circle", "marker"), n)
	}
}

func TestSweepPlotsGlobalLockAndFailures(t *testing.T) {
	r := efReport(3, 3, 9, 2, 10000, 12000)
	r.Modes[0].Failed, r.Modes[0].Completed = 1, 2
	r.Modes = append(r.Modes, ModeFigures{Mode: GlobalLock, Escrows: 3, Completed: 3, Concurrency: 1, Processes: 1,
		EscrowsPerMinute: f64(0.4), P50Ms: i64(50000), P95Ms: i64(60000)})

	sw := SweepPlots([]Source{{Name: "r.json", Report: r}})

	require.Equal(t, []string{"escrowflow", "global-lock"}, seriesNames(sw.Throughput))
	assert.Equal(t, []float64{1}, points(sw.Throughput.Series[1]))
	assert.Contains(t, sw.Throughput.Series[1].Points[0].Label, "1 wallet-rpc process:")
	assert.Contains(t, sw.Throughput.Series[0].Points[0].Label, "1 of 3 failed")
	assert.Equal(t, []string{"escrowflow p50", "escrowflow p95"}, seriesNames(sw.Latency), "global-lock has no latency series")
	assert.Empty(t, sw.Notes)
}

func TestSweepPlotsEmpty(t *testing.T) {
	sw := SweepPlots(nil)

	assert.Empty(t, sw.Throughput.Series)
	assert.Empty(t, sw.Latency.Series)
	assert.Error(t, WritePlot(&bytes.Buffer{}, sw.Throughput))
}
