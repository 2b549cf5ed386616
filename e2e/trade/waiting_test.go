package trade

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/crypto/sha3"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
	"github.com/escrowflow/escrowflow/worker"
	"github.com/escrowflow/escrowflow/workflows"
)

// WaitingEnv enables TestMeasureWaitingTrades with that many trades
// (docs/BENCHMARKS.md); WaitingIntervalEnv sets their scanInterval
// (default 2m).
const (
	WaitingEnv         = "ESCROWFLOW_MEASURE_WAITING"
	WaitingIntervalEnv = "ESCROWFLOW_MEASURE_WAITING_INTERVAL"
	waitingWorkerEnv   = "ESCROWFLOW_WAITING_WORKER"
)

// TestMeasureWaitingTrades is a measurement, not a test: the cost of many
// EscrowTrade workflows in AWAITING_DEPOSIT at once. A worker process (this
// test binary re-run as TestWaitingWorkerProcess) runs the real EscrowTrade
// workflow and the real activities, with the worker's logger (JSON, info),
// against the real Temporal dev server and the regtest monerod; only
// EscrowSetup is replaced by a stub that returns at once (a real setup
// costs ≈ 30 CPU-s), and every trade watches one standard address whose
// view key the worker was given, as the first CheckDeposit of a real
// escrow records it. The worker has no wallet-rpc process at all: a lease
// attempt fails the check and is counted. While a block with one
// transaction is mined every 12 s, it reports the worker's RSS and the CPU
// of the worker, monerod and the Temporal server over two scan intervals,
// and their CPU over the same time without trades (measured first, over
// one interval, doubled).
func TestMeasureWaitingTrades(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(WaitingEnv))
	if n <= 0 {
		t.Skipf("measurement, not a test: %s=<trades> runs it", WaitingEnv)
	}
	interval := 2 * time.Minute
	if v := os.Getenv(WaitingIntervalEnv); v != "" {
		var err error
		interval, err = time.ParseDuration(v)
		require.NoError(t, err)
	}
	e := newEnv(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "wallets")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	viewKey, watched := newAddress(t)
	_, vendor := newAddress(t)
	_, buyer := newAddress(t)

	outPath := filepath.Join(t.TempDir(), "worker.out")
	out, err := os.Create(outPath)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWaitingWorkerProcess$", "-test.v", "-test.timeout", "0")
	cmd.Env = append(os.Environ(), waitingWorkerEnv+"=1", "W_TEMPORAL="+e.tp.HostPort, "W_DAEMON="+e.chain.Address,
		"W_DIR="+dir, "W_KEYS="+e.keys, "W_ADDRESS="+watched, "W_VIEWKEY="+viewKey, "W_N="+strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = cmd.Wait()
		out.Close()
	})
	testenv.WaitFor(t, 2*time.Minute, "worker ready", func() bool {
		b, _ := os.ReadFile(outPath)
		return strings.Contains(string(b), "WAITING-WORKER READY")
	})
	idleRSS := vmKB(t, pid, "VmRSS")

	// The chain moves on: a block with one transaction every 12 s. Its
	// cost alone (no trades yet) is measured over one interval first.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(12 * time.Second):
			}
			_, _, _ = e.faucet.PayE(buyer, 1_000_000_000)
			_ = e.chain.MineE(1)
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	cpus := func() [3]time.Duration {
		return [3]time.Duration{testenv.ProcCPU(t, pid), testenv.ProcCPU(t, e.chain.PID()), testenv.ProcCPU(t, e.tp.PID)}
	}
	b0 := cpus()
	time.Sleep(interval)
	b1 := cpus()
	var base [3]time.Duration // per window of two intervals
	for i := range base {
		base[i] = 2 * (b1[i] - b0[i])
	}

	start := time.Now()
	for i := range n {
		in := escrow.TradeInput{EscrowID: waitingID(i), AmountAtomic: xmr, VendorAddress: vendor, BuyerRefundAddress: buyer,
			Confirmations: 10, ScanInterval: interval.String(), DepositTimeout: (1000 * interval).String()}
		_, err := e.sc.StartTrade(ctx, in)
		require.NoError(t, err)
	}
	t.Logf("started %d trades in %s", n, time.Since(start).Round(time.Second))
	// Every trade has checked once when every one has its scan state.
	testenv.WaitFor(t, 30*time.Minute, "every trade's first deposit check", func() bool {
		return scannedSince(t, dir, time.Time{}) >= n
	})
	t.Logf("all %d trades in AWAITING_DEPOSIT and checked once after %s", n, time.Since(start).Round(time.Second))

	time.Sleep(interval) // into the steady state
	window := 2 * interval
	c0 := cpus()
	windowStart := time.Now()
	time.Sleep(window)
	c1 := cpus()
	rss, hwm := vmKB(t, pid, "VmRSS"), vmKB(t, pid, "VmHWM")
	close(stop)
	<-done
	fresh := scannedSince(t, dir, time.Now().Add(-interval-15*time.Second))
	b, err := os.ReadFile(outPath)
	require.NoError(t, err)
	leases := strings.Count(string(b), "WAITING-WORKER LEASE")
	checks := float64(n) * window.Seconds() / interval.Seconds()
	var used, net [3]time.Duration
	for i := range used {
		used[i] = c1[i] - c0[i]
		net[i] = max(0, used[i]-base[i])
	}
	perHour := func(d time.Duration) string {
		return fmt.Sprintf("%.0f", d.Seconds()/checks*float64(n)*6) // 6 checks an hour at the default 10 min
	}
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	t.Logf("MEASURE %d waiting trades, scanInterval %s, window %s (from %s UTC): worker RSS %d MB (idle before the trades %d MB, peak %d MB); "+
		"CPU in the window (worker, monerod, Temporal): %s, %s, %s; the same without trades: %s, %s, %s; "+
		"net per hour at the default 10 min (≈ %.0f checks in the window): %s, %s, %s CPU-s; "+
		"trades checked in the last interval: %d of %d; wallet-rpc lease attempts: %d",
		n, interval, window, windowStart.UTC().Format("15:04:05"), rss/1024, idleRSS/1024, hwm/1024,
		round(used[0]), round(used[1]), round(used[2]), round(base[0]), round(base[1]), round(base[2]),
		checks, perHour(net[0]), perHour(net[1]), perHour(net[2]), fresh, n, leases)
	require.Zero(t, leases, "a waiting trade needs no wallet-rpc process")
}

