package instrument

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
)

// EscrowRounds is one escrow's round timings.
type EscrowRounds struct {
	EscrowID string
	Rounds   []escrow.RoundTiming
}

// Span is a time interval.
type Span struct{ Start, End time.Time }

// Duration is End - Start.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// RoundSpan is one round of one escrow: from its first role's start to its
// last role's finish.
type RoundSpan struct {
	Round escrow.Round
	Span
}

// RoundSpans groups timings by round, ordered by start.
func RoundSpans(timings []escrow.RoundTiming) []RoundSpan {
	var out []RoundSpan
	idx := map[escrow.Round]int{}
	for _, t := range timings {
		i, ok := idx[t.Round]
		if !ok {
			idx[t.Round] = len(out)
			out = append(out, RoundSpan{Round: t.Round, Span: Span{Start: t.Started, End: t.Finished}})
			continue
		}
		if t.Started.Before(out[i].Start) {
			out[i].Start = t.Started
		}
		if t.Finished.After(out[i].End) {
			out[i].End = t.Finished
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// EscrowSpan returns the Span of all rounds; ok is false without rounds.
func EscrowSpan(rounds []RoundSpan) (s Span, ok bool) {
	for i, r := range rounds {
		if i == 0 || r.Start.Before(s.Start) {
			s.Start = r.Start
		}
		if i == 0 || r.End.After(s.End) {
			s.End = r.End
		}
	}
	return s, len(rounds) > 0
}

// CommonSpan reports whether all spans share a moment: the latest start is
// before the earliest end. It is false for fewer than two spans.
func CommonSpan(spans []Span) (common Span, ok bool) {
	if len(spans) < 2 {
		return Span{}, false
	}
	common = spans[0]
	for _, s := range spans[1:] {
		if s.Start.After(common.Start) {
			common.Start = s.Start
		}
		if s.End.Before(common.End) {
			common.End = s.End
		}
	}
	return common, common.Start.Before(common.End)
}

// Timeline is a rendered timeline.
type Timeline struct {
	Lines []string
	// Overlap reports whether all escrows with timings ran at one moment
	// (max start < min finish); false for fewer than two.
	Overlap bool
	// Batch is the earliest start to the latest finish.
	Batch Span
}

// RenderTimeline draws an ASCII Gantt chart of the escrows' rounds: one row
// per escrow on a shared time axis of width columns from the earliest
// start, each round drawn with its letter in at least one column and gaps
// between rounds as '.',
// followed by each escrow's wall time, the batch's, and whether the escrows
// overlapped. Escrows without timings get a row saying so and are left out
// of the batch and the overlap. Lines carry no trailing spaces.
func RenderTimeline(escrows []EscrowRounds, width int) Timeline {
	width = max(width, 10)
	type row struct {
		id     string
		rounds []RoundSpan
		span   Span
		ok     bool
	}
	rows := make([]row, len(escrows))
	var spans []Span
	var tl Timeline
	nameWidth := len("escrow")
	for i, e := range escrows {
		rows[i] = row{id: e.EscrowID, rounds: RoundSpans(e.Rounds)}
		rows[i].span, rows[i].ok = EscrowSpan(rows[i].rounds)
		nameWidth = max(nameWidth, len(e.EscrowID))
		if !rows[i].ok {
			continue
		}
		if len(spans) == 0 || rows[i].span.Start.Before(tl.Batch.Start) {
			tl.Batch.Start = rows[i].span.Start
		}
		if len(spans) == 0 || rows[i].span.End.After(tl.Batch.End) {
			tl.Batch.End = rows[i].span.End
		}
		spans = append(spans, rows[i].span)
	}
	if len(spans) == 0 {
		tl.Lines = []string{"timeline: no round timings"}
		return tl
	}

	t0, total := tl.Batch.Start, tl.Batch.Duration()
	if total <= 0 {
		total = time.Nanosecond
	}
	col := func(t time.Time) int { // the column t falls in
		return int(int64(t.Sub(t0)) * int64(width) / int64(total))
	}
	endCol := func(t time.Time) int { // one past the last column t reaches
		n := int64(t.Sub(t0)) * int64(width)
		c := n / int64(total)
		if n%int64(total) != 0 {
			c++
		}
		return int(c)
	}
	pad := strings.Repeat(" ", nameWidth+2)
	add := func(format string, args ...any) {
		tl.Lines = append(tl.Lines, strings.TrimRight(fmt.Sprintf(format, args...), " "))
	}

	add("timeline: 1 column = %s; %s; . = between rounds", offset(total/time.Duration(width)), legend())

	// Ticks at round offsets at least minTickGap columns apart, labelled.
	step := tickStep(total, width)
	labels := []byte(strings.Repeat(" ", width+16))
	ruler := []byte(strings.Repeat("-", width))
	for k := time.Duration(0); k*step < total || k == 0; k++ {
		c := col(t0.Add(k * step))
		if c >= width {
			break
		}
		ruler[c] = '|'
		copy(labels[c:], offset(k*step))
	}
	add("%s%s", pad, labels)
	add("%-*s  %s", nameWidth, "escrow", ruler)

	for _, r := range rows {
		if !r.ok {
			add("%-*s  (no round timings)", nameWidth, r.id)
			continue
		}
		cells := []byte(strings.Repeat(" ", width))
		for c := col(r.span.Start); c < min(endCol(r.span.End), width); c++ {
			cells[c] = '.'
		}
		// A round paints from its start column to the column its end
		// reaches, over the previous round's tail but never over the
		// previous round's first column: every round keeps a column.
		first := 0
		for _, rs := range r.rounds {
			s := min(max(col(rs.Start), first), width-1)
			e := min(max(endCol(rs.End), s+1), width)
			for c := s; c < e; c++ {
				cells[c] = roundLetter(string(rs.Round))
			}
			first = s + 1
		}
		add("%-*s  %s", nameWidth, r.id, cells)
	}

	add("")
	for _, r := range rows {
		if r.ok {
			add("wall  %-*s  %-9s  +%s .. +%s", nameWidth, r.id, Wall(r.span.Duration()),
				offset(r.span.Start.Sub(t0)), offset(r.span.End.Sub(t0)))
		}
	}
	add("batch %-*s  %s", nameWidth, "", Wall(tl.Batch.Duration()))

	common, ok := CommonSpan(spans)
	tl.Overlap = ok
	switch {
	case len(spans) < 2:
		add("overlap: n/a (one escrow with timings)")
	case ok:
		add("overlap: yes, all %d escrows were running from +%s to +%s (max start < min finish)",
			len(spans), offset(common.Start.Sub(t0)), offset(common.End.Sub(t0)))
	default:
		add("overlap: no, the latest start +%s is not before the earliest finish +%s",
			offset(common.Start.Sub(t0)), offset(common.End.Sub(t0)))
	}
	return tl
}

// Wall formats a wall time to the millisecond.
func Wall(d time.Duration) string { return d.Round(time.Millisecond).String() }
