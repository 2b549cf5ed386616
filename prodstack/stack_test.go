// Package prodstack_test runs the production stack of scripts/prod-up.sh —
// PostgreSQL, the Temporal server 1.29.1 with mutual TLS on the frontend,
// two workers — on free 127.0.0.1 ports in a temporary folder, and drives
// escrows through package starter over mutual TLS, with a worker killed and
// PostgreSQL restarted mid-round. The stack is stopped by scripts/prod-down.sh,
// which signals only the pids prod-up.sh recorded.
package prodstack_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/temporalconn"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is one prod-up.sh stack.
type stack struct {
	repo, dir string
	env       []string
	address   string
	pgPort    int
	uiPort    int
}

// require reports a missing prerequisite: a failure under CI, a skip
// otherwise (as testenv does for the CLI and wallet-rpc).
func requireFile(t *testing.T, path, hint string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s missing (%s); a missing prerequisite is a failure in CI", path, hint)
		}
		t.Skipf("%s missing (%s)", path, hint)
	}
}

func startStack(t *testing.T) *stack {
	t.Helper()
	repo := testenv.RepoRoot(t)
	bin := filepath.Join(repo, "bin")
	requireFile(t, filepath.Join(bin, "temporal-server"), "make prereqs-test builds it")
	requireFile(t, filepath.Join(bin, "temporal-sql-tool"), "make prereqs-test builds it")
	requireFile(t, filepath.Join(bin, "temporal-ui-server"), "make prereqs-test builds it")
	pgBins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(pgBins) == 0 {
		// prod-up.sh installs PostgreSQL itself, which needs root.
		if os.Geteuid() != 0 {
			requireFile(t, "/usr/lib/postgresql/<version>/bin/initdb", "apt-get install postgresql")
		}
	}
	testenv.RequireBinary(t, "openssl")
	testenv.RequireBinary(t, "monero-wallet-rpc")
	cli := testenv.TemporalCLI(t)
	workerBin := testenv.BuildBinary(t, "./cmd/escrow-worker")

	dir := t.TempDir()
	// The postgres user runs the database out of dir: it must reach it.
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	s := &stack{repo: repo, dir: dir, pgPort: testenv.FreePort(t)}
	ports := map[string]int{}
	for _, name := range []string{"FRONTEND_GRPC_PORT", "FRONTEND_HTTP_PORT", "HISTORY_GRPC_PORT", "MATCHING_GRPC_PORT",
		"WORKER_GRPC_PORT", "PROD_UI_PORT", "PROD_CODEC_PORT", "PROD_METRICS_PORT", "PROD_METRICS_PORT_2"} {
		ports[name] = testenv.FreePort(t)
	}
	// The server keeps its membership ports in a PostgreSQL smallint
	// column (cluster_membership.rpc_port): they must be below 32768,
	// where the kernel's ephemeral ports never are.
	for _, name := range []string{"FRONTEND_MEMBERSHIP_PORT", "HISTORY_MEMBERSHIP_PORT", "MATCHING_MEMBERSHIP_PORT", "WORKER_MEMBERSHIP_PORT"} {
		ports[name] = freeSmallPort(t)
	}
	s.address = fmt.Sprintf("127.0.0.1:%d", ports["FRONTEND_GRPC_PORT"])
	s.env = append(os.Environ(),
		"ESCROWFLOW_PROD_DIR="+dir,
		"ESCROWFLOW_TEMPORAL_CLI="+cli,
		"ESCROWFLOW_WORKER_BIN="+workerBin,
		"PROD_PG_PORT="+strconv.Itoa(s.pgPort),
		// One escrow per worker at a time (pool of 3), no warm stock: two
		// workers on a shared 2-core machine.
		"PROD_POOL_SIZE=3",
		"PROD_WALLET_STOCK=0",
	)
	for name, port := range ports {
		s.env = append(s.env, name+"="+strconv.Itoa(port))
	}
	s.uiPort = ports["PROD_UI_PORT"]
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"temporal-server", "worker-1", "worker-2", "sql-tool"} {
				t.Logf("--- tail of logs/%s.log:\n%s", f, tailFile(filepath.Join(dir, "logs", f+".log"), 30))
			}
		}
		if out, err := s.script("prod-down.sh"); err != nil {
			t.Errorf("prod-down.sh: %v\n%s", err, out)
		}
	})
	out, err := s.script("prod-up.sh")
	require.NoError(t, err, "prod-up.sh:\n%s", out)
	return s
}

var (
	smallMu    sync.Mutex
	smallGiven = map[int]bool{}
)

// freeSmallPort returns a port in [20000, 32767] free on 127.0.0.1 a moment
// ago, never the same twice in this process.
func freeSmallPort(t *testing.T) int {
	t.Helper()
	smallMu.Lock()
	defer smallMu.Unlock()
	for range 200 {
		n, err := rand.Int(rand.Reader, big.NewInt(32767-20000))
		require.NoError(t, err)
		port := 20000 + int(n.Int64())
		if smallGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		require.NoError(t, l.Close())
		smallGiven[port] = true
		return port
	}
	t.Fatal("no free port below 32768")
	return 0
}

