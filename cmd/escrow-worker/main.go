// Command escrow-worker is the escrowflow worker: it supervises a pool of
// monero-wallet-rpc processes and runs the EscrowSetup workflow and its
// activities on the Temporal task queue "escrow-setup" (workflows, claims)
// and on its own queue "escrow-setup-host-<worker id>" (the wallet steps of
// the escrows it claimed).
//
// Configuration comes from flags, then environment variables, then
// defaults; run with --help for the list.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/worker"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "escrow-worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := worker.ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("escrow-worker", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: escrow-worker [flags]\n\nRuns the escrowflow worker: a pool of monero-wallet-rpc processes, the\nEscrowSetup workflow on task queue %q and the wallet activities of the\nescrows it claims on its own queue %q. Stops on SIGINT or SIGTERM.\n\nFlags:\n", escrow.TaskQueue, escrow.HostTaskQueue("<worker id>"))
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	log, err := worker.NewLogger(cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return worker.Run(ctx, cfg, log)
}
