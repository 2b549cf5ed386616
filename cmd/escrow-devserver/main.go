// Command escrow-devserver runs the Temporal dev server with the project's
// flags (package devserver): it builds the `temporal server start-dev`
// command line and replaces itself with the Temporal CLI, so the process
// (its PID, its argv[0]) is the CLI's. scripts/demo.sh starts the demo's
// server through it.
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"

	"github.com/escrowflow/escrowflow/internal/devserver"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "escrow-devserver:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("escrow-devserver", flag.ContinueOnError)
	cli := fs.String("cli", "bin/temporal", "the Temporal CLI")
	var o devserver.Options
	fs.IntVar(&o.Port, "port", 7233, "frontend gRPC port on "+devserver.IP)
	fs.IntVar(&o.UIPort, "ui-port", 8233, "Web UI port (-1: headless)")
	fs.StringVar(&o.DBFile, "db-filename", "temporal.db", "SQLite database file")
	fs.StringVar(&o.UICodecEndpoint, "ui-codec-endpoint", "", "codec endpoint for the Web UI")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || o.Port <= 0 {
		return fmt.Errorf("usage: escrow-devserver [--cli PATH] [--port N] [--ui-port N] [--db-filename FILE] [--ui-codec-endpoint URL]")
	}
	return syscall.Exec(*cli, append([]string{*cli}, devserver.Args(o)...), os.Environ())
}
