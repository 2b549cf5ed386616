// Command escrowctl starts and follows escrow setups on Temporal through the
// starter package.
//
// Usage:
//
//	escrowctl [global flags] <command> [flags] [args]
//
// Commands:
//
//	start [--wait] [--external-buyer KEY] [--external-vendor KEY] ID...
//	                         start the setup of each escrow (with external participants)
//	status ID                show an escrow's state and per-role progress
//	result [--wait] ID       show an escrow's result
//	list [--state STATE]     list escrows
//	trade SUB ID             start and drive a trade (SUB: start, deposit, release,
//	                         refund, dispute, resolve, status, wait)
//	demo [--count 3]         set up several escrows at once and show how they overlapped
//	demo-trades --daemon-address A --wallet-rpc URL
//	                         three trades on a regtest chain: release, refund, dispute resolved
//	export [-o FILE] ID      write an escrow's instrumentation JSON (escrow_<id>.json)
//	analyze FILE...          timelines, critical paths, long lease waits and overlap of exports
//	analyze --diff A B       compare two exports step by step
//	bench [-n 3] [-c 3]      compare escrowflow, direct wallet-rpc and the old global lock
//	bench-plot REPORT...     plot bench --json reports against pool size and concurrency
//	participant --escrow ID --role R --dir DIR [--trade --daemon-address A --amount N --vendor ADDR --buyer-refund ADDR]
//	                         take part in a setup (with --trade, also the payout) as its
//	                         external buyer or vendor
//	participant --print-key --dir DIR
//	                         print the participant's public key (for the escrow's input)
//
// Global flags (also accepted after the command):
//
//	--address    Temporal frontend host:port (env TEMPORAL_ADDRESS, default 127.0.0.1:7233)
//	--namespace  Temporal namespace (env TEMPORAL_NAMESPACE, default "default")
//	--temporal-tls-cert, --temporal-tls-key, --temporal-tls-ca,
//	--temporal-tls-server-name, --temporal-api-key (a file)
//	             mutual TLS and API key for a secured cluster (env
//	             TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA,
//	             TEMPORAL_TLS_SERVER_NAME, TEMPORAL_API_KEY_FILE; see
//	             package temporalconn)
//	--json       print JSON instead of text
//
// Exit status: 0 on success, 1 when a command or an escrow failed, 2 on a
// usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/temporalconn"
)

// Environment variables that set the global flags' defaults.
const (
	EnvAddress   = "TEMPORAL_ADDRESS"
	EnvNamespace = "TEMPORAL_NAMESPACE"
	// EnvCodecKeysFile names the payload codec's key ring, the same file
	// the worker uses; without it, `.escrowflow/codec.keys` (made by make
	// demo) is used when it exists in the current directory.
	EnvCodecKeysFile = "ESCROWFLOW_CODEC_KEYS_FILE"
)

// Defaults of the global flags.
const (
	DefaultAddress   = "127.0.0.1:7233"
	DefaultNamespace = "default"
)

// dialTimeout bounds connecting to Temporal.
const dialTimeout = 15 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, dialers{escrows: dialStarter, history: dialHistory})
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "escrowctl:", err)
		if errors.Is(err, codec.ErrNoKeyRing) {
			fmt.Fprintf(os.Stderr, "escrowctl: give it the worker's key ring: --codec-keys-file FILE or %s (default %s, when present)\n",
				EnvCodecKeysFile, demoCodecKeys)
		}
		os.Exit(exitCode(err))
	}
}

// escrows is what the commands use of *starter.Client; tests fake it.
type escrows interface {
	Start(ctx context.Context, escrowID string) (starter.Run, error)
	StartSetup(ctx context.Context, in escrow.SetupInput) (starter.Run, error)
	Describe(ctx context.Context, escrowID string) (starter.Description, error)
	Status(ctx context.Context, escrowID string) (escrow.Status, error)
	Result(ctx context.Context, escrowID string) (*escrow.SetupResult, error)
	Wait(ctx context.Context, escrowID string) (*escrow.SetupResult, error)
	List(ctx context.Context, state escrow.State, pageSize int) ([]starter.Summary, error)
	Close()
}

