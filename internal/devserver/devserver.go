// Package devserver starts the Temporal dev server (`temporal server
// start-dev`) with the project's flags: 127.0.0.1, free ports, a SQLite
// file, the project's dynamic config and the EscrowState search attribute.
// The tests (internal/testenv), the bench and the demo's helper
// (cmd/escrow-devserver) all start it through here, so the flags are
// written once. A server is stopped by the PID it was started with, never by
// name.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/spawn"
)

const (
	// IP is the address every server started here listens on.
	IP = "127.0.0.1"
	// Namespace is the dev server's namespace.
	Namespace = "default"
	// StartTimeout bounds how long Start waits for the server to accept
	// clients and show the search attribute.
	StartTimeout = 60 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 10 * time.Second
	// startAttempts is how often Start tries again with fresh ports when the
	// server loses a port race with another process.
	startAttempts = 3
)

// DynamicConfig lists the dynamic config values the project runs the dev
// server with.
var DynamicConfig = []string{
	"history.transferProcessorMaxPollRPS=1000",
	"system.enableActivityEagerExecution=true",
}

// Options are the parts of the command line that differ between users.
type Options struct {
	// Port is the frontend gRPC port; 0 picks a free one.
	Port int
	// UIPort is the Web UI port; 0 picks a free one, -1 runs headless.
	UIPort int
	// DBFile is the SQLite database file.
	DBFile string
	// UICodecEndpoint, when set, is the codec endpoint the Web UI uses.
	UICodecEndpoint string
}

// Args returns the CLI arguments of `temporal server start-dev` for o (with
// the ports as given).
func Args(o Options) []string {
	args := []string{"server", "start-dev", "--ip", IP, "--port", strconv.Itoa(o.Port)}
	if o.UIPort < 0 {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(o.UIPort))
	}
	args = append(args, "--db-filename", o.DBFile,
		"--search-attribute", escrow.StateSearchAttribute+"=Keyword")
	if o.UICodecEndpoint != "" {
		args = append(args, "--ui-codec-endpoint", o.UICodecEndpoint)
	}
	for _, v := range DynamicConfig {
		args = append(args, "--dynamic-config-value", v)
	}
	return append(args, "--log-level", "warn")
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. No
// port is handed out twice within one process; another process may still
// take it, so servers started on it retry on "address already in use".
func FreePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", IP+":0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, err
		}
		if !portsGiven[port] {
			portsGiven[port] = true
			return port, nil
		}
	}
	return 0, errors.New("devserver: no unused free port found")
}

// Server is a running dev server.
type Server struct {
	// HostPort is the frontend gRPC address, "127.0.0.1:<port>".
	HostPort string
	// UIPort is the Web UI port (-1: headless).
	UIPort int
	// PID is the process ID of the server.
	PID int
	// LogPath receives the server's stdout and stderr.
	LogPath string

	cli, dir string
	args     []string
	exited   chan struct{} // closed once the process is reaped
	waitErr  error         // valid after exited is closed
	stopOnce sync.Once
}

// Start starts the CLI cli with Args(o) in dir, output appended to logPath,
// in its own process group that dies with this process, and waits (at most
// StartTimeout) until a client can list EscrowState as a Keyword search
// attribute. Ports given as 0 are picked free; a lost port race is retried
// with fresh ports. On error nothing is left running.
func Start(ctx context.Context, cli, dir, logPath string, o Options) (*Server, error) {
	var lastErr error
	for range startAttempts {
		oo := o
		var err error
		if oo.Port == 0 {
			if oo.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if oo.UIPort == 0 {
			if oo.UIPort, err = FreePort(); err != nil {
				return nil, err
			}
		}
		s := &Server{HostPort: net.JoinHostPort(IP, strconv.Itoa(oo.Port)), UIPort: oo.UIPort,
			LogPath: logPath, cli: cli, dir: dir, args: Args(oo)}
		if lastErr = s.start(ctx); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil || (o.Port != 0 && o.UIPort != 0) || !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

// start runs the recorded command line once and waits until it is ready;
// on error the process is stopped and the error quotes the log's tail.
func (s *Server) start(ctx context.Context) error {
	// seed-check: not a wallet file (the server's log)
	logFile, err := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	cmd := exec.Command(s.cli, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", s.cli, err)
	}
	exited := make(chan struct{})
	s.PID, s.exited, s.waitErr, s.stopOnce = cmd.Process.Pid, exited, nil, sync.Once{}
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return fmt.Errorf("%w\n--- %s (last 60 lines) ---\n%s", err, s.LogPath, Tail(s.LogPath, 60))
	}
	return nil
}

// waitReady polls Probe until it succeeds, the process exits, ctx ends or
// StartTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(StartTimeout)
	lastErr := errors.New("not checked yet")
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("temporal dev server (pid %d) exited before it was ready: %v", s.PID, s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if lastErr = Probe(ctx, s.HostPort); lastErr == nil {
			return nil
		}
		select {
		case <-s.exited:
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("temporal dev server on %s not ready after %s: %v", s.HostPort, StartTimeout, lastErr)
}

// Probe dials hostPort and checks that EscrowState is a Keyword search
// attribute of the default namespace.
func Probe(ctx context.Context, hostPort string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Namespace: Namespace, Logger: QuietLogger(io.Discard)})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: Namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	name := escrow.StateSearchAttribute
	typ, ok := resp.GetCustomAttributes()[name]
	if !ok {
		return fmt.Errorf("search attribute %s not registered yet", name)
	}
	if typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		return fmt.Errorf("search attribute %s has type %s, want Keyword", name, typ)
	}
	return nil
}

// Stop stops the server by its PID: SIGTERM to its process group (which it
// leads), up to StopTimeout grace, then SIGKILL; it returns once the process
// is reaped. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		signalGroup(s.PID, syscall.SIGTERM)
		select {
		case <-s.exited:
			return
		case <-time.After(StopTimeout):
		}
		signalGroup(s.PID, syscall.SIGKILL)
		<-s.exited
	})
}

// Restart stops the server as Stop does and starts it again with the same
// command line (ports, database file, dynamic config), retrying while the
// ports are not free yet. It returns how long the server was unavailable.
// It must not run concurrently with Stop or another Restart.
func (s *Server) Restart(ctx context.Context) (time.Duration, error) {
	stopped := time.Now()
	s.Stop()
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		// seed-check: not a wallet file (the server's log)
		if logFile, ferr := os.OpenFile(s.LogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); ferr == nil {
			fmt.Fprintf(logFile, "\n--- devserver: restart at %s ---\n", time.Now().UTC().Format(time.RFC3339Nano))
			_ = logFile.Close()
		}
		if err = s.start(ctx); err == nil {
			return time.Since(stopped), nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(time.Duration(attempt) * time.Second)
	}
	return 0, fmt.Errorf("restart temporal dev server on %s: %w", s.HostPort, err)
}

// signalGroup sends sig to the process group led by pid, or to pid alone
// when that group does not exist.
func signalGroup(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// QuietLogger is an SDK logger that only passes warnings and errors to w.
func QuietLogger(w io.Writer) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// Tail returns the last n lines of the file at path ("" if unreadable).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
