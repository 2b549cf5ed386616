// Package worker is the escrowflow worker process: configuration, logging,
// the wallet-rpc pool and the Temporal worker that runs the EscrowSetup
// workflow and its activities.
package worker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Environment variables read by ConfigFromEnv. Flags override them.
const (
	EnvTemporalAddress    = "TEMPORAL_ADDRESS"
	EnvNamespace          = "TEMPORAL_NAMESPACE"
	EnvWalletDir          = "ESCROWFLOW_WALLET_DIR"
	EnvPoolSize           = "ESCROWFLOW_POOL_SIZE"
	EnvWalletRPCBinary    = "ESCROWFLOW_WALLET_RPC"
	EnvWalletRPCArgs      = "ESCROWFLOW_WALLET_RPC_ARGS"
	EnvWalletRPCEndpoints = "ESCROWFLOW_WALLET_RPC_ENDPOINTS"
	EnvWalletRPCLogin     = "ESCROWFLOW_WALLET_RPC_LOGIN"
	EnvNetwork            = "ESCROWFLOW_NETWORK"
	EnvDaemonAddress      = "ESCROWFLOW_DAEMON_ADDRESS"
	EnvTrustedDaemon      = "ESCROWFLOW_TRUSTED_DAEMON"
	EnvMasterSecret       = "ESCROWFLOW_MASTER_SECRET"
	EnvMasterSecretFile   = "ESCROWFLOW_MASTER_SECRET_FILE"
	EnvMaxConcurrentCalls = "ESCROWFLOW_MAX_CONCURRENT_CALLS"
	EnvLogLevel           = "ESCROWFLOW_LOG_LEVEL"
	EnvLogFormat          = "ESCROWFLOW_LOG_FORMAT"
	EnvMetricsAddress     = "ESCROWFLOW_METRICS_ADDRESS"
	EnvWorkerID           = "ESCROWFLOW_WORKER_ID"
	EnvMaxEscrows         = "ESCROWFLOW_MAX_ESCROWS"
	EnvWalletStock        = "ESCROWFLOW_WALLET_STOCK"
	EnvAdmitWait          = "ESCROWFLOW_ADMIT_WAIT"
)

