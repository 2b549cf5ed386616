package instrument

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// DiffRow compares one round × role of two escrows. A or B is nil when the
// step exists in one escrow only.
type DiffRow struct {
	Round string `json:"round"`
	Role  string `json:"role"`
	A     *Step  `json:"a"`
	B     *Step  `json:"b"`
	// Differences names what differs beyond timing: "only in A",
	// "only in B", "status", "error", "attempts", "last failure".
	Differences []string `json:"differences,omitempty"`
}

// Diverges reports whether the step's outcome differs between A and B.
func (r DiffRow) Diverges() bool { return len(r.Differences) > 0 }

// Comparison is the step-by-step comparison of two escrows.
type Comparison struct {
	A, B Escrow `json:"-"`
	// EscrowA and EscrowB are the compared escrows' ids.
	EscrowA string    `json:"escrowA"`
	EscrowB string    `json:"escrowB"`
	Rows    []DiffRow `json:"rows"`
	// First is the index in Rows of the first step where the escrows
	// diverge (in round, then role order), -1 when none does.
	First int `json:"first"`
}

// Diff compares escrows a and b step by step, in round then role order:
// for each round × role present in either, both steps and what differs in
// their outcome (presence, status, error type, attempts, last failure
// type). Timing differences alone are not a divergence.
func Diff(a, b Escrow) Comparison {
	c := Comparison{A: a, B: b, EscrowA: a.EscrowID, EscrowB: b.EscrowID, First: -1}
	type key struct{ round, role string }
	var keys []key
	seen := map[key]bool{}
	stepsA, stepsB := map[key]*Step{}, map[key]*Step{}
	for _, side := range []struct {
		steps []Step
		into  map[key]*Step
	}{{a.Steps, stepsA}, {b.Steps, stepsB}} {
		for i := range side.steps {
			s := &side.steps[i]
			k := key{s.Round, s.Role}
			side.into[k] = s
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	// Stable order: round, then role (unknown ones last, by first sight).
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && less(keys[j].round, keys[j].role, keys[j-1].round, keys[j-1].role); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for _, k := range keys {
		row := DiffRow{Round: k.round, Role: k.role, A: stepsA[k], B: stepsB[k]}
		switch {
		case row.B == nil:
			row.Differences = []string{"only in A"}
		case row.A == nil:
			row.Differences = []string{"only in B"}
		default:
			if row.A.Status != row.B.Status {
				row.Differences = append(row.Differences, "status")
			}
			if row.A.ErrorType != row.B.ErrorType {
				row.Differences = append(row.Differences, "error")
			}
			if row.A.Attempts != row.B.Attempts {
				row.Differences = append(row.Differences, "attempts")
			}
			if row.A.LastFailureType != row.B.LastFailureType {
				row.Differences = append(row.Differences, "last failure")
			}
		}
		if row.Diverges() && c.First < 0 {
			c.First = len(c.Rows)
		}
		c.Rows = append(c.Rows, row)
	}
	return c
}

func less(roundA, roleA, roundB, roleB string) bool {
	if ra, rb := index(Rounds, roundA), index(Rounds, roundB); ra != rb {
		return ra < rb
	}
	return index(Roles, roleA) < index(Roles, roleB)
}

// describe says how row differs: "status completed vs failed; error - vs
// WalletRejected".
func (r DiffRow) describe() string {
	var parts []string
	for _, d := range r.Differences {
		switch d {
		case "status":
			parts = append(parts, fmt.Sprintf("status %s vs %s", r.A.Status, r.B.Status))
		case "error":
			parts = append(parts, fmt.Sprintf("error %s vs %s", orDash(r.A.ErrorType), orDash(r.B.ErrorType)))
		case "attempts":
			parts = append(parts, fmt.Sprintf("attempts %d vs %d", r.A.Attempts, r.B.Attempts))
		case "last failure":
			parts = append(parts, fmt.Sprintf("last failure %s vs %s", orDash(r.A.LastFailureType), orDash(r.B.LastFailureType)))
		default:
			parts = append(parts, d)
		}
	}
	return strings.Join(parts, "; ")
}

// WriteDiff writes the comparison: both escrows, a row per round × role
// (durations of A and B and B - A, attempts, statuses, error types, what
// differs), the first step where they diverge, and their totals.
func WriteDiff(w io.Writer, c Comparison) error {
	var buf bytes.Buffer
	for _, side := range []struct {
		name string
		e    Escrow
	}{{"A", c.A}, {"B", c.B}} {
		fmt.Fprintf(&buf, "%s  %s  %s  total %s  run %s\n", side.name, side.e.EscrowID, stateText(side.e), dur(side.e.TotalMs), side.e.RunID)
	}
	buf.WriteString("\n")
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUND\tROLE\tA\tB\tB-A\tA ATT\tB ATT\tA STATUS\tB STATUS\tA ERROR\tB ERROR\tDIFFERS")
	for i, r := range c.Rows {
		da, db, delta, aa, ab, sa, sb, ea, eb := "-", "-", "-", "-", "-", "-", "-", "-", "-"
		if r.A != nil {
			da, aa, sa, ea = dur(r.A.DurationMs), fmt.Sprint(r.A.Attempts), r.A.Status, orDash(r.A.ErrorType)
		}
		if r.B != nil {
			db, ab, sb, eb = dur(r.B.DurationMs), fmt.Sprint(r.B.Attempts), r.B.Status, orDash(r.B.ErrorType)
		}
		if r.A != nil && r.B != nil {
			delta = signed(r.B.DurationMs - r.A.DurationMs)
		}
		note := strings.Join(r.Differences, ", ")
		if i == c.First {
			note = "<< first divergence: " + note
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Round, r.Role, da, db, delta, aa, ab, sa, sb, ea, eb, note)
	}
	tw.Flush()
	buf.WriteString("\n")
	if c.First < 0 {
		buf.WriteString("no divergence: the same steps with the same statuses, errors and attempts\n")
	} else {
		r := c.Rows[c.First]
		fmt.Fprintf(&buf, "first divergence: %s/%s: %s\n", r.Round, r.Role, r.describe())
	}
	if c.A.State != c.B.State || c.A.ReasonType != c.B.ReasonType {
		fmt.Fprintf(&buf, "outcome: A %s, B %s\n", stateText(c.A), stateText(c.B))
	}
	sa, sb := Analyze(c.A, Options{}).Summary, Analyze(c.B, Options{}).Summary
	fmt.Fprintf(&buf, "total: A %s, B %s (B-A %s)\n", dur(c.A.TotalMs), dur(c.B.TotalMs), signed(c.B.TotalMs-c.A.TotalMs))
	fmt.Fprintf(&buf, "retried steps: A %d, B %d; max lease wait: A %s, B %s; total lease wait: A %s, B %s\n",
		sa.Retried, sb.Retried, dur(sa.MaxLeaseWaitMs), dur(sb.MaxLeaseWaitMs), dur(sa.TotalLeaseWaitMs), dur(sb.TotalLeaseWaitMs))
	return lines(w, buf.String())
}
