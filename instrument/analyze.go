package instrument

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
)

// DefaultLeaseThresholdMs is the lease wait above which Flags reports a
// step: the old design's "LOCK ACQUIRED in XXXms with XXX > 100".
const DefaultLeaseThresholdMs = 100

// DefaultWidth is the default width of the text timelines, in columns.
const DefaultWidth = 60

// Options tune the text analysis.
type Options struct {
	// LeaseThresholdMs: lease waits above it are flagged (0: default 100).
	LeaseThresholdMs int64
	// Width of the timeline bars in columns (< 10: DefaultWidth).
	Width int
}

func (o Options) threshold() int64 {
	if o.LeaseThresholdMs <= 0 {
		return DefaultLeaseThresholdMs
	}
	return o.LeaseThresholdMs
}

func (o Options) width() int {
	if o.Width < 10 {
		return DefaultWidth
	}
	return o.Width
}

// Flag is a step whose lease wait exceeded the threshold: wallet-rpc
// processes were contended.
type Flag struct {
	EscrowID    string `json:"escrowId"`
	Round       string `json:"round"`
	Role        string `json:"role"`
	LeaseWaitMs int64  `json:"leaseWaitMs"`
	ThresholdMs int64  `json:"thresholdMs"`
	Slot        *int   `json:"slot,omitempty"`
	Attempts    int32  `json:"attempts"`
}

// String renders the flag like the old design's log line.
func (f Flag) String() string {
	slot := "?"
	if f.Slot != nil {
		slot = fmt.Sprint(*f.Slot)
	}
	return fmt.Sprintf("FLAG lease wait  %s %s/%s: LEASE ACQUIRED in %dms with %d > %d (slot %s, attempt %d)",
		f.EscrowID, f.Round, f.Role, f.LeaseWaitMs, f.LeaseWaitMs, f.ThresholdMs, slot, f.Attempts)
}

// Flags returns e's steps whose lease wait exceeded thresholdMs (0: 100),
// in step order.
func Flags(e Escrow, thresholdMs int64) []Flag {
	thresholdMs = Options{LeaseThresholdMs: thresholdMs}.threshold()
	var out []Flag
	for _, s := range e.Steps {
		if s.LeaseWaitMs > thresholdMs {
			out = append(out, Flag{EscrowID: e.EscrowID, Round: s.Round, Role: s.Role, LeaseWaitMs: s.LeaseWaitMs,
				ThresholdMs: thresholdMs, Slot: s.Slot, Attempts: s.Attempts})
		}
	}
	return out
}

// Analysis is the machine-readable result of analyzing one export.
type Analysis struct {
	EscrowID   string  `json:"escrowId"`
	State      string  `json:"state"`
	ReasonType string  `json:"reasonType,omitempty"`
	TotalMs    int64   `json:"totalMs"`
	Rounds     []Round `json:"rounds"`
	Summary    Summary `json:"summary"`
	Flags      []Flag  `json:"flags"`
}

// Analyze recomputes e's rounds and summary from its steps and flags its
// long lease waits.
func Analyze(e Escrow, opt Options) Analysis {
	Derive(&e)
	flags := Flags(e, opt.threshold())
	if flags == nil {
		flags = []Flag{}
	}
	return Analysis{EscrowID: e.EscrowID, State: e.State, ReasonType: e.ReasonType, TotalMs: e.TotalMs,
		Rounds: e.Rounds, Summary: e.Summary, Flags: flags}
}

// roundLetter is the timeline letter of a round.
func roundLetter(round string) byte {
	if i := index(Rounds, round); i < len(Rounds) {
		return "CPM12V"[i]
	}
	if round == "" {
		return '?'
	}
	return round[0]
}

func legend() string {
	parts := make([]string, len(Rounds))
	for i, r := range Rounds {
		parts[i] = fmt.Sprintf("%c=%s", roundLetter(r), r)
	}
	return strings.Join(parts, " ")
}

// dur formats milliseconds as a Go duration: 250ms, 1.205s.
func dur(msec int64) string { return (time.Duration(msec) * time.Millisecond).String() }