// Config is the worker's configuration. DefaultConfig holds every default.
type Config struct {
	TemporalAddress string
	Namespace       string
	// WalletDir holds every wallet file; wallet-rpc processes use it as
	// --wallet-dir.
	WalletDir string
	// PoolSize is the number of wallet-rpc processes (one open wallet each).
	PoolSize int
	// WalletRPCBinary is the monero-wallet-rpc executable.
	WalletRPCBinary string
	// WalletRPCArgs are extra arguments for every wallet-rpc process.
	WalletRPCArgs []string
	// WalletRPCEndpoints, when set, are already-running wallet-rpc URLs the
	// worker uses instead of starting processes (user:pass@ in the URL for
	// digest auth).
	WalletRPCEndpoints []string
	// WalletRPCLogin starts wallet-rpc processes with random per-process
	// --rpc-login credentials (HTTP digest auth) instead of
	// --disable-rpc-login. Default: on.
	WalletRPCLogin bool
	// Network is testnet, stagenet, mainnet or regtest (a private chain:
	// mainnet-format addresses, a daemon whose nettype is fakechain).
	Network string
	// DaemonAddress is monerod's host:port; empty runs wallet-rpc --offline
	// (enough for the multisig setup; trades then fail NoDaemon).
	DaemonAddress string
	// TrustedDaemon passes --trusted-daemon to wallet-rpc: only for a
	// daemon the operator runs.
	TrustedDaemon bool
	// MasterSecret derives the wallet passwords. Read from
	// ESCROWFLOW_MASTER_SECRET, or from the file named by
	// ESCROWFLOW_MASTER_SECRET_FILE / --master-secret-file.
	MasterSecret     []byte
	MasterSecretFile string
	// MaxConcurrentCalls bounds the slow wallet calls running at once.
	MaxConcurrentCalls int
	// LogLevel is debug, info, warn or error; LogFormat console or json.
	LogLevel  string
	LogFormat string
	// ShutdownTimeout bounds the wait for running activities on shutdown.
	ShutdownTimeout time.Duration
	// MetricsAddress is the host:port of the Prometheus endpoint /metrics
	// (loopback by default); "" or "off" disables metrics.
	MetricsAddress string
	// WorkerID names this worker's own task queue (escrow-setup-host-<id>),
	// where the wallet activities of the escrows it claims run. It must
	// stay with the wallet dir: empty reads <wallet dir>/.worker-id,
	// creating it with a random id the first time.
	WorkerID string
	// MaxEscrows bounds the escrows this worker holds at once; beyond it,
	// claims wait a little and are then left to other workers. 0: one per
	// three wallet-rpc processes (every escrow keeps three wallets open),
	// so that escrows never take each other's processes.
	MaxEscrows int
	// AdmitWait is how long a claim beyond MaxEscrows waits for one of
	// this worker's escrows to finish before it is left to other workers
	// (0: not at all). One worker: the wait keeps it busy; several: 0
	// spreads escrows over them at once.
	AdmitWait time.Duration
	// WalletStock is how many wallets the worker creates ahead of demand,
	// each kept open in an idle wallet-rpc process, for escrows to take
	// over (0: off). See activities.RunStock.
	WalletStock int
	// Codec encrypts workflow payloads (see worker/codec.go).
	Codec CodecConfig
	// Instrumentation makes the worker write each escrow's instrumentation
	// export, escrow_<id>.json, into InstrumentationDir when it ends (see
	// worker/instrumentation.go and docs/INSTRUMENTATION.md).
	Instrumentation    bool
	InstrumentationDir string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		TemporalAddress:    "127.0.0.1:7233",
		Namespace:          "default",
		WalletDir:          "./testnet-wallets",
		PoolSize:           9,
		WalletStock:        3,
		AdmitWait:          10 * time.Second,
		WalletRPCBinary:    "monero-wallet-rpc",
		Network:            "testnet",
		MaxConcurrentCalls: runtime.NumCPU(),
		LogLevel:           "info",
		LogFormat:          "console",
		ShutdownTimeout:    30 * time.Second,
		MetricsAddress:     "127.0.0.1:9464",
		WalletRPCLogin:     true,
		InstrumentationDir: DefaultInstrumentationDir,
	}
}

// ConfigFromEnv returns DefaultConfig overridden by the environment.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	str(EnvTemporalAddress, &c.TemporalAddress)
	str(EnvNamespace, &c.Namespace)
	str(EnvWalletDir, &c.WalletDir)
	str(EnvWalletRPCBinary, &c.WalletRPCBinary)
	str(EnvNetwork, &c.Network)
	str(EnvDaemonAddress, &c.DaemonAddress)
	str(EnvMasterSecretFile, &c.MasterSecretFile)
	str(EnvLogLevel, &c.LogLevel)
	str(EnvLogFormat, &c.LogFormat)
	str(EnvMetricsAddress, &c.MetricsAddress)
	str(EnvWorkerID, &c.WorkerID)
	codecFromEnv(getenv, &c.Codec)
	if err := instrumentationFromEnv(getenv, &c); err != nil {
		return c, err
	}
	if v := getenv(EnvWalletRPCArgs); v != "" {
		c.WalletRPCArgs = strings.Fields(v)
	}
	if v := getenv(EnvWalletRPCEndpoints); v != "" {
		c.WalletRPCEndpoints = strings.Split(v, ",")
	}
	if v := getenv(EnvMasterSecret); v != "" {
		c.MasterSecret = []byte(v)
	}
	for name, dst := range map[string]*int{EnvPoolSize: &c.PoolSize, EnvMaxConcurrentCalls: &c.MaxConcurrentCalls, EnvMaxEscrows: &c.MaxEscrows, EnvWalletStock: &c.WalletStock} {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%s: %w", name, err)
			}
			*dst = n
		}
	}
	if v := getenv(EnvAdmitWait); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvAdmitWait, err)
		}
		c.AdmitWait = d
	}
	if v := getenv(EnvTrustedDaemon); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvTrustedDaemon, err)
		}
		c.TrustedDaemon = b
	}
	if v := getenv(EnvWalletRPCLogin); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvWalletRPCLogin, err)
		}
		c.WalletRPCLogin = b
	}
	return c, nil
}

