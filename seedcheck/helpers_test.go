package seedcheck

import "github.com/escrowflow/escrowflow/internal/roundtest"

// The round-timing fixtures these tests share with instrument's.
var (
	t0        = roundtest.T0
	ms        = roundtest.At
	stdRounds = roundtest.StdRounds
)
