package instrument_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/instrument/historytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// retried is a completed escrow whose MAKING/vendor step needed three
// attempts and waited 250 ms for its lease, and whose EXCHANGING_2/buyer
// waited 101 ms.
func retried(t *testing.T) instrument.Escrow {
	return build(t, "e1", t0, func(round, role string, s *historytest.Step) {
		if round == "MAKING" && role == "vendor" {
			s.QueueMs, s.Attempts, s.LastFailure, s.LeaseWaitMs, s.Recovered = 3005, 3, "WalletUnavailable", 250, true
		}
		if round == "EXCHANGING_2" && role == "buyer" {
			s.LeaseWaitMs = 101
		}
	})
}

// failedAt returns escrow id started at +startMs whose MAKING/vendor step
// fails after 50 ms.
func failedAt(t *testing.T, id string, startMs int) instrument.Escrow {
	return build(t, id, at(startMs), func(round, role string, s *historytest.Step) {
		if round == "MAKING" && role == "vendor" {
			s.Fail, s.RunMs = "InvalidMultisigMessage", 50
		}
	})
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
}

func TestTextOutput(t *testing.T) {
	a, b := retried(t), failedAt(t, "e2", 1500)
	tests := []struct {
		name   string
		golden string
		write  func(w io.Writer) error
	}{
		{name: "report of a retried escrow", golden: "report_retried.txt", write: func(w io.Writer) error {
			return instrument.WriteReport(w, a, instrument.Options{Width: 30})
		}},
		{name: "report of a failed escrow, threshold 1 ms", golden: "report_failed.txt", write: func(w io.Writer) error {
			return instrument.WriteReport(w, b, instrument.Options{Width: 20, LeaseThresholdMs: 1})
		}},
		{name: "overlap of two escrows", golden: "overlap.txt", write: func(w io.Writer) error {
			return instrument.WriteOverlap(w, []instrument.Escrow{a, b}, 40)
		}},
		{name: "diff success vs failure", golden: "diff.txt", write: func(w io.Writer) error {
			return instrument.WriteDiff(w, instrument.Diff(a, b))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, tt.write(&buf))

			golden(t, tt.golden, buf.String())
			for _, l := range strings.Split(buf.String(), "\n") {
				assert.Equal(t, strings.TrimRight(l, " "), l, "no trailing spaces")
			}
		})
	}
}