// RegisterFlags binds the flags to c; their defaults are c's current values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.TemporalAddress, "temporal-address", c.TemporalAddress, "Temporal frontend host:port (env "+EnvTemporalAddress+")")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Temporal namespace (env "+EnvNamespace+")")
	fs.StringVar(&c.WalletDir, "wallet-dir", c.WalletDir, "directory of all wallet files (env "+EnvWalletDir+")")
	fs.IntVar(&c.PoolSize, "pool-size", c.PoolSize, "number of monero-wallet-rpc processes, one open wallet each (env "+EnvPoolSize+")")
	fs.StringVar(&c.WalletRPCBinary, "wallet-rpc", c.WalletRPCBinary, "monero-wallet-rpc executable (env "+EnvWalletRPCBinary+")")
	fs.Func("wallet-rpc-arg", "extra argument for every wallet-rpc process, repeatable (env "+EnvWalletRPCArgs+", space separated)", func(v string) error {
		c.WalletRPCArgs = append(c.WalletRPCArgs, v)
		return nil
	})
	fs.Func("wallet-rpc-endpoint", "use this running wallet-rpc (http://[user:pass@]127.0.0.1:PORT) instead of starting processes, repeatable (env "+EnvWalletRPCEndpoints+", comma separated)", func(v string) error {
		c.WalletRPCEndpoints = append(c.WalletRPCEndpoints, v)
		return nil
	})
	fs.BoolVar(&c.WalletRPCLogin, "wallet-rpc-login", c.WalletRPCLogin, "start wallet-rpc with random per-process rpc-login credentials, passed on a pipe (env "+EnvWalletRPCLogin+")")
	fs.StringVar(&c.Network, "network", c.Network, "testnet, stagenet, mainnet or regtest (env "+EnvNetwork+")")
	fs.StringVar(&c.DaemonAddress, "daemon-address", c.DaemonAddress, "monerod host:port; empty runs wallet-rpc --offline: escrows are set up, trades fail NoDaemon (env "+EnvDaemonAddress+")")
	fs.BoolVar(&c.TrustedDaemon, "trusted-daemon", c.TrustedDaemon, "pass --trusted-daemon to wallet-rpc; only for a daemon you run (env "+EnvTrustedDaemon+")")
	fs.StringVar(&c.MasterSecretFile, "master-secret-file", c.MasterSecretFile, "file holding the master secret wallet passwords derive from (env "+EnvMasterSecretFile+"; or the secret itself in "+EnvMasterSecret+")")
	fs.IntVar(&c.MaxConcurrentCalls, "max-concurrent-calls", c.MaxConcurrentCalls, "slow wallet calls running at once, about the number of cores (env "+EnvMaxConcurrentCalls+")")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env "+EnvLogLevel+")")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "console (for people) or json (env "+EnvLogFormat+")")
	fs.StringVar(&c.MetricsAddress, "metrics-address", c.MetricsAddress, "host:port of the Prometheus endpoint /metrics; empty or off disables it (env "+EnvMetricsAddress+")")
	fs.StringVar(&c.WorkerID, "worker-id", c.WorkerID, "this worker's id; its own task queue is escrow-setup-host-<id>; empty: kept in <wallet dir>/.worker-id (env "+EnvWorkerID+")")
	fs.IntVar(&c.MaxEscrows, "max-escrows", c.MaxEscrows, "escrows this worker holds at once; beyond it a claim waits up to 10 s, then other workers or a later retry take it; 0: one per 3 wallet-rpc processes (env "+EnvMaxEscrows+")")
	fs.IntVar(&c.WalletStock, "wallet-stock", c.WalletStock, "wallets created ahead of demand in idle wallet-rpc processes, taken over by new escrows so create_wallet leaves their critical path; 0 turns it off (env "+EnvWalletStock+")")
	fs.DurationVar(&c.AdmitWait, "admit-wait", c.AdmitWait, "how long a claim beyond --max-escrows waits for one of this worker's escrows to finish before other workers or a later retry take it; 0: at once, best with several workers (env "+EnvAdmitWait+")")
	registerInstrumentationFlags(fs, c)
	c.Codec.registerFlags(fs)
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to wait for running activities on shutdown")
}

