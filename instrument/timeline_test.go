package instrument

import (
	"testing"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/roundtest"
	"github.com/stretchr/testify/assert"
)

// The round-timing fixtures these tests share with seedcheck's and
// escrowctl's.
var (
	atMs      = roundtest.At
	stdRounds = roundtest.StdRounds
)

// timing is one role's run of a round from +fromMs to +toMs.
func timing(r escrow.Round, role escrow.Role, fromMs, toMs int) escrow.RoundTiming {
	return escrow.RoundTiming{Round: r, Role: role, Started: atMs(fromMs), Finished: atMs(toMs)}
}

func TestRenderTimeline(t *testing.T) {
	const legend = "C=CREATING P=PREPARING M=MAKING 1=EXCHANGING_1 2=EXCHANGING_2 V=VERIFYING; . = between rounds"
	tests := []struct {
		name        string
		give        []EscrowRounds
		giveWidth   int
		want        []string
		wantOverlap bool
	}{
		{
			name: "three escrows a second apart overlap",
			give: []EscrowRounds{
				{EscrowID: "e1", Rounds: stdRounds(0)},
				{EscrowID: "e2", Rounds: stdRounds(1000)},
				{EscrowID: "escrow-three", Rounds: stdRounds(2000)},
			},
			giveWidth: 40,
			want: []string{
				"timeline: 1 column = 280ms; " + legend,
				"              0s               5s                10s",
				"escrow        |----------------|-----------------|----",
				"e1            CCCCCCCPPPPMMMMMMM11112222222VVVV",
				"e2               CCCCCCCCPPPPMMMMMMM1112222222VVVVV",
				"escrow-three         CCCCCCCCPPPMMMMMMM11112222222VVVV",
				"",
				"wall  e1            9.2s       +0s .. +9.2s",
				"wall  e2            9.2s       +1s .. +10.2s",
				"wall  escrow-three  9.2s       +2s .. +11.2s",
				"batch               11.2s",
				"overlap: yes, all 3 escrows were running from +2s to +9.2s (max start < min finish)",
			},
			wantOverlap: true,
		},
		{
			name: "back to back do not overlap; failed escrow without timings",
			give: []EscrowRounds{
				{EscrowID: "e1", Rounds: stdRounds(0)},
				{EscrowID: "e2", Rounds: stdRounds(9200)},
				{EscrowID: "e3"},
			},
			giveWidth: 40,
			want: []string{
				"timeline: 1 column = 460ms; " + legend,
				"        0s        5s         10s        15s",
				"escrow  |---------|----------|----------|-------",
				"e1      CCCCPPMMMMM112222VVV",
				"e2                          CCCCPPMMMMM112222VVV",
				"e3      (no round timings)",
				"",
				"wall  e1      9.2s       +0s .. +9.2s",
				"wall  e2      9.2s       +9.2s .. +18.4s",
				"batch         18.4s",
				"overlap: no, the latest start +9.2s is not before the earliest finish +9.2s",
			},
		},
		{
			name: "one escrow with a gap between rounds, roles out of order",
			give: []EscrowRounds{{EscrowID: "solo", Rounds: []escrow.RoundTiming{
				timing(escrow.RoundMake, escrow.Vendor, 3000, 4000),
				timing(escrow.RoundCreate, escrow.Buyer, 0, 1000),
				timing(escrow.RoundMake, escrow.Buyer, 3000, 3500),
				timing(escrow.RoundCreate, escrow.Vendor, 0, 800),
			}}},
			giveWidth: 10,
			want: []string{
				"timeline: 1 column = 400ms; " + legend,
				"        0s",
				"escrow  |---------",
				"solo    CCC....MMM",
				"",
				"wall  solo    4s         +0s .. +4s",
				"batch         4s",
				"overlap: n/a (one escrow with timings)",
			},
		},
		{
			name: "a short round keeps one column",
			give: []EscrowRounds{
				{EscrowID: "a", Rounds: []escrow.RoundTiming{
					timing(escrow.RoundCreate, escrow.Buyer, 0, 5000),
					timing(escrow.RoundPrepare, escrow.Buyer, 5000, 5010),
					timing(escrow.RoundMake, escrow.Buyer, 5010, 10000),
				}},
				{EscrowID: "b", Rounds: []escrow.RoundTiming{timing(escrow.RoundVerify, escrow.Arbiter, 9000, 9500)}},
			},
			giveWidth: 20,
			want: []string{
				"timeline: 1 column = 500ms; " + legend,
				"        0s        5s",
				"escrow  |---------|---------",
				"a       CCCCCCCCCCPMMMMMMMMM",
				"b                         V",
				"",
				"wall  a       10s        +0s .. +10s",
				"wall  b       500ms      +9s .. +9.5s",
				"batch         10s",
				"overlap: yes, all 2 escrows were running from +9s to +9.5s (max start < min finish)",
			},
			wantOverlap: true,
		},
		{
			name:      "nothing to draw",
			give:      []EscrowRounds{{EscrowID: "x"}},
			giveWidth: 40,
			want:      []string{"timeline: no round timings"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RenderTimeline(tt.give, tt.giveWidth)

			assert.Equal(t, tt.want, got.Lines)
			assert.Equal(t, tt.wantOverlap, got.Overlap)
		})
	}
}

func TestTickStep(t *testing.T) {
	tests := []struct {
		give      time.Duration
		giveWidth int
		want      time.Duration
	}{
		{give: 11200 * time.Millisecond, giveWidth: 40, want: 5 * time.Second},
		{give: 15 * time.Second, giveWidth: 60, want: 5 * time.Second},
		{give: 60 * time.Second, giveWidth: 60, want: 10 * time.Second},
		{give: 90 * time.Second, giveWidth: 60, want: 15 * time.Second},
		{give: 300 * time.Millisecond, giveWidth: 60, want: 50 * time.Millisecond},
		{give: 3 * time.Hour, giveWidth: 60, want: 30 * time.Minute},
		{give: 6 * time.Hour, giveWidth: 60, want: time.Hour},
		{give: 30 * time.Hour, giveWidth: 60, want: 5 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.give.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, tickStep(tt.give, tt.giveWidth))
		})
	}
}

func TestOverlap(t *testing.T) {
	sp := func(from, to int) Span { return Span{Start: atMs(from), End: atMs(to)} }
	tests := []struct {
		name       string
		give       []Span
		want       bool
		wantCommon Span
	}{
		{name: "none", give: nil},
		{name: "one", give: []Span{sp(0, 10)}},
		{name: "staggered", give: []Span{sp(0, 10), sp(2, 12), sp(4, 14)}, want: true, wantCommon: sp(4, 10)},
		{name: "nested", give: []Span{sp(0, 10), sp(3, 4)}, want: true, wantCommon: sp(3, 4)},
		{name: "identical", give: []Span{sp(0, 10), sp(0, 10)}, want: true, wantCommon: sp(0, 10)},
		{name: "touching", give: []Span{sp(0, 10), sp(10, 20)}, wantCommon: sp(10, 10)},
		{name: "pairwise but not all at once", give: []Span{sp(0, 10), sp(5, 15), sp(12, 20)}, wantCommon: sp(12, 10)},
		{name: "disjoint", give: []Span{sp(0, 10), sp(11, 20)}, wantCommon: sp(11, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			common, got := CommonSpan(tt.give)

			assert.Equal(t, tt.want, got)
			if len(tt.give) >= 2 {
				assert.Equal(t, tt.wantCommon, common)
			}
		})
	}
}
