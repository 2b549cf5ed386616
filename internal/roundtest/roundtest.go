// Package roundtest holds round-timing fixtures shared by the tests of the
// packages that render or judge setup timelines (instrument, seedcheck,
// escrowctl).
package roundtest

import (
	"time"

	"github.com/escrowflow/escrowflow/escrow"
)

// T0 is the fixtures' start time.
var T0 = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

// At returns T0 plus n milliseconds.
func At(n int) time.Time { return T0.Add(time.Duration(n) * time.Millisecond) }

// StdRounds is one escrow's six rounds starting at +startMs: the three
// roles start together and finish 0, 100 and 200 ms apart; the next round
// starts when the slowest role finished.
func StdRounds(startMs int) []escrow.RoundTiming {
	steps := []struct {
		round escrow.Round
		ms    int
	}{
		{escrow.RoundCreate, 2000}, {escrow.RoundPrepare, 800}, {escrow.RoundMake, 1800},
		{escrow.RoundExchange1, 800}, {escrow.RoundExchange2, 1800}, {escrow.RoundVerify, 800},
	}
	var out []escrow.RoundTiming
	s := startMs
	for _, st := range steps {
		for i, role := range escrow.Roles {
			out = append(out, escrow.RoundTiming{Round: st.round, Role: role, Started: At(s), Finished: At(s + st.ms + 100*i)})
		}
		s += st.ms + 200
	}
	return out
}
