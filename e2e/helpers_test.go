// Package e2e holds the end-to-end tests: the real Temporal dev server, the
// real worker (in-process or as a separate process) and real
// monero-wallet-rpc processes.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/internal/workertest"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// masterSecret is the test worker's master secret; the tests derive the
// wallet passwords from it to open the final wallets themselves.
const masterSecret = "e2e-master-secret-0123456789abcdef0123456789abcdef"

func password(t *testing.T, escrowID string, role escrow.Role) string {
	t.Helper()
	p, err := activities.NewPasswords([]byte(masterSecret))
	require.NoError(t, err)
	pw, err := p.For(escrowID, string(role))
	require.NoError(t, err)
	return pw
}

// inProcessWorker runs worker.Run in this process (see runWorker) and
// returns its observed logs; tweak adjusts the configuration first.
func inProcessWorker(t *testing.T, hostPort, walletDir string, poolSize int, tweak ...func(*worker.Config)) *observer.ObservedLogs {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	runWorker(t, hostPort, walletDir, poolSize, core, tweak...)
	return logs
}

// runWorker runs worker.Run in this process, logging to core, with its
// metrics listener on a free port, and waits until its /readyz answers 200;
// the worker stops when the test ends (its error fails the test).
func runWorker(t *testing.T, hostPort, walletDir string, poolSize int, core zapcore.Core, tweak ...func(*worker.Config)) {
	t.Helper()
	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = hostPort
	cfg.WalletDir = walletDir
	cfg.PoolSize = poolSize
	cfg.WalletRPCBinary = testenv.RequireBinary(t, "monero-wallet-rpc")
	cfg.MasterSecret = []byte(masterSecret)
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// The tests read results and record histories with a plain client;
	// codec_test.go sets a key ring instead.
	cfg.Codec.InsecurePlaintextHistory = true
	for _, f := range tweak {
		f(&cfg)
	}
	workertest.Run(t, cfg, zap.New(core))
}

// verifyWallets copies the three final wallets of res out of walletDir,
// opens each independently in a fresh wallet-rpc, and checks that each is
// a ready 2-of-3 multisig wallet reporting res.MultisigAddress.
func verifyWallets(t *testing.T, walletDir string, res *escrow.SetupResult) {
	t.Helper()
	require.NotEmpty(t, res.MultisigAddress)
	dir := t.TempDir()
	for _, role := range escrow.Roles {
		w := res.Wallets[role]
		require.Equal(t, res.MultisigAddress, w.Address, "%s address in the result", role)
		for _, suffix := range []string{"", ".keys", ".address.txt"} {
			copyFile(t, filepath.Join(walletDir, w.Wallet+suffix), filepath.Join(dir, string(role)+suffix))
		}
	}
	p, err := pool.Start(context.Background(), pool.Config{
		Binary: testenv.RequireBinary(t, "monero-wallet-rpc"), Size: 1, WalletDir: dir,
	})
	require.NoError(t, err)
	defer p.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := p.Acquire(ctx, "verify")
	require.NoError(t, err)
	defer l.Release("")
	for _, role := range escrow.Roles {
		require.NoError(t, l.Client.OpenWallet(ctx, string(role), password(t, res.EscrowID, role)), "%s", role)
		st, err := l.Client.IsMultisig(ctx)
		require.NoError(t, err)
		require.Equal(t, rpcclient.MultisigStatus{Multisig: true, Ready: true, Threshold: 2, Total: 3}, st, "%s", role)
		addr, err := l.Client.GetAddress(ctx)
		require.NoError(t, err)
		require.Equal(t, res.MultisigAddress, addr, "%s reopened", role)
		require.NoError(t, l.Client.CloseWallet(ctx))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// waitState polls the status query until the escrow reaches one of states.
func waitState(t *testing.T, sc *starter.Client, escrowID string, states ...escrow.State) escrow.Status {
	t.Helper()
	var st escrow.Status
	testenv.WaitFor(t, 3*time.Minute, fmt.Sprintf("%s in %v", escrowID, states), func() bool {
		var err error
		st, err = sc.Status(context.Background(), escrowID)
		if err != nil {
			return false
		}
		for _, s := range states {
			if st.State == s {
				return true
			}
		}
		return false
	})
	return st
}

// walletFiles lists the files of escrowID in walletDir.
func walletFiles(t *testing.T, walletDir, escrowID string) []string {
	t.Helper()
	entries, err := os.ReadDir(walletDir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), escrowID+".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitLeased waits until the JSON log at path records a lease for a step of
// escrowID in round. It reads the worker's own log, every 20 ms, instead of
// querying Temporal: a query is answered by the worker's workflow task and can
// take seconds while the wallet-rpc processes hold both cores, longer than a
// round lasts.
func waitLeased(t *testing.T, path, escrowID string, round escrow.Round) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var offset int64
	var rest []byte
	for {
		f, err := os.Open(path)
		require.NoError(t, err)
		_, err = f.Seek(offset, io.SeekStart)
		require.NoError(t, err)
		b, err := io.ReadAll(f)
		_ = f.Close()
		require.NoError(t, err)
		offset += int64(len(b))
		rest = append(rest, b...)
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			var line struct {
				Msg      string `json:"msg"`
				EscrowID string `json:"escrow_id"`
				Round    string `json:"round"`
			}
			if json.Unmarshal(rest[:i], &line) == nil && line.Msg == "lease acquired" &&
				line.EscrowID == escrowID && line.Round == string(round) {
				return
			}
			rest = rest[i+1:]
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 3m0s waiting for a lease of %s in %s in %s", escrowID, round, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonLogPIDs reads the pids of "wallet-rpc ready" lines of a JSON log.
func jsonLogPIDs(t *testing.T, path string) []int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var pids []int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "wallet-rpc ready" {
			pids = append(pids, line.PID)
		}
	}
	return pids
}

// workerProcess runs cmd/escrow-worker as a separate process on tp with its
// own wallet dir and JSON log; it is stopped (SIGTERM) when the test ends
// unless the test killed it.
type workerProcess struct {
	cmd     *exec.Cmd
	logPath string
}

func startWorkerProcess(t *testing.T, hostPort, walletDir, logPath string, env ...string) *workerProcess {
	t.Helper()
	bin := testenv.BuildBinary(t, "./cmd/escrow-worker")
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--log-format", "json")
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd.Env = append(append(os.Environ(),
		"TEMPORAL_ADDRESS="+hostPort,
		"ESCROWFLOW_WALLET_DIR="+walletDir,
		"ESCROWFLOW_WALLET_RPC="+testenv.RequireBinary(t, "monero-wallet-rpc"),
		"ESCROWFLOW_MASTER_SECRET="+masterSecret,
		"ESCROWFLOW_METRICS_ADDRESS="+metricsAddr,
		"ESCROWFLOW_INSECURE_PLAINTEXT_HISTORY=true",
	), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
		_ = f.Close()
	})
	workertest.WaitReady(t, metricsAddr)
	return &workerProcess{cmd: cmd, logPath: logPath}
}

// kill ends the worker with SIGKILL and waits for it.
func (w *workerProcess) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, w.cmd.Process.Kill())
	_ = w.cmd.Wait()
}