// dialers connect the commands to Temporal; tests fake them.
type dialers struct {
	escrows dialFunc
	history historyDialFunc
}

// target is where and how a command connects to Temporal: the global
// flags' address, namespace, payload key ring (see dataConverter) and TLS
// and API-key settings.
type target struct {
	address, namespace, codecKeys string
	security                      temporalconn.Security
}

// options returns the client options for t, logging the SDK's warnings to
// stderr.
func (t target) options(stderr io.Writer) (client.Options, error) {
	dc, err := dataConverter(t.codecKeys)
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:      t.address,
		Namespace:     t.namespace,
		Logger:        sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		DataConverter: dc,
	}
	if err := t.security.Apply(&opts); err != nil {
		return client.Options{}, err
	}
	return opts, nil
}

// dialFunc connects to Temporal at t; stderr receives the SDK's warnings.
type dialFunc func(ctx context.Context, t target, stderr io.Writer) (escrows, error)

func dialStarter(ctx context.Context, t target, stderr io.Writer) (escrows, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	opts, err := t.options(stderr)
	if err != nil {
		return nil, err
	}
	return starter.DialContext(ctx, opts)
}

// demoCodecKeys is the key ring make demo creates.
const demoCodecKeys = ".escrowflow/codec.keys"

// dataConverter returns the converter that decrypts the worker's payloads
// with the key ring at path (--codec-keys-file; "" for the demo's, when
// present), or codec.Plain() when there is none.
func dataConverter(path string) (converter.DataConverter, error) {
	if path == "" {
		if _, err := os.Stat(demoCodecKeys); err != nil {
			return codec.Plain(), nil
		}
		path = demoCodecKeys
	}
	cd, err := codec.LoadKeys(path)
	if err != nil {
		return nil, err
	}
	return cd.DataConverter(), nil
}

// usageError reports bad command-line usage (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps run's error to the exit status.
func exitCode(err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// globals are the flags every command accepts.
type globals struct {
	address   string
	namespace string
	codecKeys string
	security  temporalconn.Security
	json      bool
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.address, "address", g.address, "Temporal frontend `host:port` (env "+EnvAddress+")")
	fs.StringVar(&g.namespace, "namespace", g.namespace, "Temporal `namespace` (env "+EnvNamespace+")")
	fs.StringVar(&g.codecKeys, "codec-keys-file", g.codecKeys, "payload codec key ring, as the worker's (env "+EnvCodecKeysFile+"; default "+demoCodecKeys+" when present)")
	g.security.RegisterFlags(fs)
	fs.BoolVar(&g.json, "json", g.json, "print JSON instead of text")
}

// app holds what the commands share.
type app struct {
	globals
	stdout, stderr io.Writer
	dial           dialFunc
	dialHistory    historyDialFunc
	now            func() time.Time
}

// command is one subcommand.
type command struct {
	name, args, summary string
	// help, if set, is printed after the command's flags.
	help string
	// flags registers the command's own flags and returns its action.
	flags func(a *app, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{name: "start", args: "[--wait] [--external-buyer KEY] ID...", summary: "start the setup of each escrow", flags: startFlags},
		{name: "status", args: "ID", summary: "show an escrow's state and per-role progress", flags: statusFlags},
		{name: "result", args: "[--wait] ID", summary: "show an escrow's result: address, wallets, rounds", flags: resultFlags},
		{name: "trade", args: "SUB ID", summary: "start and drive an escrow's trade: start, deposit, release, refund, dispute, resolve, status, wait", flags: tradeFlags, help: tradeHelp},
		{name: "list", args: "[--state STATE]", summary: "list escrows, running and most recent first", flags: listFlags},
		{name: "demo", args: "[--count 3] [--prefix demo]", summary: "set up several escrows at once and show how they overlapped", flags: demoFlags},
		{name: "demo-trades", args: "--daemon-address A --wallet-rpc URL", summary: "three trades on a regtest chain, funded from a faucet: released, refunded, disputed and resolved 70/30", flags: demoTradesFlags},
		{name: "export", args: "[-o FILE] ID", summary: "write an escrow's instrumentation JSON, built from its workflow history", flags: exportFlags},
		{name: "analyze", args: "[--diff] [--svg F] FILE...", summary: "analyze instrumentation exports: timeline, critical path, lease waits, overlap, diff", flags: analyzeFlags},
		{name: "bench", args: "[-n N] [-c C] [--modes LIST]", summary: "measure escrowflow against direct wallet-rpc and the old global lock: latency, escrows/min, CPU", flags: benchFlags},
		{name: "participant", args: "--escrow ID --role R --dir DIR", summary: "take part in an escrow's setup (and with --trade its payout) as its external buyer or vendor, with an own wallet", flags: participantFlags},
		{name: "bench-plot", args: "[--out-dir DIR] REPORT.json...", summary: "draw SVG plots from bench --json reports: escrows/min against pool size, p50/p95 latency against -c", flags: benchPlotFlags},
	}
}

