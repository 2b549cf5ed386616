package pool

// Starting, supervising and probing the wallet-rpc processes.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/rpcclient"
	"go.uber.org/zap"
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loginConfig returns the read end of a pipe that holds a wallet-rpc config
// file with the rpc-login line; the child reads it as /dev/fd/3 while it
// parses its options. Nothing touches the disk, and the line is far below
// the pipe's buffer, so writing it cannot block.
func loginConfig(user, pass string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(w, "rpc-login=%s:%s\n", user, pass)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// args builds the command line of one process.
func (p *Pool) args(port int) []string {
	c := p.cfg
	var a []string
	switch c.Network {
	case "testnet":
		a = append(a, "--testnet")
	case "stagenet":
		a = append(a, "--stagenet")
	}
	if c.DaemonAddress == "" {
		a = append(a, "--offline")
	} else {
		a = append(a, "--daemon-address", c.DaemonAddress)
		if c.TrustedDaemon {
			a = append(a, "--trusted-daemon")
		}
	}
	if c.Login {
		// The credentials come through a pipe on fd 3 (see startProcess),
		// never on the command line, which every local user can read.
		a = append(a, "--config-file", "/dev/fd/3")
	} else {
		a = append(a, "--disable-rpc-login")
	}
	if !c.SSL {
		a = append(a, "--rpc-ssl", "disabled", "--daemon-ssl", "disabled")
	}
	a = append(a,
		"--non-interactive",
		"--shared-ringdb-dir", filepath.Join(c.RunDir, "ringdb"),
		"--rpc-bind-ip", "127.0.0.1",
		"--rpc-bind-port", strconv.Itoa(port),
		"--wallet-dir", c.WalletDir,
		"--log-file", filepath.Join(c.RunDir, "wallet-rpc-"+strconv.Itoa(port)+".log"),
		"--max-log-files", "2",
	)
	return append(a, c.ExtraArgs...)
}

// errSupervised marks a start that failed after the process was spawned:
// its own supervisor restarts it, so the caller must not start another.
var errSupervised = errors.New("supervised")

// errExited marks a process that exited before it answered.
var errExited = errors.New("exited during start")

// startAttempts is how many processes Start lets a slot go through before
// it gives up on the slot.
const startAttempts = 3

// startSlot starts the first process of slot s. A process that exits before
// it answers (it lost the race for its port, say) is restarted by its
// supervisor on a new port; startSlot waits for that instead of failing the
// whole pool, up to startAttempts processes, so that a binary that can never
// start still fails fast.
func (p *Pool) startSlot(ctx context.Context, s *slot) error {
	first := p.startProcess(ctx, s)
	if !errors.Is(first, errExited) {
		return first
	}
	for {
		p.mu.Lock()
		ready, gen, exited, changed, stopped := s.ready, s.gen, s.exited, p.changed, p.stopped
		p.mu.Unlock()
		if ready {
			return nil
		}
		if stopped {
			return ErrStopped
		}
		if gen >= startAttempts {
			select {
			case <-exited:
				return fmt.Errorf("%w (%d processes tried)", first, gen)
			default:
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w; no restart answered: %w", first, ctx.Err())
		}
	}
}

// startProcess starts the process of slot s and waits until it answers.
// Once the process is spawned, a supervisor goroutine owns it; a failure
// after that point wraps errSupervised.
func (p *Pool) startProcess(ctx context.Context, s *slot) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pool: free port: %w", err)
	}
	var user, pass string
	if p.cfg.Login {
		user, pass = "escrowflow", randomToken()
	}
	cmd := exec.Command(p.cfg.Binary, p.args(port)...)
	cmd.Dir = p.cfg.RunDir
	if p.cfg.Login {
		conf, err := loginConfig(user, pass)
		if err != nil {
			return fmt.Errorf("pool: wallet-rpc login: %w", err)
		}
		defer conf.Close()
		cmd.ExtraFiles = []*os.File{conf}
	}
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("pool: start %s: %w", p.cfg.Binary, err)
	}
	cc := rpcclient.DefaultConfig()
	cc.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	cc.Username, cc.Password = user, pass
	client := rpcclient.New(cc)
	exited := make(chan struct{})

	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return ErrStopped
	}
	s.client, s.pid, s.exited = client, cmd.Process.Pid, exited
	s.gen++
	s.ready, s.busy, s.owner, s.state, s.suspect, s.failures = false, false, "", "", false, 0
	gen := s.gen
	p.mu.Unlock()

	p.wg.Add(1)
	go p.supervise(s, cmd, gen, exited)

	start := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.GetVersion(pctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("pool: wallet-rpc on port %d (see %s): %w (%w)", port, p.cfg.RunDir, errExited, errSupervised)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return fmt.Errorf("pool: wallet-rpc on port %d did not answer: %w (%w)", port, ctx.Err(), errSupervised)
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.mu.Lock()
	if s.gen == gen {
		s.ready, s.backoff = true, 0
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.log.Info("wallet-rpc ready", zap.Int("slot", s.id), zap.Int("pid", cmd.Process.Pid),
		zap.Int("port", port), zap.Duration("start", time.Since(start)))
	return nil
}

// supervise waits for the process to exit and restarts it unless the pool
// is stopping.
func (p *Pool) supervise(s *slot, cmd *exec.Cmd, gen uint64, exited chan struct{}) {
	defer p.wg.Done()
	err := cmd.Wait()
	close(exited)
	p.mu.Lock()
	if s.gen == gen {
		s.ready, s.busy, s.owner, s.state = false, false, "", ""
	}
	stopped := p.stopped
	p.broadcastLocked()
	p.mu.Unlock()
	if stopped {
		return
	}
	p.log.Warn("wallet-rpc exited, restarting", zap.Int("slot", s.id), zap.Int("pid", cmd.Process.Pid), zap.Error(err))
	for {
		// A process that keeps failing is restarted ever more slowly (up
		// to 10 s apart), however many supervisors its restarts spawn.
		p.mu.Lock()
		s.backoff = min(max(2*s.backoff, 100*time.Millisecond), 10*time.Second)
		backoff := s.backoff
		p.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.StartTimeout)
		err := p.startProcess(ctx, s)
		cancel()
		if err == nil || errors.Is(err, errSupervised) || errors.Is(err, ErrStopped) {
			return // running, or the new process's own supervisor takes over
		}
		p.log.Error("wallet-rpc restart failed", zap.Int("slot", s.id), zap.Error(err))
	}
}

func (p *Pool) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// probe checks that the process of slot s answers; after two failures in a
// row it kills the process so the supervisor restarts it.
func (p *Pool) probe(s *slot, gen uint64) {
	p.mu.Lock()
	client, pid := s.client, s.pid
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.HealthTimeout)
	_, err := client.GetVersion(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.gen != gen {
		return
	}
	if err == nil {
		s.failures, s.suspect = 0, false
		p.broadcastLocked()
		return
	}
	s.failures++
	p.log.Warn("wallet-rpc health probe failed", zap.Int("slot", s.id), zap.Int("pid", pid), zap.Int("failures", s.failures), zap.Error(err))
	if s.failures >= 2 && p.managed && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return
	}
	if !p.managed && s.failures >= 2 {
		s.suspect = true // external endpoint: keep probing, never lease while down
	}
}

func (p *Pool) healthLoop() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		var idle []*slot
		var gens []uint64
		for _, s := range p.slots {
			if s.ready && !s.busy {
				idle = append(idle, s)
				gens = append(gens, s.gen)
			}
		}
		p.mu.Unlock()
		for i, s := range idle {
			p.probe(s, gens[i])
		}
	}
}
