// Package bench holds the figures of `escrowctl bench`: percentiles, the
// per-mode figures, the ratios against the performance targets, the JSON
// report and the text table. Everything here is a pure function of what the
// command measured, except the small /proc and getrusage readers in
// proc.go.
//
// The three modes run the same 2-of-3 multisig setup:
//
//   - escrowflow: the product, EscrowSetup workflows on Temporal with a
//     worker and its wallet-rpc pool;
//   - escrowflow-cold: the same with the worker's warm stock of wallets
//     off, so every escrow calls create_wallet (for before/after figures);
//   - direct: the same wallet-rpc rounds straight on wallet-rpc processes,
//     wallets kept open, no Temporal and no snapshots: the floor;
//   - global-lock: the old design, one wallet-rpc process, one escrow at a
//     time, every step between an open and a close of the role's wallet.
package bench

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// ActivitiesPerEscrow is the number of activities one escrowflow escrow runs:
// ClaimEscrow, 6 rounds × 3 roles, FinishEscrow.
const ActivitiesPerEscrow = 20

// Mode names one way of running the setups.
type Mode string

// The modes, in their canonical order.
const (
	Escrowflow     Mode = "escrowflow"
	EscrowflowCold Mode = "escrowflow-cold"
	Direct         Mode = "direct"
	GlobalLock     Mode = "global-lock"
)

// Modes lists every mode in the canonical order.
var Modes = []Mode{Escrowflow, EscrowflowCold, Direct, GlobalLock}

