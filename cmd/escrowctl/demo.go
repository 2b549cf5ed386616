package main

import (
	"context"
	"flag"
	"time"

	"github.com/escrowflow/escrowflow/internal/demo"
)

func demoFlags(a *app, fs *flag.FlagSet) func(context.Context, []string) error {
	count := fs.Int("count", 3, "number of escrows to set up at once (1-100)")
	prefix := fs.String("prefix", "demo", "escrow id `prefix`; ids are <prefix>-<YYYYMMDD-HHMMSS>-<4 hex>-<n>")
	poll := fs.Duration("poll", 500*time.Millisecond, "status poll `interval`")
	width := fs.Int("width", 60, "timeline width in `columns`")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up waiting after this `duration`")
	return func(ctx context.Context, args []string) error {
		if len(args) != 0 {
			return usagef("demo: unexpected arguments %q", args)
		}
		if *count < 1 || *count > 100 {
			return usagef("demo: --count must be 1-100, got %d", *count)
		}
		if *poll <= 0 || *width < 10 {
			return usagef("demo: --poll must be positive and --width at least 10")
		}
		ids, err := demo.SetupIDs(*prefix, *count, a.now(), demo.RandomTag())
		if err != nil {
			return usagef("demo: %v", err)
		}
		c, err := a.connect(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		d := &demo.SetupDemo{Setups: c, IDs: ids, Poll: *poll, Width: *width, Progress: a.stderr, Now: a.now}
		if err := d.Run(ctx); err != nil {
			return err
		}
		if a.json {
			if err := printJSON(a.stdout, d.Report()); err != nil {
				return err
			}
		} else {
			d.WriteText(a.stdout)
		}
		return d.Err()
	}
}
