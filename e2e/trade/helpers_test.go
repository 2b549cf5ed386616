// Package trade holds the end-to-end tests of the money flow: the real
// Temporal dev server, the real worker, real monero-wallet-rpc processes
// and a real regtest monerod with a faucet, one chain and one server for
// the package. Each recipient's own wallet, opened independently, must
// show the exact amount the trade decided.
package trade

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/regtest"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/internal/workertest"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

func TestMain(m *testing.M) { testenv.Main(m, regtest.StopShared) }

const masterSecret = "e2e-trade-master-secret-0123456789abcdef0123456789"

// env is what the package's tests share: a Temporal dev server, the chain
// with its faucet, a codec key ring and a starter client using it.
type env struct {
	tp     *testenv.Temporal
	chain  *regtest.Chain
	faucet *regtest.Faucet
	keys   string
	sc     *starter.Client
	tc     client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Temporal, monerod and monero-wallet-rpc")
	}
	keys, err := codec.NewKey("trade")
	require.NoError(t, err)
	cd, err := codec.ParseKeys(keys)
	require.NoError(t, err)
	dc := cd.DataConverter()
	if recording() {
		keys, dc = "", codec.Plain() // replay reads the recorded payloads as they are
	}
	tp := testenv.StartTemporal(t)
	chain := regtest.Shared(t)
	e := &env{tp: tp, chain: chain, faucet: chain.Faucet(t), keys: keys}
	tc, err := client.Dial(client.Options{HostPort: tp.HostPort, DataConverter: dc})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	e.sc, e.tc = starter.New(tc), tc
	return e
}

// workerConfig is the worker's configuration on this chain.
func (e *env) workerConfig(t *testing.T, walletDir string, poolSize int) worker.Config {
	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = e.tp.HostPort
	cfg.WalletDir = walletDir
	cfg.PoolSize = poolSize
	cfg.WalletStock = 0
	cfg.WalletRPCBinary = testenv.RequireBinary(t, "monero-wallet-rpc")
	cfg.MasterSecret = []byte(masterSecret)
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.Network = "regtest"
	cfg.DaemonAddress = e.chain.Address
	cfg.TrustedDaemon = true
	cfg.Codec = worker.CodecConfig{Keys: e.keys, InsecurePlaintextHistory: e.keys == ""} // plaintext only when recording
	return cfg
}

// runWorker runs worker.Run in this process until the test ends and
// waits for its /readyz.
func (e *env) runWorker(t *testing.T, cfg worker.Config) {
	t.Helper()
	workertest.Run(t, cfg, zap.NewNop())
}

// workerProcess runs cmd/escrow-worker with cfg's settings (as env) and a
// JSON log; stopped with SIGTERM at the test's end unless killed.
type workerProcess struct {
	cmd    *exec.Cmd
	log    string
	killed chan struct{} // closed once killOn was seen and the worker killed
}

// startWorkerProcess starts the worker, copying its output line by line to
// logPath. When killOn is set, the copier SIGKILLs the worker the moment a
// line containing killOn arrives, before reading further output: the
// worker dies within the time it takes to read a pipe, long before its
// next activity can be scheduled.
func (e *env) startWorkerProcess(t *testing.T, cfg worker.Config, logPath, killOn string) *workerProcess {
	t.Helper()
	bin := testenv.BuildBinary(t, "./cmd/escrow-worker")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--log-format", "json")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd.Env = append(os.Environ(),
		"TEMPORAL_ADDRESS="+cfg.TemporalAddress,
		"ESCROWFLOW_WALLET_DIR="+cfg.WalletDir,
		"ESCROWFLOW_WALLET_RPC="+cfg.WalletRPCBinary,
		"ESCROWFLOW_MASTER_SECRET="+masterSecret,
		"ESCROWFLOW_METRICS_ADDRESS="+metricsAddr,
		fmt.Sprintf("ESCROWFLOW_POOL_SIZE=%d", cfg.PoolSize),
		"ESCROWFLOW_WALLET_STOCK=0",
		"ESCROWFLOW_NETWORK=regtest",
		"ESCROWFLOW_DAEMON_ADDRESS="+cfg.DaemonAddress,
		"ESCROWFLOW_TRUSTED_DAEMON=true",
		"ESCROWFLOW_CODEC_KEYS="+e.keys,
		fmt.Sprintf("%s=%t", worker.EnvInsecurePlaintextHistory, e.keys == ""),
	)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	w := &workerProcess{cmd: cmd, log: logPath, killed: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		armed := killOn != ""
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = f.Write(append(line, '\n'))
			if armed && bytes.Contains(line, []byte(killOn)) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				armed = false
				close(w.killed)
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-copied
			_ = cmd.Wait()
		}
		_ = f.Close()
	})
	workertest.WaitReady(t, metricsAddr)
	return w
}