// signed formats a difference with its sign: +100ms, -1.05s, 0s.
func signed(msec int64) string {
	if msec > 0 {
		return "+" + dur(msec)
	}
	return dur(msec)
}

// end is when e closed, or its last event for a RUNNING export.
func (e Escrow) end() time.Time { return e.Started.Add(time.Duration(e.TotalMs) * time.Millisecond) }

// axis maps times to columns of a text timeline.
type axis struct {
	t0    time.Time
	total time.Duration
	width int
}

func newAxis(from, to time.Time, width int) axis {
	total := to.Sub(from)
	if total <= 0 {
		total = time.Millisecond
	}
	return axis{t0: from, total: total, width: width}
}

// col is the column t falls in, clamped to the axis.
func (a axis) col(t time.Time) int {
	c := int(int64(t.Sub(a.t0)) * int64(a.width) / int64(a.total))
	return min(max(c, 0), a.width-1)
}

// endCol is one past the last column t reaches, clamped to the axis.
func (a axis) endCol(t time.Time) int {
	n := int64(t.Sub(a.t0)) * int64(a.width)
	c := n / int64(a.total)
	if n%int64(a.total) > 0 {
		c++
	}
	return min(max(int(c), 0), a.width)
}

// paint draws step s into cells: '.' (on blank cells only) from scheduled
// to its last attempt's start, then its round letter (x when it failed)
// to its close (or the axis end while open), at least one column and
// starting no earlier than column first, so that a short step painted
// after another one on the same row keeps a column. It returns the column
// after the step's first letter.
func (a axis) paint(cells []byte, s Step, first int) int {
	if s.Scheduled.IsZero() {
		return first
	}
	end := s.Closed
	if end.IsZero() {
		end = a.t0.Add(a.total)
	}
	start := s.Started
	if start.IsZero() {
		start = end
	}
	for c := a.col(s.Scheduled); c < a.endCol(start); c++ {
		if cells[c] == ' ' {
			cells[c] = '.'
		}
	}
	letter := roundLetter(s.Round)
	switch s.Status {
	case StatusFailed, StatusTimedOut, StatusCancelled:
		letter = 'x'
	case StatusScheduled:
		return first
	}
	from := min(max(a.col(start), first), a.width-1)
	for c := from; c < min(max(a.endCol(end), from+1), a.width); c++ {
		cells[c] = letter
	}
	return from + 1
}

func (a axis) ruler() (labels, ruler string) {
	step := tickStep(a.total, a.width)
	lb := []byte(strings.Repeat(" ", a.width+16))
	rl := []byte(strings.Repeat("-", a.width))
	for k := time.Duration(0); k == 0 || k*step < a.total; k++ {
		c := int(int64(k*step) * int64(a.width) / int64(a.total))
		if c >= a.width {
			break
		}
		rl[c] = '|'
		copy(lb[c:], offset(k*step))
	}
	return strings.TrimRight(string(lb), " "), string(rl)
}

// minTickGap is the least number of columns between two ticks.
const minTickGap = 10

var tickSteps = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
}

// tickStep is the smallest tick interval that keeps ticks gap columns
// apart on an axis of width columns spanning total.
func tickStep(total time.Duration, width int) time.Duration {
	least := total * minTickGap / time.Duration(width)
	for _, s := range tickSteps {
		if s >= least {
			return s
		}
	}
	return (least + time.Hour - 1) / time.Hour * time.Hour
}

// offset formats an offset on an axis: to 10 ms below 10 s, to 100 ms
// below 10 min, else to the second.
func offset(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < 10*time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// lines writes text with trailing spaces removed from every line.
func lines(w io.Writer, text string) error {
	ls := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, " ")
	}
	_, err := io.WriteString(w, strings.Join(ls, "\n")+"\n")
	return err
}

func stateText(e Escrow) string {
	if e.ReasonType != "" && !(e.State == StateCancelled && e.ReasonType == escrow.TypeCancelled) {
		return e.State + " (" + e.ReasonType + ")"
	}
	return e.State
}