// run runs the command line args (without the program name).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, d dialers) error {
	a := &app{stdout: stdout, stderr: stderr, dial: d.escrows, dialHistory: d.history, now: time.Now}
	a.address = envOr(getenv, EnvAddress, DefaultAddress)
	a.namespace = envOr(getenv, EnvNamespace, DefaultNamespace)
	a.codecKeys = getenv(EnvCodecKeysFile)
	a.security = temporalconn.SecurityFromEnv(getenv)
	if err := a.dispatch(ctx, args); !errors.Is(err, errHelp) {
		return err
	}
	return nil
}

// dispatch parses the global flags and runs the command.
func (a *app) dispatch(ctx context.Context, args []string) error {
	stdout, stderr := a.stdout, a.stderr
	fs := flag.NewFlagSet("escrowctl", flag.ContinueOnError)
	a.globals.register(fs)
	fs.Usage = func() { mainUsage(fs) }
	if err := parse(fs, args, stdout, stderr); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		mainUsage(fs)
		return usagef("no command given")
	}
	name := fs.Arg(0)
	for _, cmd := range commands() {
		if cmd.name != name {
			continue
		}
		cfs := flag.NewFlagSet("escrowctl "+name, flag.ContinueOnError)
		action := cmd.flags(a, cfs)
		a.globals.register(cfs)
		cfs.Usage = func() {
			fmt.Fprintf(cfs.Output(), "Usage: escrowctl %s %s\n\n%s.\n\nFlags:\n", cmd.name, cmd.args, capitalize(cmd.summary))
			cfs.PrintDefaults()
			if cmd.help != "" {
				fmt.Fprint(cfs.Output(), "\n"+cmd.help)
			}
		}
		rest, err := parseInterspersed(cfs, fs.Args()[1:], stdout, stderr)
		if err != nil {
			return err
		}
		return action(ctx, rest)
	}
	fs.SetOutput(stderr)
	mainUsage(fs)
	return usagef("unknown command %q", name)
}

func mainUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, "Usage: escrowctl [global flags] <command> [flags] [args]\n\nCommands:\n")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-7s %-28s %s\n", cmd.name, cmd.args, cmd.summary)
	}
	fmt.Fprint(w, "\nRun 'escrowctl <command> --help' for a command's flags.\n\nGlobal flags:\n")
	fs.PrintDefaults()
}

// parse parses args with fs, printing help to stdout when asked for it and
// usage errors to stderr.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelp
	case err != nil:
		fs.SetOutput(stderr)
		fs.Usage()
		return &usageError{msg: err.Error()}
	}
	fs.SetOutput(stderr)
	return nil
}

// errHelp ends a run that printed help: exit status 0, nothing more to say.
var errHelp = errors.New("help requested")

// parseInterspersed parses flags that may follow positional arguments
// (escrow ids never start with '-') and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args, stdout, stderr); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// connect dials Temporal with the global flags.
func (a *app) connect(ctx context.Context) (escrows, error) {
	return a.dial(ctx, a.target(), a.stderr)
}

// target is where the global flags point.
func (a *app) target() target {
	return target{address: a.address, namespace: a.namespace, codecKeys: a.codecKeys, security: a.security}
}
