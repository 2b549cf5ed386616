package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/instrument"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/walletstore"
)

// historyConn reads workflow histories; a client.Client is one.
type historyConn interface {
	instrument.HistoryClient
	Close()
}

// historyDialFunc connects to Temporal at t for export.
type historyDialFunc func(ctx context.Context, t target, stderr io.Writer) (historyConn, error)

// dialHistory connects to Temporal at t for export.
func dialHistory(ctx context.Context, t target, stderr io.Writer) (historyConn, error) {
	return dialClient(ctx, t, stderr)
}

// dialClient connects a Temporal client to t.
func dialClient(ctx context.Context, t target, stderr io.Writer) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	opts, err := t.options(stderr)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", t.address, err)
	}
	return c, nil
}

// exported is the JSON output of export (with --json).
type exported struct {
	File       string `json:"file"`
	EscrowID   string `json:"escrowId"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	State      string `json:"state"`
	ReasonType string `json:"reasonType,omitempty"`
	Steps      int    `json:"steps"`
	TotalMs    int64  `json:"totalMs"`
}

func exportFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	out := fs.String("o", "", "write the export to `file` (default escrow_<id>.json; - for stdout)")
	runID := fs.String("run", "", "export this run `id` of the escrow's workflow (default: the latest run)")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("export", args)
		if err != nil {
			return err
		}
		if err := escrow.ValidateEscrowID(id); err != nil {
			return err
		}
		c, err := a.dialHistory(ctx, a.target(), a.stderr)
		if err != nil {
			return err
		}
		defer c.Close()
		dc, err := dataConverter(a.codecKeys)
		if err != nil {
			return err
		}
		e, err := instrument.Fetch(ctx, c, escrow.WorkflowID(id), *runID, dc)
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return fmt.Errorf("escrow %q: %w", id, starter.ErrEscrowNotFound)
		}
		if err != nil {
			return fmt.Errorf("export escrow %q: %w", id, err)
		}
		b, err := instrument.Marshal(e)
		if err != nil {
			return err
		}
		path := *out
		if path == "" {
			path = instrument.FileName(id)
		}
		if path == "-" {
			_, err := a.stdout.Write(b)
			return err
		}
		if err := walletstore.AtomicWriteFile(path, b, 0o644); err != nil {
			return err
		}
		if a.json {
			return printJSON(a.stdout, exported{File: path, EscrowID: e.EscrowID, WorkflowID: e.WorkflowID, RunID: e.RunID,
				State: e.State, ReasonType: e.ReasonType, Steps: len(e.Steps), TotalMs: e.TotalMs})
		}
		state := e.State
		if e.ReasonType != "" {
			state += " (" + e.ReasonType + ")"
		}
		fmt.Fprintf(a.stdout, "%s  %s  %d steps  total %s  run %s  -> %s\n", id, state, len(e.Steps), instrument.Wall(msDuration(e.TotalMs)), e.RunID, path)
		if e.State == instrument.StateRunning {
			fmt.Fprintf(a.stdout, "note: the escrow is still running; the export holds the steps recorded so far\n")
		}
		return nil
	}
}

// msDuration converts milliseconds to a duration.
func msDuration(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