// plural formats a count of things: "1 lease wait", "2 lease waits".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func slotText(s *int) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprint(*s)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// WriteReport writes the analysis of one escrow: a header, a timeline with
// a row per round × role (start offset, queue, run and total time,
// attempts, lease wait, wallet-rpc time, slot, status, error and a bar on
// the escrow's own time axis), the summary (total, per-round critical
// path, retries, lease waits) and a FLAG line per lease wait over the
// threshold. Lines carry no trailing spaces.
func WriteReport(w io.Writer, e Escrow, opt Options) error {
	a := Analyze(e, opt)
	ax := newAxis(e.Started, e.end(), opt.width())
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "escrow %s  %s  total %s\n", e.EscrowID, stateText(e), dur(e.TotalMs))
	fmt.Fprintf(&buf, "  workflow %s  run %s\n", e.WorkflowID, e.RunID)
	fmt.Fprintf(&buf, "  started %s  closed %s\n\n", stamp(e.Started), stamp(e.Closed))

	if len(e.Steps) == 0 {
		fmt.Fprintf(&buf, "  no per-role steps: the escrow ended before its first round\n")
	} else {
		writeSteps(&buf, e, ax)
	}

	sum := a.Summary
	fmt.Fprintf(&buf, "\n  summary\n")
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "    total\t%s (critical path %s in rounds + %s outside rounds)\n",
		dur(e.TotalMs), dur(sum.CriticalPathMs), dur(sum.OutsideRoundsMs))
	if len(a.Rounds) > 0 {
		fmt.Fprintf(tw, "    critical path\tROUND\tSPAN\tCRITICAL ROLE\n")
	}
	for _, r := range a.Rounds {
		note := ""
		if !r.Complete {
			note = "\t(not every role closed)"
		}
		fmt.Fprintf(tw, "    \t%s\t%s\t%s %s%s\n", r.Round, dur(r.SpanMs), r.CriticalRole, dur(r.CriticalMs), note)
	}
	if sum.Retried == 0 {
		fmt.Fprintf(tw, "    retries\tnone\n")
	} else {
		var rs []string
		for _, s := range e.Steps {
			if s.Attempts > 1 {
				r := fmt.Sprintf("%s %d attempts", s.Key(), s.Attempts)
				if s.LastFailureType != "" {
					r += " (last failure " + s.LastFailureType + ")"
				}
				rs = append(rs, r)
			}
		}
		fmt.Fprintf(tw, "    retries\t%d of %d steps retried, %d extra attempts: %s\n", sum.Retried, sum.Steps, sum.ExtraAttempts, strings.Join(rs, ", "))
	}
	maxAt := ""
	if sum.MaxLeaseWaitStep != "" {
		maxAt = " at " + sum.MaxLeaseWaitStep
	}
	fmt.Fprintf(tw, "    lease wait\tmax %s%s, total %s\n", dur(sum.MaxLeaseWaitMs), maxAt, dur(sum.TotalLeaseWaitMs))
	fmt.Fprintf(tw, "    wallet-rpc\ttotal %s; %d of %d steps recovered from a snapshot\n", dur(sum.TotalRPCMs), sum.Recovered, sum.Steps)
	if sum.Failed > 0 {
		fmt.Fprintf(tw, "    failed steps\t%d\n", sum.Failed)
	}
	if len(a.Flags) == 0 {
		fmt.Fprintf(tw, "    flags\tnone (no lease wait over %dms)\n", opt.threshold())
	} else {
		fmt.Fprintf(tw, "    flags\t%s over %dms\n", plural(len(a.Flags), "lease wait"), opt.threshold())
	}
	tw.Flush()
	for _, f := range a.Flags {
		fmt.Fprintf(&buf, "  %s\n", f)
	}
	return lines(w, buf.String())
}