func TestFlags(t *testing.T) {
	e := retried(t)
	tests := []struct {
		name          string
		giveThreshold int64
		want          []string
	}{
		{name: "default 100 ms", giveThreshold: 0, want: []string{
			"FLAG lease wait  e1 MAKING/vendor: LEASE ACQUIRED in 250ms with 250 > 100 (slot 7, attempt 3)",
			"FLAG lease wait  e1 EXCHANGING_2/buyer: LEASE ACQUIRED in 101ms with 101 > 100 (slot 12, attempt 1)",
		}},
		{name: "exactly the threshold is no flag", giveThreshold: 101, want: []string{
			"FLAG lease wait  e1 MAKING/vendor: LEASE ACQUIRED in 250ms with 250 > 101 (slot 7, attempt 3)",
		}},
		{name: "above every wait", giveThreshold: 250, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range instrument.Flags(e, tt.giveThreshold) {
				got = append(got, f.String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOverlap(t *testing.T) {
	one := build(t, "a", t0, nil) // 7.37 s
	tests := []struct {
		name     string
		give     []instrument.Escrow
		wantOK   bool
		wantLine string
	}{
		{name: "one escrow", give: []instrument.Escrow{one}, wantLine: "overlap: n/a (one escrow)"},
		{name: "three a second apart", give: []instrument.Escrow{one, build(t, "b", at(1000), nil), build(t, "c", at(2000), nil)},
			wantOK: true, wantLine: "overlap: yes, all 3 escrows were running from +2s to +7.37s (5.37s; latest start < earliest close)"},
		{name: "back to back", give: []instrument.Escrow{one, build(t, "b", at(7370), nil)},
			wantLine: "overlap: no, the latest start +7.37s is not before the earliest close +7.37s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, ok := instrument.Overlap(tt.give)
			var buf bytes.Buffer
			require.NoError(t, instrument.WriteOverlap(&buf, tt.give, 60))

			assert.Equal(t, tt.wantOK, ok)
			assert.Contains(t, buf.String(), tt.wantLine+"\n")
			assert.Len(t, roleRow.FindAllString(buf.String(), -1), 3*len(tt.give), "a row per escrow × role")
		})
	}
}

var roleRow = regexp.MustCompile(`(?m)^\S+ +(buyer|vendor|arbiter) +\S`)

func TestDiff(t *testing.T) {
	ok := build(t, "ok", t0, nil)
	tests := []struct {
		name      string
		a, b      instrument.Escrow
		wantFirst string // ROUND/role, "" for none
		wantDiffs []string
		wantRows  int
	}{
		{name: "identical outcomes, other timings", a: ok, b: build(t, "ok2", at(500), func(round, role string, s *historytest.Step) { s.RunMs += 300 }),
			wantRows: 18},
		{name: "success vs failure", a: ok, b: failedAt(t, "bad", 0),
			wantFirst: "MAKING/vendor", wantDiffs: []string{"status", "error"}, wantRows: 18},
		{name: "failure vs success", a: failedAt(t, "bad", 0), b: ok,
			wantFirst: "MAKING/vendor", wantDiffs: []string{"status", "error"}, wantRows: 18},
		{name: "a retried step", a: ok, b: retried(t),
			wantFirst: "MAKING/vendor", wantDiffs: []string{"attempts", "last failure"}, wantRows: 18},
		{name: "fewer steps", a: failedAt(t, "bad", 0), b: build(t, "cancelled", t0, func(round, role string, s *historytest.Step) {
			if round == "PREPARING" && role == "arbiter" {
				s.Cancel = true
			}
		}), wantFirst: "PREPARING/arbiter", wantDiffs: []string{"status"}, wantRows: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := instrument.Diff(tt.a, tt.b)

			assert.Len(t, c.Rows, tt.wantRows)
			if tt.wantFirst == "" {
				assert.Equal(t, -1, c.First)
				var buf bytes.Buffer
				require.NoError(t, instrument.WriteDiff(&buf, c))
				assert.Contains(t, buf.String(), "no divergence")
				return
			}
			require.GreaterOrEqual(t, c.First, 0)
			r := c.Rows[c.First]
			assert.Equal(t, tt.wantFirst, r.Round+"/"+r.Role)
			assert.Equal(t, tt.wantDiffs, r.Differences)
			for _, before := range c.Rows[:c.First] {
				assert.False(t, before.Diverges())
			}
		})
	}
	t.Run("steps only in one", func(t *testing.T) {
		c := instrument.Diff(ok, failedAt(t, "bad", 0))
		last := c.Rows[len(c.Rows)-1]
		assert.Equal(t, "VERIFYING/arbiter", last.Round+"/"+last.Role)
		assert.Nil(t, last.B)
		assert.Equal(t, []string{"only in A"}, last.Differences)
	})
}

// svgDoc is the part of an SVG document the test reads.
type svgDoc struct {
	XMLName xml.Name `xml:"svg"`
	NS      string   `xml:"xmlns,attr"`
	Width   int      `xml:"width,attr"`
	Height  int      `xml:"height,attr"`
	Rects   []struct {
		Class  string  `xml:"class,attr"`
		Round  string  `xml:"data-round,attr"`
		X      float64 `xml:"x,attr"`
		Width  float64 `xml:"width,attr"`
		Fill   string  `xml:"fill,attr"`
		Stroke string  `xml:"stroke,attr"`
		Title  string  `xml:"title"`
	} `xml:"rect"`
	Texts []struct {
		Class string `xml:"class,attr"`
		Text  string `xml:",chardata"`
	} `xml:"text"`
}

func TestWriteSVG(t *testing.T) {
	tests := []struct {
		name       string
		give       []instrument.Escrow
		wantSteps  int
		wantFailed int
	}{
		{name: "one escrow", give: []instrument.Escrow{retried(t)}, wantSteps: 18},
		{name: "three escrows, one failed", give: []instrument.Escrow{build(t, "a", t0, nil), failedAt(t, "b", 1000), retried(t)},
			wantSteps: 18 + 9 + 18, wantFailed: 1},
		{name: "an escrow id that needs escaping in XML would be rejected, but text is escaped anyway",
			give: []instrument.Escrow{func() instrument.Escrow { e := build(t, "x", t0, nil); e.EscrowID = `<&"x">`; return e }()}, wantSteps: 18},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, instrument.WriteSVG(&buf, tt.give))

			// Well-formed: every token decodes.
			dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
			for {
				_, err := dec.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
			}
			var doc svgDoc
			require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc))
			assert.Equal(t, "http://www.w3.org/2000/svg", doc.NS)
			assert.Positive(t, doc.Width)
			assert.Positive(t, doc.Height)
			counts := map[string]int{}
			failed := 0
			for _, r := range doc.Rects {
				counts[r.Class]++
				if r.Class == "step" {
					assert.GreaterOrEqual(t, r.Width, 1.0)
					assert.GreaterOrEqual(t, r.X, 0.0)
					assert.LessOrEqual(t, r.X+r.Width, float64(doc.Width))
					assert.Equal(t, instrument.RoundColors[indexOf(instrument.Rounds, r.Round)], r.Fill)
					assert.NotEmpty(t, r.Title)
					if r.Stroke != "" {
						failed++
					}
				}
			}
			assert.Equal(t, tt.wantSteps, counts["step"], "a bar per step")
			assert.Equal(t, len(instrument.Rounds)+1, counts["legend"], "a legend entry per round and one for failures")
			assert.Equal(t, tt.wantFailed, failed)
			ticks := 0
			for _, tx := range doc.Texts {
				if tx.Class == "tick-label" {
					ticks++
					assert.True(t, strings.HasPrefix(tx.Text, "+"), tx.Text)
				}
			}
			assert.GreaterOrEqual(t, ticks, 3, "a labelled time axis")
			assert.Equal(t, len(tt.give)*3, strings.Count(buf.String(), `class="row-label"`), "a row per escrow × role")
		})
	}
}