// LoadSecret fills MasterSecret from MasterSecretFile when it is not set
// yet. Surrounding white space in the file is ignored.
func (c *Config) LoadSecret() error {
	if len(c.MasterSecret) > 0 {
		return nil
	}
	if c.MasterSecretFile == "" {
		return errors.New("no master secret: set " + EnvMasterSecret + " or " + EnvMasterSecretFile + " (--master-secret-file)")
	}
	b, err := os.ReadFile(c.MasterSecretFile)
	if err != nil {
		return fmt.Errorf("master secret: %w", err)
	}
	c.MasterSecret = []byte(strings.TrimSpace(string(b)))
	return nil
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.TemporalAddress == "":
		return errors.New("temporal address is empty")
	case c.WalletDir == "":
		return errors.New("wallet dir is empty")
	case c.PoolSize < 1 && len(c.WalletRPCEndpoints) == 0:
		return fmt.Errorf("pool size %d: want at least 1", c.PoolSize)
	case c.MaxEscrows < 0:
		return fmt.Errorf("max escrows %d: want 0 (one per 3 wallet-rpc processes) or more", c.MaxEscrows)
	case c.AdmitWait < 0:
		return fmt.Errorf("admit wait %s: want 0 or more", c.AdmitWait)
	case c.WalletStock < 0:
		return fmt.Errorf("wallet stock %d: want 0 or more", c.WalletStock)
	case c.Network != "testnet" && c.Network != "stagenet" && c.Network != "mainnet" && c.Network != "regtest":
		return fmt.Errorf("network %q: want testnet, stagenet, mainnet or regtest", c.Network)
	case c.LogFormat != "console" && c.LogFormat != "json":
		return fmt.Errorf("log format %q: want console or json", c.LogFormat)
	}
	if addr := c.metricsAddress(); addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("metrics address %q: want host:port, empty or off", c.MetricsAddress)
		}
	}
	return nil
}

// maxEscrows is MaxEscrows, or one escrow per three wallet-rpc processes
// (at least one) when it is 0: more escrows than that take each other's
// processes, and every round then reopens its wallet (measured:
// docs/BENCHMARKS.md).
func (c *Config) maxEscrows() int {
	if c.MaxEscrows > 0 {
		return c.MaxEscrows
	}
	procs := c.PoolSize
	if len(c.WalletRPCEndpoints) > 0 {
		procs = len(c.WalletRPCEndpoints)
	}
	return max(1, procs/3)
}

// metricsAddress is MetricsAddress, or "" when metrics are disabled.
func (c *Config) metricsAddress() string {
	if c.MetricsAddress == "off" {
		return ""
	}
	return c.MetricsAddress
}

// endpoints parses WalletRPCEndpoints.
func (c *Config) endpoints() ([]pool.Endpoint, error) {
	var eps []pool.Endpoint
	for _, raw := range c.WalletRPCEndpoints {
		ep, err := parseEndpoint(raw)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

var workerIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// resolveWorkerID returns WorkerID, or the id kept in walletDir/.worker-id
// (created with a random id the first time), so that a restarted worker
// polls the task queue its escrows' activities wait on.
func (c *Config) resolveWorkerID(walletDir string) (string, error) {
	if c.WorkerID != "" {
		if !workerIDPattern.MatchString(c.WorkerID) {
			return "", fmt.Errorf("worker id %q: want 1-64 of A-Z a-z 0-9 _ -", c.WorkerID)
		}
		return c.WorkerID, nil
	}
	path := filepath.Join(walletDir, ".worker-id")
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			id := strings.TrimSpace(string(b))
			if !workerIDPattern.MatchString(id) {
				return "", fmt.Errorf("%s holds %q, not a worker id", path, id)
			}
			return id, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		rnd := make([]byte, 6)
		if _, err := rand.Read(rnd); err != nil {
			return "", err
		}
		err = walletstore.AtomicCreateFile(path, []byte("w-"+hex.EncodeToString(rnd)+"\n"), 0o600)
		if err != nil && !errors.Is(err, walletstore.ErrExists) {
			return "", fmt.Errorf("worker id: %w", err)
		}
	}
}
