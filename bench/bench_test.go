package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func durs(vs ...float64) []time.Duration {
	out := make([]time.Duration, len(vs))
	for i, v := range vs {
		out[i] = time.Duration(v * float64(time.Second))
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		give     []time.Duration
		p        float64
		want     time.Duration
		giveName string
	}{
		{giveName: "one value", give: durs(7), p: 50, want: durs(7)[0]},
		{giveName: "one value p95", give: durs(7), p: 95, want: durs(7)[0]},
		{giveName: "three unsorted p50", give: durs(3, 1, 2), p: 50, want: durs(2)[0]},
		{giveName: "three p95 is the max", give: durs(3, 1, 2), p: 95, want: durs(3)[0]},
		{giveName: "four p50 is the lower middle", give: durs(4, 3, 2, 1), p: 50, want: durs(2)[0]},
		{giveName: "twenty p95 is the 19th", give: durs(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), p: 95, want: durs(19)[0]},
		{giveName: "twenty-one p95 is the 20th", give: durs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21), p: 95, want: durs(20)[0]},
		{giveName: "p100", give: durs(1, 5, 2), p: 100, want: durs(5)[0]},
	}
	for _, tt := range tests {
		t.Run(tt.giveName, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.give...)
			assert.Equal(t, tt.want, Percentile(tt.give, tt.p))
			assert.Equal(t, in, tt.give, "input not reordered")
		})
	}
}