func indexOf(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return -1
}

func TestAnalyzeRecomputes(t *testing.T) {
	e := retried(t)
	e.Summary, e.Rounds = instrument.Summary{}, nil // as a hand-edited file might have it

	a := instrument.Analyze(e, instrument.Options{})

	assert.Equal(t, build(t, "e1", t0, func(round, role string, s *historytest.Step) {
		if round == "MAKING" && role == "vendor" {
			s.QueueMs, s.Attempts, s.LastFailure, s.LeaseWaitMs, s.Recovered = 3005, 3, "WalletUnavailable", 250, true
		}
		if round == "EXCHANGING_2" && role == "buyer" {
			s.LeaseWaitMs = 101
		}
	}).Summary, a.Summary)
	assert.Len(t, a.Rounds, 6)
	assert.Len(t, a.Flags, 2)
	assert.Equal(t, time.Duration(10270)*time.Millisecond, time.Duration(a.TotalMs)*time.Millisecond)
}

func TestOverlapKeepsShortRounds(t *testing.T) {
	e := build(t, "short", t0, func(round, role string, s *historytest.Step) {
		switch round {
		case "PREPARING", "VERIFYING":
			s.RunMs = 1
		case "CREATING":
			s.RunMs = 20000
		}
	})
	var buf bytes.Buffer
	require.NoError(t, instrument.WriteOverlap(&buf, []instrument.Escrow{e}, 40))

	rows := roleRow.FindAllString(buf.String(), -1)
	require.Len(t, rows, 3)
	for _, l := range strings.Split(buf.String(), "\n") {
		if !roleRow.MatchString(l) {
			continue
		}
		bar := strings.Fields(l)[2]
		for _, letter := range "CPM12V" {
			assert.Contains(t, bar, string(letter), "every round keeps a column: %q", l)
		}
	}
}