func waitingID(i int) string { return fmt.Sprintf("wait%04d", i) }

// scannedSince counts the deposit scan states written after since.
func scannedSince(t *testing.T, dir string, since time.Time) int {
	m, err := filepath.Glob(filepath.Join(dir, "*.depositscan.json"))
	require.NoError(t, err)
	k := 0
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(since) {
			k++
		}
	}
	return k
}

// vmKB reads a kB field of /proc/<pid>/status.
func vmKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// newAddress returns a fresh standard regtest (mainnet-format) address and
// its private view key.
func newAddress(t *testing.T) (viewHex, address string) {
	t.Helper()
	scalar := func() *edwards25519.Scalar {
		var b [64]byte
		_, err := rand.Read(b[:])
		require.NoError(t, err)
		s, err := edwards25519.NewScalar().SetUniformBytes(b[:])
		require.NoError(t, err)
		return s
	}
	spend, view := scalar(), scalar()
	raw := []byte{18}
	raw = append(raw, new(edwards25519.Point).ScalarBaseMult(spend).Bytes()...)
	raw = append(raw, new(edwards25519.Point).ScalarBaseMult(view).Bytes()...)
	h := sha3.NewLegacyKeccak256()
	h.Write(raw)
	raw = append(raw, h.Sum(nil)[:4]...)
	return hex.EncodeToString(view.Bytes()), encodeBase58(raw)
}