// writeSteps writes the timeline table of e's steps on axis ax.
func writeSteps(buf *bytes.Buffer, e Escrow, ax axis) {
	fmt.Fprintf(buf, "  timeline: 1 column = %s; %s; . = queued or retrying; x = failed\n",
		offset(ax.total/time.Duration(ax.width)), legend())
	labels, ruler := ax.ruler()
	tw := tabwriter.NewWriter(buf, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  \t\t\t\t\t\t\t\t\t\t\t\t\t%s\n", labels)
	fmt.Fprintf(tw, "  ROUND\tROLE\tSTART\tQUEUE\tRUN\tTOTAL\tATT\tLEASE\tRPC\tSLOT\tSTATUS\tERROR\t%s\n", ruler)
	for _, s := range e.Steps {
		cells := []byte(strings.Repeat(" ", ax.width))
		ax.paint(cells, s, 0)
		errText := orDash(s.ErrorType)
		switch {
		case s.LastFailureType != "" && s.ErrorType == "":
			errText = "(retried after " + s.LastFailureType + ")"
		case s.LastFailureType != "":
			errText += " (retried after " + s.LastFailureType + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t+%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Round, s.Role,
			dur(ms(s.Scheduled.Sub(e.Started))), dur(s.QueueMs), dur(s.RunMs), dur(s.DurationMs), s.Attempts,
			dur(s.LeaseWaitMs), dur(s.RPCMs), slotText(s.Slot), s.Status, errText, strings.TrimRight(string(cells), " "))
	}
	tw.Flush()
}

// Overlap reports whether all spans share a moment: the latest start is
// before the earliest end. ok is false for fewer than two spans.
func Overlap(es []Escrow) (from, to time.Time, ok bool) {
	if len(es) < 2 {
		return time.Time{}, time.Time{}, false
	}
	from, to = es[0].Started, es[0].end()
	for _, e := range es[1:] {
		if e.Started.After(from) {
			from = e.Started
		}
		if e.end().Before(to) {
			to = e.end()
		}
	}
	return from, to, from.Before(to)
}

// WriteOverlap writes how escrows ran together: a timeline on a shared
// axis with a row per escrow × role, each escrow's span, and whether all
// escrows were running at one moment ("overlap: yes/no, from..to").
func WriteOverlap(w io.Writer, es []Escrow, width int) error {
	if len(es) == 0 {
		return lines(w, "shared timeline: no escrows")
	}
	width = Options{Width: width}.width()
	first, last := es[0].Started, es[0].end()
	nameWidth := len("escrow")
	for _, e := range es {
		if e.Started.Before(first) {
			first = e.Started
		}
		if e.end().After(last) {
			last = e.end()
		}
		nameWidth = max(nameWidth, len(e.EscrowID))
	}
	ax := newAxis(first, last, width)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "shared timeline: %d escrows, 1 column = %s; %s; . = queued or retrying; x = failed\n",
		len(es), offset(ax.total/time.Duration(width)), legend())
	labels, ruler := ax.ruler()
	pad := strings.Repeat(" ", nameWidth+2+len("arbiter")+2)
	fmt.Fprintf(&buf, "%s%s\n", pad, labels)
	fmt.Fprintf(&buf, "%-*s  %-7s  %s\n", nameWidth, "escrow", "role", ruler)
	for _, e := range es {
		for _, role := range Roles {
			cells := []byte(strings.Repeat(" ", width))
			first := 0
			for _, s := range e.Steps { // in round order
				if s.Role == role {
					first = ax.paint(cells, s, first)
				}
			}
			fmt.Fprintf(&buf, "%-*s  %-7s  %s\n", nameWidth, e.EscrowID, role, cells)
		}
	}
	buf.WriteString("\n")
	for _, e := range es {
		fmt.Fprintf(&buf, "span  %-*s  %-9s  +%s .. +%s  %s\n", nameWidth, e.EscrowID, dur(e.TotalMs),
			offset(e.Started.Sub(first)), offset(e.end().Sub(first)), stateText(e))
	}
	fmt.Fprintf(&buf, "batch %-*s  %s\n", nameWidth, "", dur(ms(last.Sub(first))))
	from, to, ok := Overlap(es)
	switch {
	case len(es) < 2:
		buf.WriteString("overlap: n/a (one escrow)\n")
	case ok:
		fmt.Fprintf(&buf, "overlap: yes, all %d escrows were running from +%s to +%s (%s; latest start < earliest close)\n",
			len(es), offset(from.Sub(first)), offset(to.Sub(first)), dur(ms(to.Sub(from))))
	default:
		fmt.Fprintf(&buf, "overlap: no, the latest start +%s is not before the earliest close +%s\n",
			offset(from.Sub(first)), offset(to.Sub(first)))
	}
	return lines(w, buf.String())
}