// script runs scripts/NAME with the stack's environment.
func (s *stack) script(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(s.repo, "scripts", name), args...)
	cmd.Env = s.env
	cmd.Dir = s.repo
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *stack) tls(name string) string { return filepath.Join(s.dir, "tls", name) }

// dial connects a starter client with sec to the stack's frontend.
func (s *stack) dial(ctx context.Context, sec temporalconn.Security) (*starter.Client, error) {
	cd, err := codec.LoadKeys(filepath.Join(s.dir, "secrets", "codec.keys"))
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort:      s.address,
		Namespace:     "default",
		DataConverter: cd.DataConverter(),
		Logger:        sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	}
	if err := sec.Apply(&opts); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return starter.DialContext(ctx, opts)
}

// clientCert is the security of the stack's client certificate.
func (s *stack) clientCert() temporalconn.Security {
	return temporalconn.Security{CertFile: s.tls("client.pem"), KeyFile: s.tls("client.key"), CAFile: s.tls("ca.pem")}
}

// pid reads run/NAME.pid.
func (s *stack) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "run", name+".pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// postmasterPID is the pid of the running PostgreSQL server.
func (s *stack) postmasterPID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "postgres", "data", "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	return pid
}

// claimedBy returns the worker (1 or 2) whose wallet dir holds the escrow's
// claim, or 0.
func (s *stack) claimedBy(id string) int {
	for i := 1; i <= 2; i++ {
		if _, err := os.Stat(filepath.Join(s.dir, fmt.Sprintf("wallets-%d", i), id+".claim")); err == nil {
			return i
		}
	}
	return 0
}

// psql runs a query on database db as the cluster's superuser and returns
// its unaligned output.
func (s *stack) psql(t *testing.T, db, query string) string {
	t.Helper()
	pgBins, err := filepath.Glob("/usr/lib/postgresql/*/bin/psql")
	require.NoError(t, err)
	require.NotEmpty(t, pgBins)
	args := []string{pgBins[len(pgBins)-1], "-h", filepath.Join(s.dir, "postgres", "run"), "-p", strconv.Itoa(s.pgPort),
		"-U", "postgres", "-d", db, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", query}
	if os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "psql: %s", out)
	return strings.TrimSpace(string(out))
}

// startAll starts the escrows ids.
func startAll(ctx context.Context, t *testing.T, sc *starter.Client, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, err := sc.Start(ctx, id)
		require.NoError(t, err, "start %s", id)
	}
}

// waitAll waits for every escrow and checks its address was confirmed by all
// three roles.
func waitAll(ctx context.Context, t *testing.T, sc *starter.Client, ids ...string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			res, err := sc.Wait(ctx, id)
			if err == nil && (res.MultisigAddress == "" || len(res.Wallets) != 3) {
				err = fmt.Errorf("result without address or wallets: %+v", res)
			}
			if err == nil {
				for role, w := range res.Wallets {
					if w.Address != res.MultisigAddress {
						err = fmt.Errorf("%s reports %q, not the multisig address", role, w.Address)
					}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "escrow %s", ids[i])
	}
}

// waitState waits until one of ids is in one of states on worker (0: any)
// and returns it.
func waitState(ctx context.Context, t *testing.T, s *stack, sc *starter.Client, worker int, ids []string, states ...escrow.State) string {
	t.Helper()
	var found string
	testenv.WaitFor(t, 4*time.Minute, fmt.Sprintf("an escrow of %v in %v on worker %d", ids, states, worker), func() bool {
		for _, id := range ids {
			if worker != 0 && s.claimedBy(id) != worker {
				continue
			}
			st, err := sc.Status(ctx, id)
			if err != nil {
				continue
			}
			for _, want := range states {
				if st.State == want {
					found = id
					return true
				}
			}
		}
		return false
	})
	return found
}

