package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/spawn"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// ---------------------------------------------------------------------------
// Committed snapshots never change.

// fileSig identifies the content of one file of a committed snapshot.
type fileSig struct {
	size int64
	sum  string
	// ino and mtime let the periodic scan notice a rewrite without hashing.
	ino   uint64
	mtime time.Time
}

// snapRecord is what the run saw of one committed snapshot the first time.
type snapRecord struct {
	dir, name string
	manifest  []byte
	files     map[string]fileSig // by suffix ("", ".keys", ".address.txt")
}

// snapTracker records the sha256 of every file of every committed snapshot
// (NAME.sha256 present) seen in the watched wallet dirs during the run and
// reports any that later differs. A snapshot that disappears (superseded
// snapshots are removed when an escrow completes) is not a change.
type snapTracker struct {
	mu      sync.Mutex
	seen    map[string]*snapRecord // dir + "/" + name
	changes []string               // one line per changed or corrupt snapshot
	flagged map[string]bool
}

func newSnapTracker() *snapTracker {
	return &snapTracker{seen: map[string]*snapRecord{}, flagged: map[string]bool{}}
}

// scan looks at every committed snapshot in dir: new ones are verified
// against their manifest and recorded; known ones are compared with the
// record, by stat (quick) or by re-hashing every file (full). It returns the
// number of committed snapshots present.
func (st *snapTracker) scan(dir string, full bool) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	store, err := walletstore.Open(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), walletstore.ManifestSuffix)
		if !ok || strings.HasPrefix(e.Name(), ".") || walletstore.ValidateName(name) != nil {
			continue
		}
		if st.check(store, dir, name, full) {
			n++
		}
	}
	return n
}

// check handles one snapshot; it reports whether it is (still) committed.
func (st *snapTracker) check(store *walletstore.Store, dir, name string, full bool) bool {
	key := dir + "/" + name
	st.mu.Lock()
	rec := st.seen[key]
	st.mu.Unlock()

	manifestPath := filepath.Join(dir, name+walletstore.ManifestSuffix)
	if rec != nil && !full {
		if !st.statChanged(dir, rec) {
			return true
		}
	}
	manifest, err := os.ReadFile(manifestPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false // removed (superseded after completion) — not a change
	}
	m, verr := store.Verify(name)
	if verr != nil {
		if _, err := os.Lstat(manifestPath); errors.Is(err, fs.ErrNotExist) {
			return false // removed while we looked: Remove deletes the manifest first
		}
		st.flag(key, fmt.Sprintf("%s: walletstore.Verify: %v", key, verr))
		return true
	}
	files := map[string]fileSig{}
	for _, f := range m.Files {
		sig := fileSig{size: f.Size, sum: f.SHA256}
		if fi, err := os.Stat(filepath.Join(dir, name+f.File)); err == nil {
			sig.mtime = fi.ModTime()
			if s, ok := fi.Sys().(*syscall.Stat_t); ok {
				sig.ino = s.Ino
			}
		}
		files[f.File] = sig
	}
	if rec == nil {
		st.mu.Lock()
		if st.seen[key] == nil {
			st.seen[key] = &snapRecord{dir: dir, name: name, manifest: manifest, files: files}
		}
		st.mu.Unlock()
		return true
	}
	if string(manifest) != string(rec.manifest) {
		st.flag(key, fmt.Sprintf("%s: manifest rewritten", key))
		return true
	}
	for suf, want := range rec.files {
		got, ok := files[suf]
		switch {
		case !ok:
			st.flag(key, fmt.Sprintf("%s: file %q gone from the manifest", key, name+suf))
		case got.size != want.size || got.sum != want.sum:
			st.flag(key, fmt.Sprintf("%s: file %q changed (size %d→%d, sha256 %s→%s)", key, name+suf, want.size, got.size, want.sum[:12], got.sum[:12]))
		}
	}
	return true
}

// statChanged reports whether a file of rec looks rewritten (other inode,
// size or mtime). A file that is gone is not a change here: the manifest
// check decides whether the snapshot was removed or damaged.
func (st *snapTracker) statChanged(dir string, rec *snapRecord) bool {
	for suf, want := range rec.files {
		fi, err := os.Stat(filepath.Join(dir, rec.name+suf))
		if err != nil {
			return true
		}
		var ino uint64
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = s.Ino
		}
		if fi.Size() != want.size || !fi.ModTime().Equal(want.mtime) || ino != want.ino {
			return true
		}
	}
	return false
}

func (st *snapTracker) flag(key, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.flagged[key] {
		return
	}
	st.flagged[key] = true
	st.changes = append(st.changes, msg)
}

// changed returns the changes found so far.
func (st *snapTracker) changed() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.changes...)
}

// recorded returns how many committed snapshots were seen in all.
func (st *snapTracker) recorded() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.seen)
}

// watch scans dir every interval until stop is closed.
func (st *snapTracker) watch(dir string, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			st.scan(dir, false)
		}
	}
}

// ---------------------------------------------------------------------------
// Temp files.

// tempRE matches the walletstore's temp files, "." + TARGET + ".<digits>.tmp".
var tempRE = regexp.MustCompile(`^\..+\.[0-9]+\.tmp$`)

// tempFiles lists the walletstore temp files in dir.
func tempFiles(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if tempRE.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Orphan wallet-rpc processes.

// walletRPCProc is a running monero-wallet-rpc process.
type walletRPCProc struct {
	pid, ppid int
}

// walletRPCsOver scans /proc for monero-wallet-rpc processes whose command
// line has --wallet-dir dir.
func walletRPCsOver(dir string) []walletRPCProc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []walletRPCProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "monero-wallet-rpc") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--wallet-dir" && filepath.Clean(args[i+1]) == filepath.Clean(dir) {
				out = append(out, walletRPCProc{pid: pid, ppid: parentPID(pid)})
				break
			}
		}
	}
	return out
}

func parentPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// orphans returns the wallet-rpc processes over dir that the current worker
// w (nil: no worker runs over dir) does not own: not its child, or not a
// process its log says its pool runs. A process just started by the pool
// may not be logged yet, so a candidate counts only if it is still
// unaccounted for after grace.
func orphans(dir string, w *workerProc, grace time.Duration) []int {
	deadline := time.Now().Add(grace)
	for {
		owned := map[int]bool{}
		if w != nil && w.running() {
			owned = w.poolPIDs()
		}
		var bad []int
		for _, p := range walletRPCsOver(dir) {
			if testenv.ProcessGone(p.pid) {
				continue
			}
			if w != nil && w.running() && p.ppid == w.pid && owned[p.pid] {
				continue
			}
			bad = append(bad, p.pid)
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			sort.Ints(bad)
			return bad
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Wallet verification: the three final wallets, copied out and opened in a
// fresh wallet-rpc, are ready 2-of-3 wallets with the multisig address.

// verifier opens wallets copied out of the wallet dirs in one fresh
// monero-wallet-rpc process (one per trial) over a directory of its own. It
// starts that process itself, not through pool/, so the check does
// not depend on the code under test.
type verifier struct {
	binary string
	dir    string
	pws    *activities.Passwords
	count  int

	pid    int
	exited chan struct{}
	client *rpcclient.Client
}

func newVerifier(binary, dir string) (*verifier, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pws, err := activities.NewPasswords([]byte(masterSecret))
	if err != nil {
		return nil, err
	}
	return &verifier{binary: binary, dir: dir, pws: pws}, nil
}

// start starts the verifier's wallet-rpc process on a free 127.0.0.1 port
// if it is not running and waits (at most a minute) until it answers.
func (v *verifier) start() error {
	if v.client != nil {
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(v.binary, "--testnet", "--offline", "--disable-rpc-login",
		"--rpc-ssl", "disabled", "--daemon-ssl", "disabled", "--non-interactive",
		"--rpc-bind-ip", "127.0.0.1", "--rpc-bind-port", strconv.Itoa(port),
		"--wallet-dir", v.dir, "--shared-ringdb-dir", filepath.Join(v.dir, ".ringdb"),
		"--log-file", filepath.Join(v.dir, fmt.Sprintf("wallet-rpc-%d.log", port)), "--max-log-files", "1")
	cmd.Dir = v.dir
	if err := spawn.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", v.binary, err)
	}
	v.pid, v.exited = cmd.Process.Pid, make(chan struct{})
	exited := v.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	cc := rpcclient.DefaultConfig()
	cc.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	client := rpcclient.New(cc)
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.GetVersion(ctx)
		cancel()
		if err == nil {
			v.client = client
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("verifier wallet-rpc (pid %d) exited during start", v.pid)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.stop()
			return fmt.Errorf("verifier wallet-rpc (pid %d) did not answer within a minute: %w", v.pid, err)
		}
	}
}

// stop stops the verifier's wallet-rpc process by its PID: SIGTERM, then
// SIGKILL after 10 s.
func (v *verifier) stop() {
	if v.pid == 0 {
		return
	}
	_ = syscall.Kill(v.pid, syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(v.pid, syscall.SIGKILL)
		<-v.exited
	}
	v.pid, v.client = 0, nil
}

// verify copies res's three final wallets out of walletDir and checks that
// each opens in the verifier's wallet-rpc as a ready 2-of-3 multisig wallet
// reporting res.MultisigAddress.
func (v *verifier) verify(walletDir string, res *escrow.SetupResult) error {
	if res.MultisigAddress == "" {
		return errors.New("empty multisig address")
	}
	if err := v.start(); err != nil {
		return err
	}
	v.count++
	names := map[escrow.Role]string{}
	for _, role := range escrow.Roles {
		w, ok := res.Wallets[role]
		if !ok {
			return fmt.Errorf("%s: no wallet in the result", role)
		}
		if w.Address != res.MultisigAddress {
			return fmt.Errorf("%s: result address %s, multisig address %s", role, w.Address, res.MultisigAddress)
		}
		names[role] = fmt.Sprintf("v%d-%s-%s", v.count, res.EscrowID, role)
		for _, suf := range []string{walletstore.CacheSuffix, walletstore.KeysSuffix, walletstore.AddressSuffix} {
			if err := copyFile(filepath.Join(walletDir, w.Wallet+suf), filepath.Join(v.dir, names[role]+suf)); err != nil {
				return fmt.Errorf("%s: copy out: %w", role, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, role := range escrow.Roles {
		pw, err := v.pws.For(res.EscrowID, string(role))
		if err != nil {
			return err
		}
		if err := v.client.OpenWallet(ctx, names[role], pw); err != nil {
			return fmt.Errorf("%s: open: %w", role, err)
		}
		st, err := v.client.IsMultisig(ctx)
		if err != nil {
			return fmt.Errorf("%s: is_multisig: %w", role, err)
		}
		if want := (rpcclient.MultisigStatus{Multisig: true, Ready: true, Threshold: 2, Total: 3}); st != want {
			return fmt.Errorf("%s: is_multisig %+v, want %+v", role, st, want)
		}
		addr, err := v.client.GetAddress(ctx)
		if err != nil {
			return fmt.Errorf("%s: get_address: %w", role, err)
		}
		if addr != res.MultisigAddress {
			return fmt.Errorf("%s: reopened wallet reports %s, want %s", role, addr, res.MultisigAddress)
		}
		if err := v.client.CloseWallet(ctx); err != nil {
			return fmt.Errorf("%s: close: %w", role, err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