func TestParseModes(t *testing.T) {
	tests := []struct {
		give    string
		want    []Mode
		wantErr string
	}{
		{give: "escrowflow,direct,global-lock", want: []Mode{Escrowflow, Direct, GlobalLock}},
		{give: "global-lock, direct", want: []Mode{GlobalLock, Direct}},
		{give: "direct,", want: []Mode{Direct}},
		{give: "", wantErr: "no mode given"},
		{give: " , ", wantErr: "no mode given"},
		{give: "direct,direct", wantErr: `mode "direct" given twice`},
		{give: "temporal", wantErr: `unknown mode "temporal"`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseModes(tt.give)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// fixedRuns are three modes' measurements with round figures.
func fixedRuns() []Run {
	return []Run{
		{Mode: Escrowflow, Escrows: 3, Concurrency: 3, Processes: 9, Wall: durs(41.2)[0], Latencies: durs(40.9, 38.1, 39),
			CPU: &CPU{WalletRPC: 45 * time.Second, Bench: 9 * time.Second, Temporal: 6 * time.Second}, PeakRSSKiB: 120 * 1024},
		{Mode: Direct, Escrows: 3, Concurrency: 3, Processes: 9, Wall: 20 * time.Second, Latencies: durs(18.5, 19, 19.9),
			CPU: &CPU{WalletRPC: 48 * time.Second, Bench: 300 * time.Millisecond}, PeakRSSKiB: 100 * 1024},
		{Mode: GlobalLock, Escrows: 3, Concurrency: 1, Processes: 1, Wall: 120 * time.Second, Latencies: durs(39.5, 40, 40.5),
			CPU: &CPU{WalletRPC: durs(50.4)[0], Bench: 300 * time.Millisecond}, PeakRSSKiB: 90 * 1024},
	}
}

func fixedSetup() Setup { return Setup{N: 3, Concurrency: 3, PoolSize: 9, CPUs: 2} }

func TestFigures(t *testing.T) {
	f := Figures(fixedRuns()[0])
	assert.Equal(t, []int64{38100, 39000, 40900}, f.LatencyMs)
	assert.Equal(t, int64(39000), *f.P50Ms)
	assert.Equal(t, int64(40900), *f.P95Ms)
	assert.Equal(t, 4.369, *f.EscrowsPerMinute) // 3 / 41.2 s × 60
	assert.Equal(t, 20.0, *f.CPUSecondsPerEscrow)
	assert.Equal(t, &CPUSeconds{WalletRPC: 45, Bench: 9, Temporal: 6, Total: 60}, f.CPUSeconds)
	assert.Equal(t, 120.0, *f.PeakRSSMiB)

	// Nothing completed, nothing measured: null figures, not zeros.
	f = Figures(Run{Mode: Escrowflow, Escrows: 2, Concurrency: 2, Wall: time.Second, Failures: []string{"a: x", "b: y"}, External: true})
	assert.Equal(t, 0, f.Completed)
	assert.Equal(t, 2, f.Failed)
	assert.Equal(t, []int64{}, f.LatencyMs)
	assert.Nil(t, f.P50Ms)
	assert.Nil(t, f.P95Ms)
	assert.Nil(t, f.EscrowsPerMinute)
	assert.Nil(t, f.CPUSecondsPerEscrow)
	assert.Nil(t, f.CPUSeconds)
	assert.Nil(t, f.PeakRSSMiB)
}

func TestSummarizeRatios(t *testing.T) {
	rep := Summarize(fixedSetup(), fixedRuns())
	r := rep.Ratios

	require.NotNil(t, r.LatencyEscrowflowOverDirect)
	assert.Equal(t, 2.053, r.LatencyEscrowflowOverDirect.Value) // 39.0 / 19.0
	assert.False(t, r.LatencyEscrowflowOverDirect.Applies, "the latency target is for -c 1")
	assert.Nil(t, r.LatencyEscrowflowOverDirect.Met)
	assert.Equal(t, 1000.0, *r.TemporalOverheadPerActivityMs) // (39000 - 19000) / 20

	require.NotNil(t, r.WallGlobalLockOverEscrowflow)
	assert.Equal(t, 2.913, r.WallGlobalLockOverEscrowflow.Value) // 120 / 41.2
	assert.True(t, r.WallGlobalLockOverEscrowflow.Applies)
	assert.False(t, *r.WallGlobalLockOverEscrowflow.Met)

	assert.Equal(t, 7.453, *r.CPULimitEscrowsPerMinute) // 60 × 2 / 16.1
	require.NotNil(t, r.ThroughputOverCPULimit)
	assert.Equal(t, 0.586, r.ThroughputOverCPULimit.Value) // 4.369 / 7.453
	assert.False(t, r.ThroughputOverCPULimit.Applies)
}

func TestSummarizeTargetsMet(t *testing.T) {
	// One escrow at a time: the latency target applies.
	runs := []Run{
		{Mode: Escrowflow, Escrows: 1, Concurrency: 1, Processes: 3, Wall: 12 * time.Second, Latencies: durs(12)},
		{Mode: Direct, Escrows: 1, Concurrency: 1, Processes: 3, Wall: 10 * time.Second, Latencies: durs(10)},
	}
	rep := Summarize(Setup{N: 1, Concurrency: 1, PoolSize: 3, CPUs: 2}, runs)
	lat := rep.Ratios.LatencyEscrowflowOverDirect
	require.NotNil(t, lat)
	assert.Equal(t, 1.2, lat.Value)
	assert.True(t, lat.Applies)
	assert.True(t, *lat.Met)
	assert.Nil(t, rep.Ratios.WallGlobalLockOverEscrowflow, "no global-lock run")
	assert.Nil(t, rep.Ratios.CPULimitEscrowsPerMinute, "direct's CPU not measured")
	assert.Nil(t, rep.Ratios.ThroughputOverCPULimit)

	// N=12 on pool 6: the throughput target applies; N=3: the wall one.
	runs = []Run{
		{Mode: Escrowflow, Escrows: 12, Concurrency: 12, Processes: 6, Wall: time.Minute, Latencies: durs(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)},
		{Mode: Direct, Escrows: 12, Concurrency: 12, Processes: 36, Wall: time.Minute, Latencies: durs(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),
			CPU: &CPU{WalletRPC: 120 * time.Second}}, // 10 CPU-s per escrow: limit 12/min on 2 CPUs
	}
	rep = Summarize(Setup{N: 12, Concurrency: 12, PoolSize: 6, CPUs: 2}, runs)
	tp := rep.Ratios.ThroughputOverCPULimit
	require.NotNil(t, tp)
	assert.Equal(t, 12.0, *rep.Ratios.CPULimitEscrowsPerMinute)
	assert.Equal(t, 1.0, tp.Value)
	assert.True(t, tp.Applies)
	assert.True(t, *tp.Met)

	// A failed escrow leaves the wall ratio out: the wall times are not
	// for the same work.
	runs = fixedRuns()
	runs[2].Latencies, runs[2].Failures = runs[2].Latencies[:2], []string{"global-lock-3: boom"}
	rep = Summarize(fixedSetup(), runs)
	assert.Nil(t, rep.Ratios.WallGlobalLockOverEscrowflow)
	escrows, modes := rep.Failed()
	assert.Equal(t, 1, escrows)
	assert.Equal(t, 0, modes)
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, Summarize(fixedSetup(), fixedRuns())))
	want := `escrowctl bench: 3 escrows per mode, at most 3 at once; escrowflow pool 9, payload codec off; 2 CPUs

mode         escrows  conc  wallet-rpc  wall     p50     p95     escrows/min  CPU-s/escrow  peak RSS
escrowflow   3/3      3     9           41.2 s   39.0 s  40.9 s  4.37         20.0          120 MiB
direct       3/3      3     9           20.0 s   19.0 s  19.9 s  9.00         16.1          100 MiB
global-lock  3/3      1     1           120.0 s  40.0 s  40.5 s  1.50         16.9          90 MiB

CPU-s per escrow by process (bench process: the in-process worker and the client):
  escrowflow  wallet-rpc 15.0 + bench process 3.0 + Temporal 2.0
  direct      wallet-rpc 16.0 + bench process 0.1
  global-lock wallet-rpc 16.8 + bench process 0.1

ratio                                         value    target                 verdict
escrowflow/direct p50 latency                 2.05     ≤ 1.25 at -c 1         n/a: not the target's run
global-lock/escrowflow wall time              2.91     ≥ 8 at N=3             not met
escrowflow throughput / CPU limit (7.45/min)  59%      ≥ 85% at N=12, pool 6  n/a: not the target's run
Temporal overhead per activity                1000 ms                         estimate: (escrowflow p50 - direct p50) / 20 activities
`
	assert.Equal(t, want, buf.String())
}

func TestWriteTableMissingFigures(t *testing.T) {
	runs := []Run{
		{Mode: Escrowflow, Escrows: 2, Concurrency: 2, Wall: 30 * time.Second, Latencies: durs(29.5),
			Failures: []string{"bench-x-2: WalletRejected: boom"}, External: true},
		{Mode: Direct, Escrows: 2, Concurrency: 2, Processes: 6, Err: "pool: exec: \"monero-wallet-rpc\": executable file not found in $PATH"},
	}
	rep := Summarize(Setup{N: 2, Concurrency: 2, PoolSize: 9, CPUs: 1, Codec: true}, runs)
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rep))
	want := `escrowctl bench: 2 escrows per mode, at most 2 at once; escrowflow pool 9, payload codec on; 1 CPU

mode        escrows  conc  wallet-rpc  wall    p50     p95     escrows/min  CPU-s/escrow  peak RSS
escrowflow  1/2      2     -           30.0 s  29.5 s  29.5 s  2.00         -             -
direct      0/2      2     6           0.0 s   -       -       -            -             -

ratio                              value  target  verdict
escrowflow/direct p50 latency      -              needs escrowflow and direct
global-lock/escrowflow wall time   -              needs both, every escrow completed
escrowflow throughput / CPU limit  -              needs escrowflow and direct's CPU
Temporal overhead per activity     -              needs escrowflow and direct

escrowflow: 1 escrow failed:
  bench-x-2: WalletRejected: boom

direct: not run to the end: pool: exec: "monero-wallet-rpc": executable file not found in $PATH
`
	assert.Equal(t, want, buf.String())
	escrows, modes := rep.Failed()
	assert.Equal(t, 1, escrows)
	assert.Equal(t, 1, modes)
}