func TestProductionStack(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	sc, err := s.dial(ctx, s.clientCert())
	require.NoError(t, err, "a client with the CA's certificate connects over mutual TLS")
	defer sc.Close()
	var all []string

	t.Run("escrows over mutual TLS complete on both workers", func(t *testing.T) {
		ids := []string{"tls-1", "tls-2", "tls-3", "tls-4"}
		startAll(ctx, t, sc, ids...)
		waitAll(ctx, t, sc, ids...)
		all = append(all, ids...)
		byWorker := map[int]int{}
		for _, id := range ids {
			byWorker[s.claimedBy(id)]++
		}
		assert.Positive(t, byWorker[1], "worker 1 ran escrows: %v", byWorker)
		assert.Positive(t, byWorker[2], "worker 2 ran escrows: %v", byWorker)
		assert.Zero(t, byWorker[0], "every escrow is claimed by one worker: %v", byWorker)
	})

	t.Run("EscrowState queries answer through PostgreSQL visibility", func(t *testing.T) {
		testenv.WaitFor(t, time.Minute, "the completed escrows listed", func() bool {
			got, err := sc.List(ctx, escrow.StateCompleted, 0)
			require.NoError(t, err)
			n := 0
			for _, e := range got {
				if strings.HasPrefix(e.EscrowID, "tls-") {
					n++
				}
			}
			return n == 4
		})
		// The rows are in PostgreSQL's visibility database.
		rows := s.psql(t, "temporal_visibility", "SELECT count(*) FROM executions_visibility WHERE workflow_id LIKE 'escrow-tls-%' AND status = 2")
		assert.Equal(t, "4", rows, "completed executions in temporal_visibility")
	})

	t.Run("the Web UI reads PostgreSQL visibility over mutual TLS", func(t *testing.T) {
		url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces/default/workflows?query=%s", s.uiPort,
			neturl.QueryEscape(`EscrowState="COMPLETED"`))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		for _, id := range []string{"tls-1", "tls-2", "tls-3", "tls-4"} {
			assert.Contains(t, string(body), `"escrow-`+id+`"`)
		}
	})

	t.Run("clients without a valid certificate are refused", func(t *testing.T) {
		other := otherCA(t)
		tests := []struct {
			name string
			give temporalconn.Security
		}{
			{"no client certificate", temporalconn.Security{CAFile: s.tls("ca.pem")}},
			{"certificate of another CA", temporalconn.Security{CertFile: other.cert, KeyFile: other.key, CAFile: s.tls("ca.pem")}},
			{"plaintext", temporalconn.Security{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := "refused-" + strings.ReplaceAll(tt.name, " ", "-")
				bad, err := s.dial(ctx, tt.give)
				if err == nil {
					_, err = bad.Start(ctx, id)
					bad.Close()
				}
				require.Error(t, err, "the frontend must refuse this client")
				_, derr := sc.Describe(ctx, id)
				assert.Error(t, derr, "no escrow %s was started", id)
			})
		}
	})

	t.Run("a worker SIGKILLed mid-round and restarted completes its escrows", func(t *testing.T) {
		ids := []string{"kill-1", "kill-2"}
		startAll(ctx, t, sc, ids...)
		all = append(all, ids...)
		victim := waitState(ctx, t, s, sc, 1, ids, escrow.StateMaking, escrow.StateExchanging)
		pid := s.pid(t, "worker-1")
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		testenv.WaitFor(t, 30*time.Second, "worker 1 gone", func() bool { return testenv.ProcessGone(pid) })
		d, err := sc.Describe(ctx, victim)
		require.NoError(t, err)
		require.Equal(t, "Running", d.Summary.Status, "the kill landed before %s completed", victim)

		out, err := s.script("prod-up.sh")
		require.NoError(t, err, "prod-up.sh restarts worker 1:\n%s", out)
		assert.NotEqual(t, pid, s.pid(t, "worker-1"), "a new worker 1")
		waitAll(ctx, t, sc, ids...)
		assert.Equal(t, 1, s.claimedBy(victim), "%s stayed on worker 1, which holds its files", victim)
	})

	t.Run("PostgreSQL restarted mid-round loses nothing", func(t *testing.T) {
		ids := []string{"pg-1", "pg-2"}
		startAll(ctx, t, sc, ids...)
		all = append(all, ids...)
		waitState(ctx, t, s, sc, 0, ids, escrow.StateMaking, escrow.StateExchanging)
		before := s.postmasterPID(t)
		out, err := s.script("prod-down.sh", "postgres")
		require.NoError(t, err, "stop PostgreSQL:\n%s", out)
		testenv.WaitFor(t, 30*time.Second, "PostgreSQL stopped", func() bool { return testenv.ProcessGone(before) })
		out, err = s.script("prod-up.sh")
		require.NoError(t, err, "start PostgreSQL again:\n%s", out)
		assert.NotEqual(t, before, s.postmasterPID(t), "a new PostgreSQL server")

		waitAll(ctx, t, sc, ids...)
		testenv.WaitFor(t, time.Minute, "every escrow of this test listed COMPLETED", func() bool {
			got, err := sc.List(ctx, escrow.StateCompleted, 0)
			require.NoError(t, err)
			seen := map[string]bool{}
			for _, e := range got {
				seen[e.EscrowID] = true
			}
			for _, id := range all {
				if !seen[id] {
					return false
				}
			}
			return true
		})
	})
}

type pair struct{ cert, key string }

// otherCA writes a self-signed client certificate the stack's CA never saw.
func otherCA(t *testing.T) pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "escrowctl"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	p := pair{cert: filepath.Join(dir, "c.pem"), key: filepath.Join(dir, "k.pem")}
	require.NoError(t, os.WriteFile(p.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(p.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600))
	_, err = tls.LoadX509KeyPair(p.cert, p.key)
	require.NoError(t, err)
	return p
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = append(l[:400:400], "…"...)
		}
	}
	return string(bytes.Join(lines, []byte("\n")))
}
