package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the report for people: a header, one row per mode, the
// CPU breakdown, the ratios with their targets, and any failure.
func WriteTable(w io.Writer, r Report) error {
	codec := "off"
	if r.PayloadCodec {
		codec = "on"
	}
	fmt.Fprintf(w, "escrowctl bench: %s per mode, at most %d at once; escrowflow pool %d, payload codec %s; %s\n\n",
		plural(r.N, "escrow"), r.Concurrency, r.PoolSize, codec, plural(r.CPUs, "CPU"))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tescrows\tconc\twallet-rpc\twall\tp50\tp95\tescrows/min\tCPU-s/escrow\tpeak RSS")
	for _, m := range r.Modes {
		procs := "-"
		if m.Processes > 0 {
			procs = strconv.Itoa(m.Processes)
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Mode, m.Completed, m.Escrows, m.Concurrency, procs,
			secs(m.WallMs), optMs(m.P50Ms), optMs(m.P95Ms), optFloat(m.EscrowsPerMinute, 2, ""),
			optFloat(m.CPUSecondsPerEscrow, 1, ""), optFloat(m.PeakRSSMiB, 0, " MiB"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var cpu []string
	for _, m := range r.Modes {
		if m.CPUSeconds == nil || m.Completed == 0 {
			continue
		}
		n := float64(m.Completed)
		line := fmt.Sprintf("  %-11s wallet-rpc %.1f + bench process %.1f", m.Mode, m.CPUSeconds.WalletRPC/n, m.CPUSeconds.Bench/n)
		if m.Mode == Escrowflow || m.Mode == EscrowflowCold {
			line += fmt.Sprintf(" + Temporal %.1f", m.CPUSeconds.Temporal/n)
		}
		cpu = append(cpu, line)
	}
	if len(cpu) > 0 {
		fmt.Fprintln(w, "\nCPU-s per escrow by process (bench process: the in-process worker and the client):")
		for _, l := range cpu {
			fmt.Fprintln(w, l)
		}
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ratio\tvalue\ttarget\tverdict")
	rt := r.Ratios
	ratioRow(tw, "escrowflow/direct p50 latency", rt.LatencyEscrowflowOverDirect, false, "needs escrowflow and direct")
	ratioRow(tw, "global-lock/escrowflow wall time", rt.WallGlobalLockOverEscrowflow, false, "needs both, every escrow completed")
	limit := "escrowflow throughput / CPU limit"
	if rt.CPULimitEscrowsPerMinute != nil {
		limit += fmt.Sprintf(" (%.2f/min)", *rt.CPULimitEscrowsPerMinute)
	}
	ratioRow(tw, limit, rt.ThroughputOverCPULimit, true, "needs escrowflow and direct's CPU")
	overhead := "-\t\tneeds escrowflow and direct"
	if v := rt.TemporalOverheadPerActivityMs; v != nil {
		overhead = fmt.Sprintf("%.0f ms\t\testimate: (escrowflow p50 - direct p50) / %d activities", *v, ActivitiesPerEscrow)
	}
	fmt.Fprintf(tw, "Temporal overhead per activity\t%s\n", overhead)
	if err := tw.Flush(); err != nil {
		return err
	}

	for _, m := range r.Modes {
		if m.Error != "" {
			fmt.Fprintf(w, "\n%s: not run to the end: %s\n", m.Mode, m.Error)
		}
		if len(m.Failures) > 0 {
			fmt.Fprintf(w, "\n%s: %s failed:\n", m.Mode, plural(len(m.Failures), "escrow"))
			for _, f := range m.Failures {
				fmt.Fprintf(w, "  %s\n", f)
			}
		}
	}
	return nil
}

// ratioRow prints one ratio, as a percentage when percent is set.
func ratioRow(w io.Writer, name string, r *Ratio, percent bool, missing string) {
	if r == nil {
		fmt.Fprintf(w, "%s\t-\t\t%s\n", name, missing)
		return
	}
	value := strconv.FormatFloat(r.Value, 'f', 2, 64)
	target := fmt.Sprintf("%s %s", symbol(r.Comparison), strconv.FormatFloat(r.Target, 'f', -1, 64))
	if percent {
		value = fmt.Sprintf("%.0f%%", r.Value*100)
		target = fmt.Sprintf("%s %.0f%%", symbol(r.Comparison), r.Target*100)
	}
	if r.Condition != "" {
		target += " at " + r.Condition
	}
	verdict := "n/a: not the target's run"
	if r.Met != nil {
		verdict = "not met"
		if *r.Met {
			verdict = "met"
		}
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, value, target, verdict)
}

func symbol(cmp string) string {
	switch cmp {
	case "<=":
		return "≤"
	case ">=":
		return "≥"
	}
	return cmp
}

func secs(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s"
}

func optMs(v *int64) string {
	if v == nil {
		return "-"
	}
	return secs(*v)
}

func optFloat(v *float64, prec int, unit string) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', prec, 64) + unit
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ProgressBar renders one mode's progress: the mode, a bar of width cells,
// done/total, failures and the elapsed time.
func ProgressBar(mode Mode, done, failed, total, width int, elapsed time.Duration) string {
	filled := 0
	if total > 0 {
		filled = min(done*width/total, width)
	}
	s := fmt.Sprintf("%-11s [%s%s] %d/%d", mode, strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total)
	if failed > 0 {
		s += fmt.Sprintf(", %d failed", failed)
	}
	return s + "  " + elapsed.Round(100*time.Millisecond).String()
}

// ProgressLine renders one finished escrow for a log (stderr not a
// terminal).
func ProgressLine(mode Mode, done, total int, id string, latency time.Duration, err error) string {
	s := fmt.Sprintf("%-11s %d/%d  %s  ", mode, done, total, id)
	if err != nil {
		return s + fmt.Sprintf("FAILED after %s: %v", latency.Round(time.Millisecond), err)
	}
	return s + "done in " + latency.Round(time.Millisecond).String()
}
