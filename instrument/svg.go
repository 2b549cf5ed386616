package instrument

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"time"
)

// RoundColors are the bar colours of the rounds, in round order.
var RoundColors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948"}

// FailedColor outlines failed, timed-out and cancelled steps.
const FailedColor = "#e15759"

// SVG layout, in pixels.
const (
	svgLabelW  = 280 // label column, at least
	svgChartW  = 840 // time axis
	svgMarginR = 30
	svgTop     = 56 // title and axis labels
	svgRowH    = 16
	svgRowGap  = 4
	svgEscGap  = 16 // between escrows
	svgLegendH = 62
	svgMinTick = 80 // least pixels between ticks
)

func roundColor(round string) string {
	if i := index(Rounds, round); i < len(Rounds) {
		return RoundColors[i]
	}
	return "#999999"
}

// WriteSVG draws a Gantt timeline of escrows as a standalone SVG document:
// a row per escrow × role, the escrows stacked in the order given, one bar
// per step from scheduled to closed (class "step", coloured by round,
// outlined red when it failed, with a tooltip of its figures; the part
// before its last attempt started drawn pale), a shared
// time axis with ticks and labels, and a legend of the rounds.
func WriteSVG(w io.Writer, es []Escrow) error {
	var first, last time.Time
	for i, e := range es {
		if i == 0 || e.Started.Before(first) {
			first = e.Started
		}
		if i == 0 || e.end().After(last) {
			last = e.end()
		}
	}
	total := last.Sub(first)
	if total <= 0 {
		total = time.Millisecond
	}
	labelW := svgLabelW
	for _, e := range es {
		labelW = max(labelW, 10+7*len(e.EscrowID)+70)
	}
	x := func(t time.Time) float64 {
		return float64(labelW) + float64(t.Sub(first))*svgChartW/float64(total)
	}
	rowsH := 0
	for i := range es {
		if i > 0 {
			rowsH += svgEscGap
		}
		rowsH += len(Roles) * (svgRowH + svgRowGap)
	}
	width := labelW + svgChartW + svgMarginR
	height := svgTop + rowsH + svgLegendH

	var b bytes.Buffer
	WriteSVGStart(&b, width, height, 11)
	title := fmt.Sprintf("escrowflow: %d escrow(s), %s", len(es), dur(ms(total)))
	if from, to, ok := Overlap(es); ok {
		title += fmt.Sprintf(", all running from +%s to +%s", offset(from.Sub(first)), offset(to.Sub(first)))
	}
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", XMLText(title))

	// Axis: a line, ticks and labels, and a faint grid line per tick.
	axisY := svgTop - 10
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333333"/>`+"\n", labelW, axisY, labelW+svgChartW, axisY)
	step := tickStep(total, svgChartW/svgMinTick*minTickGap)
	for k := time.Duration(0); k == 0 || k*step <= total; k++ {
		tx := x(first.Add(k * step))
		fmt.Fprintf(&b, `<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333333"/>`+"\n", tx, axisY-4, tx, axisY)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>`+"\n", tx, axisY, tx, svgTop+rowsH)
		fmt.Fprintf(&b, `<text class="tick-label" x="%.1f" y="%d" text-anchor="middle">+%s</text>`+"\n", tx, axisY-7, XMLText(offset(k*step)))
	}

	y := svgTop
	for i, e := range es {
		if i > 0 {
			y += svgEscGap
			fmt.Fprintf(&b, `<line class="separator" x1="10" y1="%d" x2="%d" y2="%d" stroke="#bbbbbb" stroke-dasharray="4 3"/>`+"\n",
				y-svgEscGap/2, width-10, y-svgEscGap/2)
		}
		for ri, role := range Roles {
			fmt.Fprintf(&b, `<text class="row-label" x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+svgRowH-4, role)
			switch ri {
			case 0:
				fmt.Fprintf(&b, `<text class="escrow-id" x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+svgRowH-4, XMLText(e.EscrowID))
			case 1:
				fmt.Fprintf(&b, `<text class="escrow-state" x="10" y="%d" fill="#666666">%s</text>`+"\n", y+svgRowH-4, XMLText(stateText(e)))
			case 2:
				fmt.Fprintf(&b, `<text class="escrow-total" x="10" y="%d" fill="#666666">total %s</text>`+"\n", y+svgRowH-4, XMLText(dur(e.TotalMs)))
			}
			for _, s := range e.Steps {
				if s.Role != role {
					continue
				}
				end := s.Closed
				if end.IsZero() {
					end = e.end()
				}
				x0, x1 := x(s.Scheduled), x(end)
				stroke := ""
				switch s.Status {
				case StatusFailed, StatusTimedOut, StatusCancelled:
					stroke = ` stroke="` + FailedColor + `" stroke-width="2"`
				}
				fmt.Fprintf(&b, `<rect class="step" data-round="%s" data-role="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s</title></rect>`+"\n",
					XMLText(s.Round), XMLText(s.Role), x0, y, max(x1-x0, 1), svgRowH, roundColor(s.Round), stroke, XMLText(stepTitle(e, s)))
				// The part before the last attempt started (queued,
				// earlier attempts, retry backoff) is drawn pale.
				if !s.Started.IsZero() {
					if qx := min(x(s.Started), x1); qx-x0 >= 1 {
						fmt.Fprintf(&b, `<rect class="queued" x="%.1f" y="%d" width="%.1f" height="%d" fill="#ffffff" fill-opacity="0.6" pointer-events="none"/>`+"\n",
							x0, y, qx-x0, svgRowH)
					}
				}
			}
			y += svgRowH + svgRowGap
		}
	}

	// Legend.
	ly := svgTop + rowsH + 20
	lx := labelW
	for i, r := range Rounds {
		fmt.Fprintf(&b, `<rect class="legend" x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", lx, ly, RoundColors[i])
		fmt.Fprintf(&b, `<text class="legend-label" x="%d" y="%d">%s</text>`+"\n", lx+16, ly+10, r)
		lx += 110
	}
	fmt.Fprintf(&b, `<rect class="legend" x="%d" y="%d" width="12" height="12" fill="#ffffff" stroke="%s" stroke-width="2"/>`+"\n", lx, ly, FailedColor)
	fmt.Fprintf(&b, `<text class="legend-label" x="%d" y="%d">failed</text>`+"\n", lx+16, ly+10)
	fmt.Fprintf(&b, `<text class="legend-note" x="%d" y="%d" fill="#666666">pale: queued, earlier attempts and retry backoff; hover a bar for its figures</text>`+"\n", labelW, ly+30)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// stepTitle is a step's tooltip.
func stepTitle(e Escrow, s Step) string {
	t := fmt.Sprintf("%s %s/%s: %s, %s (queue %s, run %s), %d attempt(s), lease wait %s, wallet-rpc %s, slot %s",
		e.EscrowID, s.Round, s.Role, s.Status, dur(s.DurationMs), dur(s.QueueMs), dur(s.RunMs), s.Attempts,
		dur(s.LeaseWaitMs), dur(s.RPCMs), slotText(s.Slot))
	if s.ErrorType != "" {
		t += ", error " + s.ErrorType
	}
	if s.LastFailureType != "" {
		t += ", retried after " + s.LastFailureType
	}
	return t
}

// WriteSVGStart writes an SVG document's XML declaration, its svg element
// of width×height (sans-serif of fontSize) and a white background.
func WriteSVGStart(b *bytes.Buffer, width, height, fontSize int) {
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">`+"\n",
		width, height, width, height, fontSize)
	fmt.Fprintf(b, `<rect class="background" x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
}

// XMLText escapes s for XML text and attribute values.
func XMLText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