// encodeBase58 is Monero's block-wise base58 (8 bytes → 11 characters).
func encodeBase58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	sizes := map[int]int{1: 2, 2: 3, 3: 5, 4: 6, 5: 7, 6: 9, 7: 10, 8: 11}
	var sb strings.Builder
	for len(b) > 0 {
		k := min(8, len(b))
		v := new(big.Int).SetBytes(b[:k])
		digits := make([]byte, sizes[k])
		for i := len(digits) - 1; i >= 0; i-- {
			m := new(big.Int)
			v.DivMod(v, big.NewInt(58), m)
			digits[i] = alphabet[m.Int64()]
		}
		sb.Write(digits)
		b = b[k:]
	}
	return sb.String()
}

// TestWaitingWorkerProcess is the worker of TestMeasureWaitingTrades (run
// only as its child): the real EscrowTrade workflow and activities, a stub
// EscrowSetup, no wallet-rpc process.
func TestWaitingWorkerProcess(t *testing.T) {
	if os.Getenv(waitingWorkerEnv) != "1" {
		t.Skip("the worker process of TestMeasureWaitingTrades")
	}
	cd, err := codec.ParseKeys(os.Getenv("W_KEYS"))
	require.NoError(t, err)
	log, err := worker.NewLogger("info", "json") // the worker's default level, to stderr
	require.NoError(t, err)
	tc, err := client.Dial(client.Options{HostPort: os.Getenv("W_TEMPORAL"), DataConverter: cd.DataConverter(),
		Logger: worker.SDKLogger(log)})
	require.NoError(t, err)
	defer tc.Close()
	store, err := walletstore.Open(os.Getenv("W_DIR"))
	require.NoError(t, err)
	passwords, err := activities.NewPasswords([]byte(masterSecret))
	require.NoError(t, err)
	const hostQueue = "escrow-host-waiting"
	acts := activities.New(activities.Config{Leases: &countingLeaser{}, Store: store, Passwords: passwords,
		Daemon: rpcclient.NewDaemon(os.Getenv("W_DAEMON"), 2*time.Minute), Network: "regtest",
		WalletRPCVersion: "0.18.0.0", HostTaskQueue: hostQueue, Logger: log})
	address := os.Getenv("W_ADDRESS")
	n, _ := strconv.Atoi(os.Getenv("W_N"))
	for i := range n {
		require.NoError(t, acts.RecordViewKey(waitingID(i), string(escrow.Arbiter), address, os.Getenv("W_VIEWKEY")))
	}
	setup := func(ctx workflow.Context, in escrow.SetupInput) (escrow.SetupResult, error) {
		res := escrow.SetupResult{EscrowID: in.EscrowID, MultisigAddress: address, HostTaskQueue: hostQueue, Wallets: map[escrow.Role]escrow.WalletResult{}}
		for _, r := range escrow.Roles {
			res.Wallets[r] = escrow.WalletResult{Wallet: in.EscrowID + "." + string(r) + ".final", Address: address}
		}
		return res, nil
	}
	// The worker's own options (worker.startWorkers).
	shared := sdkworker.New(tc, escrow.TaskQueue, sdkworker.Options{WorkerStopTimeout: 10 * time.Second})
	shared.RegisterWorkflowWithOptions(setup, workflow.RegisterOptions{Name: escrow.WorkflowName})
	shared.RegisterWorkflowWithOptions(workflows.EscrowTrade, workflow.RegisterOptions{Name: escrow.TradeWorkflowName})
	shared.RegisterActivity(acts)
	host := sdkworker.New(tc, hostQueue, sdkworker.Options{WorkerStopTimeout: 10 * time.Second})
	host.RegisterActivity(acts)
	require.NoError(t, host.Start())
	require.NoError(t, shared.Start())
	fmt.Println("WAITING-WORKER READY")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	shared.Stop()
	host.Stop()
}

// countingLeaser has no wallet-rpc process: every attempt fails and is
// printed.
type countingLeaser struct {
	activities.Leaser
	n atomic.Int64
}

func (l *countingLeaser) Acquire(context.Context, string) (activities.Lease, error) {
	fmt.Printf("WAITING-WORKER LEASE %d\n", l.n.Add(1))
	return nil, fmt.Errorf("no wallet-rpc process in this measurement")
}

func (l *countingLeaser) Forget(string) {}
