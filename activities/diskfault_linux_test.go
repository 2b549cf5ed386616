//go:build linux

package activities

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// tmpfsFixture is newFixture with the wallet dir on a tmpfs of the given
// size ("4m"), mounted for the test. It needs root; under CI=true its
// absence fails the test.
func tmpfsFixture(t *testing.T, size string) *fixture {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("needs root to mount a tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o700))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		skip("mount -t tmpfs not permitted here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	dir := filepath.Join(mnt, "wallets")
	store, err := walletstore.Open(dir)
	require.NoError(t, err)
	f := &fixture{t: t, dir: dir, store: store, world: newFakeWorld(dir)}
	f.cfg = Config{Store: store, Passwords: mustPasswords(t, testMaster)}
	f.restart()
	return f
}

// fillTo leaves about free bytes free on the file system of dir.
func fillTo(t *testing.T, dir string, free uint64) {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	have := st.Bavail * uint64(st.Bsize)
	require.Greater(t, have, free)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(dir), "fill"), make([]byte, have-free), 0o600))
}

// failedSave is what monero-wallet-rpc answers when it cannot write a
// wallet file, whatever the reason.
func failedSave(method string) error {
	return &rpcclient.RPCError{Method: method, Code: rpcclient.CodeUnknown, Message: `failed to save file "/w/e1.arbiter.work.a1"`}
}

// TestWalletRPCSaveFailureOnFullDisk: a multisig call that fails because
// wallet-rpc could not save is typed DiskFull when the wallet dir is full,
// not InvalidMultisigMessage (which the same error gets on a roomy disk).
func TestWalletRPCSaveFailureOnFullDisk(t *testing.T) {
	f := tmpfsFixture(t, "4m")
	s1 := createAndPrepare(t, f, "e1", "arbiter")
	in := StepInput{EscrowID: "e1", Role: "arbiter", Round: "MAKING", Snapshot: s1, PeerInfos: twoPeers}

	f.world.failNext("make_multisig", failedSave("make_multisig"))
	_, err := execute(f.acts, runInfo{}, f.acts.MakeMultisig, in)
	requireAppError(t, err, escrow.TypeInvalidMultisigMessage, true)

	fillTo(t, f.dir, 256<<10)
	f.world.failNext("make_multisig", failedSave("make_multisig"))
	_, err = execute(f.acts, runInfo{Attempt: 2}, f.acts.MakeMultisig, in)
	appErr := requireAppError(t, err, escrow.TypeDiskFull, true)
	assert.Contains(t, appErr.Error(), "failed to save file", "wallet-rpc's own message is kept")
}

// TestReadOnlyWalletDir: a failed wallet-rpc save on a read-only wallet
// dir is WalletDirUnwritable, and FinishEscrow of the failed escrow ends
// (frees the escrow's place on the worker) with the note in the log when
// the dir cannot take its parking note.
func TestReadOnlyWalletDir(t *testing.T) {
	f := tmpfsFixture(t, "8m")
	f.cfg.MaxEscrows = 1
	f.restart()
	runA := runInfo{RunID: "run-A"}
	mustExecute(t, f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
	s1 := createAndPrepare(t, f, "e1", "arbiter")
	// wallet-rpc's own leftover of an earlier failed save.
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, s1+".keys.new"), []byte("half"), 0o600))
	before := dirFiles(t, f.dir)

	require.NoError(t, syscall.Mount("", filepath.Dir(f.dir), "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""))
	in := StepInput{EscrowID: "e1", Role: "arbiter", Round: "MAKING", Snapshot: s1, PeerInfos: twoPeers}
	f.world.failNext("make_multisig", failedSave("make_multisig"))
	_, err := execute(f.acts, runA, f.acts.MakeMultisig, in)
	requireAppError(t, err, escrow.TypeWalletDirUnwritable, true)

	out, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeFailed,
		Reason: "wallet dir read-only", ReasonType: escrow.TypeWalletDirUnwritable})
	require.NoError(t, err, "a note the disk cannot take does not fail the finish")
	assert.Equal(t, FinishOutput{Owner: true}, out)
	assert.Equal(t, before, dirFiles(t, f.dir), "nothing changed")
	assert.Empty(t, f.acts.held, "the escrow no longer counts against MaxEscrows")

	// Writable again: FinishEscrow (retried, say) parks and sweeps
	// wallet-rpc's leftover, which the note does not list.
	require.NoError(t, syscall.Mount("", filepath.Dir(f.dir), "", syscall.MS_REMOUNT, ""))
	out, err = execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeFailed,
		Reason: "wallet dir read-only", ReasonType: escrow.TypeWalletDirUnwritable})
	require.NoError(t, err)
	assert.True(t, out.Parked)
	after := dirFiles(t, f.dir)
	assert.NotContains(t, after, s1+".keys.new")
	var p parked
	require.NoError(t, json.Unmarshal([]byte(after["e1.parked.json"]), &p))
	for _, w := range p.Wallets {
		assert.NotContains(t, w, ".new")
	}
}