// TestReportJSON pins the JSON shape scripts read.
func TestReportJSON(t *testing.T) {
	runs := fixedRuns()[:2]
	runs[0].Latencies = durs(39)
	runs[0].Escrows, runs[1].Escrows = 1, 1
	runs[0].Concurrency, runs[1].Concurrency = 1, 1
	runs[1].Latencies = durs(30)
	rep := Summarize(Setup{N: 1, Concurrency: 1, PoolSize: 9, CPUs: 2}, runs)
	b, err := json.MarshalIndent(rep, "", "  ")
	require.NoError(t, err)
	want := `{
  "n": 1,
  "concurrency": 1,
  "poolSize": 9,
  "cpus": 2,
  "payloadCodec": false,
  "modes": [
    {
      "mode": "escrowflow",
      "escrows": 1,
      "completed": 1,
      "failed": 0,
      "concurrency": 1,
      "processes": 9,
      "wallMs": 41200,
      "latencyMs": [
        39000
      ],
      "p50Ms": 39000,
      "p95Ms": 39000,
      "escrowsPerMinute": 1.456,
      "cpuSecondsPerEscrow": 60,
      "cpuSeconds": {
        "walletRpc": 45,
        "benchProcess": 9,
        "temporal": 6,
        "total": 60
      },
      "peakRssMiB": 120
    },
    {
      "mode": "direct",
      "escrows": 1,
      "completed": 1,
      "failed": 0,
      "concurrency": 1,
      "processes": 9,
      "wallMs": 20000,
      "latencyMs": [
        30000
      ],
      "p50Ms": 30000,
      "p95Ms": 30000,
      "escrowsPerMinute": 3,
      "cpuSecondsPerEscrow": 48.3,
      "cpuSeconds": {
        "walletRpc": 48,
        "benchProcess": 0.3,
        "temporal": 0,
        "total": 48.3
      },
      "peakRssMiB": 100
    }
  ],
  "ratios": {
    "latencyEscrowflowOverDirect": {
      "value": 1.3,
      "comparison": "\u003c=",
      "target": 1.25,
      "condition": "-c 1",
      "applies": true,
      "met": false
    },
    "wallGlobalLockOverEscrowflow": null,
    "cpuLimitEscrowsPerMinute": 2.484,
    "throughputOverCpuLimit": {
      "value": 0.586,
      "comparison": "\u003e=",
      "target": 0.85,
      "condition": "N=12, pool 6",
      "applies": false,
      "met": null
    },
    "temporalOverheadPerActivityMs": 450
  }
}`
	assert.Equal(t, want, string(b))
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as wallet-rpc's is not
	// but any process's may be.
	stat := "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 5000 123456789 4000 18446744073709551615\n"
	st, err := ParseStat([]byte(stat))
	require.NoError(t, err)
	assert.Equal(t, ProcStat{PID: 4242, PPID: 17, Comm: "a (b) c", UTime: 250, STime: 75}, st)
	assert.Equal(t, 3250*time.Millisecond, st.CPU())

	for _, bad := range []string{"", "4242 no name", "x (n) S 1 2", "1 (n) S 1 1 1 0 -1 0 0 0 0 0 u 75"} {
		_, err := ParseStat([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tmonero-wallet-r\nVmPeak:\t  500000 kB\nVmHWM:\t   61234 kB\nVmRSS:\t   60000 kB\n"
	kib, err := ParseVmHWM([]byte(status))
	require.NoError(t, err)
	assert.Equal(t, int64(61234), kib)

	_, err = ParseVmHWM([]byte("Name:\tkthreadd\n"))
	assert.Error(t, err, "kernel threads have no VmHWM")
	_, err = ParseVmHWM([]byte("VmHWM:\t12 MB\n"))
	assert.Error(t, err)
}

func TestSelfAndTracker(t *testing.T) {
	// This process: its own stat parses and its CPU only grows.
	pid := os.Getpid()
	before := SelfCPU()
	var tr CPUTracker
	tr.Baseline([]int{pid})
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	_ = x
	cpu, peak := tr.Sample([]int{pid, 1 << 30}) // a pid that does not exist is skipped
	assert.GreaterOrEqual(t, cpu, time.Duration(0))
	assert.Greater(t, peak, int64(0))
	assert.Greater(t, SelfCPU(), before)
}

func TestProgress(t *testing.T) {
	assert.Equal(t, "escrowflow  [----------] 0/4  0s", ProgressBar(Escrowflow, 0, 0, 4, 10, 0))
	assert.Equal(t, "direct      [#####-----] 2/4, 1 failed  12.3s", ProgressBar(Direct, 2, 1, 4, 10, 12345*time.Millisecond))
	assert.Equal(t, "global-lock [##########] 3/3  1m40s", ProgressBar(GlobalLock, 3, 0, 3, 10, 100*time.Second))

	assert.Equal(t, "direct      2/3  direct-2  done in 19.001s", ProgressLine(Direct, 2, 3, "direct-2", 19001*time.Millisecond, nil))
	assert.Equal(t, "escrowflow  1/3  bench-1  FAILED after 2.5s: boom", ProgressLine(Escrowflow, 1, 3, "bench-1", 2500*time.Millisecond, errors.New("boom")))
}