// ParseModes parses a comma-separated list of modes, keeping its order.
func ParseModes(s string) ([]Mode, error) {
	var out []Mode
	for _, f := range strings.Split(s, ",") {
		m := Mode(strings.TrimSpace(f))
		if m == "" {
			continue
		}
		if !slices.Contains(Modes, m) {
			return nil, fmt.Errorf("unknown mode %q: want escrowflow, escrowflow-cold, direct or global-lock", m)
		}
		if slices.Contains(out, m) {
			return nil, fmt.Errorf("mode %q given twice", m)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no mode given")
	}
	return out, nil
}

// CPU is the CPU time (user + system) a mode's processes used while its
// escrows ran.
type CPU struct {
	// WalletRPC is the sum over the mode's wallet-rpc processes.
	WalletRPC time.Duration
	// Bench is the bench process itself (getrusage RUSAGE_SELF): the
	// in-process worker and the starter client for escrowflow, the RPC
	// client for the other modes.
	Bench time.Duration
	// Temporal is the Temporal dev server (escrowflow only).
	Temporal time.Duration
}

// Total is the sum of the three.
func (c CPU) Total() time.Duration { return c.WalletRPC + c.Bench + c.Temporal }

// Run is what one mode measured.
type Run struct {
	Mode Mode
	// Escrows is the number of escrows the mode set out to run (N).
	Escrows int
	// Concurrency is the most escrows in flight at once.
	Concurrency int
	// Processes is the number of wallet-rpc processes (0 when unknown).
	Processes int
	// Wall is the first start to the last result.
	Wall time.Duration
	// Latencies are the completed escrows' start-to-result times.
	Latencies []time.Duration
	// Failures has one line per escrow that failed.
	Failures []string
	// Err is why the mode could not run (its stack did not start, …).
	Err string
	// CPU is nil when not measured (escrowflow on a running stack).
	CPU *CPU
	// PeakRSSKiB is the largest VmHWM of the mode's wallet-rpc processes,
	// 0 when unknown.
	PeakRSSKiB int64
	// External is true for escrowflow on a running stack (--address).
	External bool
}

// Setup describes the bench run.
type Setup struct {
	N           int
	Concurrency int
	// PoolSize is escrowflow's wallet-rpc pool size.
	PoolSize int
	// CPUs is the number of CPUs of the machine.
	CPUs int
	// Codec reports whether escrowflow's payloads were encrypted.
	Codec bool
}

// Report is the bench's machine-readable result (escrowctl bench --json).
type Report struct {
	N            int           `json:"n"`
	Concurrency  int           `json:"concurrency"`
	PoolSize     int           `json:"poolSize"`
	CPUs         int           `json:"cpus"`
	PayloadCodec bool          `json:"payloadCodec"`
	Modes        []ModeFigures `json:"modes"`
	Ratios       Ratios        `json:"ratios"`
}

// ModeFigures are one mode's figures. Pointer fields are null when they
// cannot be computed (no completed escrow, CPU not measured).
type ModeFigures struct {
	Mode        Mode  `json:"mode"`
	Escrows     int   `json:"escrows"`
	Completed   int   `json:"completed"`
	Failed      int   `json:"failed"`
	Concurrency int   `json:"concurrency"`
	Processes   int   `json:"processes"`
	WallMs      int64 `json:"wallMs"`
	// LatencyMs are the completed escrows' latencies, ascending.
	LatencyMs []int64 `json:"latencyMs"`
	// P50Ms and P95Ms are nearest-rank percentiles of LatencyMs.
	P50Ms               *int64      `json:"p50Ms"`
	P95Ms               *int64      `json:"p95Ms"`
	EscrowsPerMinute    *float64    `json:"escrowsPerMinute"`
	CPUSecondsPerEscrow *float64    `json:"cpuSecondsPerEscrow"`
	CPUSeconds          *CPUSeconds `json:"cpuSeconds"`
	PeakRSSMiB          *float64    `json:"peakRssMiB"`
	ExternalStack       bool        `json:"externalStack,omitempty"`
	Error               string      `json:"error,omitempty"`
	Failures            []string    `json:"failures,omitempty"`
}

// CPUSeconds is a mode's CPU time by process, in seconds, over all its
// escrows.
type CPUSeconds struct {
	WalletRPC float64 `json:"walletRpc"`
	Bench     float64 `json:"benchProcess"`
	Temporal  float64 `json:"temporal"`
	Total     float64 `json:"total"`
}

// Ratio is a figure compared with a target.
type Ratio struct {
	Value float64 `json:"value"`
	// Comparison is "<=" or ">=": Value Comparison Target meets it.
	Comparison string  `json:"comparison"`
	Target     float64 `json:"target"`
	// Condition is the run the target is stated for ("" = any run).
	Condition string `json:"condition,omitempty"`
	// Applies is true when this run matches Condition; Met is null
	// otherwise.
	Applies bool  `json:"applies"`
	Met     *bool `json:"met"`
}

// Ratios are the cross-mode figures; each is null when a mode it needs did
// not run or has no figure.
type Ratios struct {
	// LatencyEscrowflowOverDirect is escrowflow's p50 latency over
	// direct's.
	LatencyEscrowflowOverDirect *Ratio `json:"latencyEscrowflowOverDirect"`
	// WallGlobalLockOverEscrowflow is global-lock's wall time over
	// escrowflow's, for the same N.
	WallGlobalLockOverEscrowflow *Ratio `json:"wallGlobalLockOverEscrowflow"`
	// CPULimitEscrowsPerMinute is 60 × CPUs / direct's CPU-s per escrow:
	// the most escrows per minute the machine's cores could run.
	CPULimitEscrowsPerMinute *float64 `json:"cpuLimitEscrowsPerMinute"`
	// ThroughputOverCPULimit is escrowflow's escrows per minute over
	// CPULimitEscrowsPerMinute.
	ThroughputOverCPULimit *Ratio `json:"throughputOverCpuLimit"`
	// TemporalOverheadPerActivityMs estimates what Temporal adds per
	// activity: (escrowflow p50 − direct p50) / ActivitiesPerEscrow. It
	// also holds escrowflow's snapshot work, which direct skips.
	TemporalOverheadPerActivityMs *float64 `json:"temporalOverheadPerActivityMs"`
}

// The performance targets (issue "Performance").
var (
	latencyTarget    = Ratio{Comparison: "<=", Target: 1.25, Condition: "-c 1"}
	wallTarget       = Ratio{Comparison: ">=", Target: 8, Condition: "N=3"}
	throughputTarget = Ratio{Comparison: ">=", Target: 0.85, Condition: "N=12, pool 6"}
)

// Percentile returns the p-th percentile (0 < p <= 100) of vs by nearest
// rank; vs need not be sorted and must not be empty.
func Percentile(vs []time.Duration, p float64) time.Duration {
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// round3 rounds to three decimals, for stable JSON.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func ptr[T any](v T) *T { return &v }

// Figures computes a mode's figures from its run.
func Figures(r Run) ModeFigures {
	f := ModeFigures{
		Mode: r.Mode, Escrows: r.Escrows, Completed: len(r.Latencies), Failed: len(r.Failures),
		Concurrency: r.Concurrency, Processes: r.Processes, WallMs: r.Wall.Milliseconds(),
		LatencyMs: []int64{}, ExternalStack: r.External, Error: r.Err, Failures: r.Failures,
	}
	sorted := slices.Clone(r.Latencies)
	slices.Sort(sorted)
	for _, d := range sorted {
		f.LatencyMs = append(f.LatencyMs, d.Milliseconds())
	}
	if len(sorted) > 0 {
		f.P50Ms = ptr(Percentile(sorted, 50).Milliseconds())
		f.P95Ms = ptr(Percentile(sorted, 95).Milliseconds())
		if r.Wall > 0 {
			f.EscrowsPerMinute = ptr(round3(float64(len(sorted)) / r.Wall.Minutes()))
		}
	}
	if r.CPU != nil {
		f.CPUSeconds = &CPUSeconds{
			WalletRPC: round3(r.CPU.WalletRPC.Seconds()), Bench: round3(r.CPU.Bench.Seconds()),
			Temporal: round3(r.CPU.Temporal.Seconds()), Total: round3(r.CPU.Total().Seconds()),
		}
		if len(sorted) > 0 {
			f.CPUSecondsPerEscrow = ptr(round3(r.CPU.Total().Seconds() / float64(len(sorted))))
		}
	}
	if r.PeakRSSKiB > 0 {
		f.PeakRSSMiB = ptr(round3(float64(r.PeakRSSKiB) / 1024))
	}
	return f
}

// Summarize computes the report of a bench run: every mode's figures, in
// the order they ran, and the ratios.
func Summarize(s Setup, runs []Run) Report {
	rep := Report{N: s.N, Concurrency: s.Concurrency, PoolSize: s.PoolSize, CPUs: s.CPUs, PayloadCodec: s.Codec, Modes: []ModeFigures{}}
	byMode := map[Mode]ModeFigures{}
	for _, r := range runs {
		f := Figures(r)
		rep.Modes = append(rep.Modes, f)
		byMode[r.Mode] = f
	}
	ef, hasEF := byMode[Escrowflow]
	dir, hasDir := byMode[Direct]
	gl, hasGL := byMode[GlobalLock]

	if hasEF && hasDir && ef.P50Ms != nil && dir.P50Ms != nil && *dir.P50Ms > 0 {
		rep.Ratios.LatencyEscrowflowOverDirect = compare(latencyTarget, float64(*ef.P50Ms)/float64(*dir.P50Ms),
			ef.Concurrency == 1 && dir.Concurrency == 1)
		rep.Ratios.TemporalOverheadPerActivityMs = ptr(round3(float64(*ef.P50Ms-*dir.P50Ms) / ActivitiesPerEscrow))
	}
	if hasEF && hasGL && ef.Completed == ef.Escrows && gl.Completed == gl.Escrows && ef.WallMs > 0 && gl.Escrows == ef.Escrows {
		rep.Ratios.WallGlobalLockOverEscrowflow = compare(wallTarget, float64(gl.WallMs)/float64(ef.WallMs), ef.Escrows == 3)
	}
	if hasDir && dir.CPUSecondsPerEscrow != nil && *dir.CPUSecondsPerEscrow > 0 && s.CPUs > 0 {
		limit := 60 * float64(s.CPUs) / *dir.CPUSecondsPerEscrow
		rep.Ratios.CPULimitEscrowsPerMinute = ptr(round3(limit))
		if hasEF && ef.EscrowsPerMinute != nil {
			rep.Ratios.ThroughputOverCPULimit = compare(throughputTarget, *ef.EscrowsPerMinute/limit,
				ef.Escrows == 12 && s.PoolSize == 6 && !ef.ExternalStack)
		}
	}
	return rep
}

// compare fills target with value and, when applies, the verdict.
func compare(target Ratio, value float64, applies bool) *Ratio {
	r := target
	r.Value, r.Applies = round3(value), applies
	if applies {
		met := r.Value <= r.Target
		if r.Comparison == ">=" {
			met = r.Value >= r.Target
		}
		r.Met = &met
	}
	return &r
}

// Failed counts the escrows that failed and the modes that could not run.
func (r Report) Failed() (escrows, modes int) {
	for _, m := range r.Modes {
		escrows += m.Failed
		if m.Error != "" {
			modes++
		}
	}
	return escrows, modes
}