// waitKilled waits until the worker was killed on its trigger line.
func (w *workerProcess) waitKilled(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-w.killed:
		_ = w.cmd.Wait()
	case <-time.After(timeout):
		t.Fatalf("the worker never logged its kill trigger within %s", timeout)
	}
}

// tradeInput is a trade of amount between fresh vendor and buyer wallets
// on the chain, with short confirmations and scans.
func tradeInput(id string, amount uint64, vendor, buyer *regtest.Wallet) escrow.TradeInput {
	return escrow.TradeInput{EscrowID: id, AmountAtomic: amount, VendorAddress: vendor.Address,
		BuyerRefundAddress: buyer.Address, Confirmations: 1, ScanInterval: "3s", DepositTimeout: "30m"}
}

// waitTrade polls the status query until the trade is in one of states.
func (e *env) waitTrade(t *testing.T, id string, timeout time.Duration, states ...escrow.TradeState) escrow.TradeStatus {
	t.Helper()
	var st escrow.TradeStatus
	testenv.WaitFor(t, timeout, fmt.Sprintf("trade %s in %v", id, states), func() bool {
		var err error
		st, err = e.sc.TradeStatus(context.Background(), id)
		if err != nil {
			return false
		}
		for _, s := range states {
			if st.State == s {
				return true
			}
		}
		return st.State == escrow.TradeFailed
	})
	require.NotEqual(t, escrow.TradeFailed, st.State, "trade %s failed: %s (%s)", id, st.Reason, st.ReasonType)
	return st
}

// finish waits for the trade's result and checks it is final state.
func (e *env) finish(t *testing.T, id string, want escrow.TradeState) escrow.TradeStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := e.sc.WaitTrade(ctx, id)
	require.NoError(t, err, "trade %s", id)
	require.Equal(t, want, res.State)
	e.saveHistory(t, id)
	return *res
}

// received waits until w's own wallet shows n incoming transfers with a
// confirmation and returns their sum.
func received(t *testing.T, w *regtest.Wallet, n int) uint64 {
	t.Helper()
	var sum uint64
	var got int
	testenv.WaitFor(t, 2*time.Minute, fmt.Sprintf("%d transfer(s) to %s…", n, w.Address[:8]), func() bool {
		var err error
		sum, got, err = w.ReceivedE(1)
		return err == nil && got >= n
	})
	require.Equal(t, n, got, "transfers to %s…", w.Address[:8])
	return sum
}

// feeBudget is the payout fee budget the worker plans with for a payout
// of the given shape (the same activity, on the same daemon).
func (e *env) feeBudget(t *testing.T, outputs, inputs int) uint64 {
	t.Helper()
	acts := activities.New(activities.Config{Daemon: e.chain.Daemon, Network: "regtest"})
	out, err := acts.EstimatePayoutFee(context.Background(), activities.FeeInput{Outputs: outputs, Inputs: inputs})
	require.NoError(t, err)
	return out.BudgetAtomic
}

// requireRejected asserts an update was rejected by the trade's validator.
func requireRejected(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	require.True(t, errors.Is(err, starter.ErrUpdateRejected), "%s: want a rejected update, got %v", what, err)
}
