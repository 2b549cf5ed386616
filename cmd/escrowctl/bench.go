package main

// The bench command parses its flags and calls bench.Measure (package
// bench holds the harness and the figures).

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/escrowflow/escrowflow/bench"
	"github.com/escrowflow/escrowflow/internal/demo"
)

const (
	// defaultTemporalCLI is the pinned CLI make prereqs builds.
	defaultTemporalCLI = "bin/temporal"
	// benchMaxEscrows bounds -n.
	benchMaxEscrows = 1000
)

func benchFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	modes := fs.String("modes", "escrowflow,direct,global-lock", "comma-separated `modes`, run in this order: escrowflow (the product, on Temporal), escrowflow-cold (the same with the warm wallet stock off), direct (the wallet-rpc rounds alone), global-lock (the old design)")
	n := fs.Int("n", 3, "escrows per mode")
	c := fs.Int("c", 3, "escrows in flight at most (global-lock runs one at a time by design)")
	poolSize := fs.Int("pool-size", 9, "wallet-rpc processes of escrowflow's worker (direct runs 3 per escrow in flight, global-lock 1)")
	stock := fs.Int("wallet-stock", -1, "warm stock of escrowflow's worker (escrow-worker --wallet-stock), filled before the first escrow starts; -1: the pool size (escrowflow-cold: always 0)")
	keep := fs.Bool("keep", false, "keep the temp dir: logs, wallets, the Temporal database")
	cli := fs.String("temporal-cli", defaultTemporalCLI, "Temporal CLI `path` for the throwaway dev server (temporal from PATH when the default is missing); with --address (or TEMPORAL_ADDRESS) escrowflow runs on that running stack instead, its workers doing the work")
	walletRPC := fs.String("wallet-rpc", "monero-wallet-rpc", "monero-wallet-rpc `executable`")
	prefix := fs.String("prefix", "bench", "escrowflow escrow id `prefix`")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after this `duration`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("bench: unexpected arguments %q", args)
		}
		ms, err := bench.ParseModes(*modes)
		if err != nil {
			return usagef("bench: --modes: %v", err)
		}
		switch {
		case *n < 1 || *n > benchMaxEscrows:
			return usagef("bench: -n must be 1-%d, got %d", benchMaxEscrows, *n)
		case *c < 1:
			return usagef("bench: -c must be at least 1, got %d", *c)
		case *poolSize < 1:
			return usagef("bench: --pool-size must be at least 1, got %d", *poolSize)
		case *stock < -1:
			return usagef("bench: --wallet-stock must be -1 or more, got %d", *stock)
		case *timeout <= 0:
			return usagef("bench: --timeout must be positive")
		}
		if _, err := demo.SetupIDs(*prefix, *n, a.now(), "0000"); err != nil {
			return usagef("bench: %v", err)
		}
		opts := bench.Options{
			Modes: ms, N: *n, C: min(*c, *n), PoolSize: *poolSize, Stock: *stock, Keep: *keep,
			WalletRPC: *walletRPC, Prefix: *prefix,
			External: a.address != DefaultAddress || flagGiven(fs, "address"),
			Address:  a.address, Namespace: a.namespace, CodecKeys: benchCodecPath(a.codecKeys),
			JSON: a.json, Stdout: a.stdout, Stderr: a.stderr, Now: a.now,
			Dial: func(ctx context.Context, address, namespace string) (bench.Client, error) {
				t := a.target()
				t.address, t.namespace = address, namespace
				return a.dial(ctx, t, a.stderr)
			},
			IDs: func(prefix string, n int, now time.Time) ([]string, error) {
				return demo.SetupIDs(prefix, n, now, demo.RandomTag())
			},
		}
		if opts.Stock < 0 {
			opts.Stock = opts.PoolSize
		}
		if slices.Contains(ms, bench.EscrowflowCold) && opts.External {
			return usagef("bench: escrowflow-cold needs a worker of its own: not with --address")
		}
		if (slices.Contains(ms, bench.Escrowflow) || slices.Contains(ms, bench.EscrowflowCold)) && !opts.External {
			if opts.TemporalCLI, err = temporalCLIPath(*cli, flagGiven(fs, "temporal-cli")); err != nil {
				return err
			}
		}
		if slices.ContainsFunc(ms, func(m bench.Mode) bool { return (m != bench.Escrowflow && m != bench.EscrowflowCold) || !opts.External }) {
			if _, err := exec.LookPath(opts.WalletRPC); err != nil {
				return fmt.Errorf("bench: %w (make prereqs installs it)", err)
			}
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return bench.Measure(ctx, opts)
	}
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// temporalCLIPath checks the Temporal CLI; a missing default falls back to
// temporal in PATH.
func temporalCLIPath(path string, explicit bool) (string, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return filepath.Abs(path) // the server runs in its own dir
	}
	if !explicit {
		if p, err := exec.LookPath("temporal"); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("bench: Temporal CLI %q is not an executable file (make prereqs builds bin/temporal; or give --temporal-cli, or --address of a running stack)", path)
}

// benchCodecPath is the key ring escrowctl's client uses (see
// dataConverter); the bench's worker gets the same.
func benchCodecPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if _, err := os.Stat(demoCodecKeys); err == nil {
		return demoCodecKeys
	}
	return ""
}
