package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

var roles = []string{"buyer", "vendor", "arbiter"}

// Two well-formed peer messages for the steps that take them.
var twoPeers = []string{"MultisigxV2R1peerAAAAAAAAAAAA", "MultisigxV2R1peerBBBBBBBBBBBB"}

// peersOf returns the messages of every role but i.
func peersOf(infos []string, i int) []string {
	var out []string
	for j, m := range infos {
		if j != i {
			out = append(out, m)
		}
	}
	return out
}

// forRoles runs fn for the three roles at once, as the workflow does, and
// fails the test on any error.
func forRoles(t *testing.T, fn func(i int) (StepOutput, error)) [3]StepOutput {
	t.Helper()
	var outs [3]StepOutput
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = fn(i)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: %w", roles[i], errs[i])
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return outs
}

// dirFiles returns the content of every regular file in dir by name.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(b)
	}
	return files
}

// dirNames returns the sorted names of every entry in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertSameFiles reports the files missing from, changed in or added to
// got compared with want, by name only (the contents make unreadable
// diffs).
func assertSameFiles(t *testing.T, want, got map[string]string, msg string) bool {
	t.Helper()
	var diffs []string
	for name, content := range want {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+name)
		case g != content:
			diffs = append(diffs, "changed "+name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, "added "+name)
		}
	}
	sort.Strings(diffs)
	return assert.Empty(t, diffs, msg)
}

// walletFiles returns the content of the files of wallet or snapshot name
// (manifest included) by file name.
func walletFiles(t *testing.T, dir, name string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, suf := range []string{"", ".keys", ".address.txt", ".sha256"} {
		b, err := os.ReadFile(filepath.Join(dir, name+suf))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		files[name+suf] = string(b)
	}
	require.Contains(t, files, name+".keys", "wallet %s exists", name)
	return files
}

// cacheState reads the fake wallet state stored in wallet name's cache file.
func cacheState(t *testing.T, dir, name string) fakeState {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	var st fakeState
	require.NoError(t, json.Unmarshal(b, &st))
	return st
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// runProtocol runs the whole setup for escrow id through the activities as
// the workflow does (claim, then each round for the three roles at once)
// and returns the outputs of every round by round name.
func runProtocol(t *testing.T, f *fixture, id string, info runInfo) map[string][3]StepOutput {
	t.Helper()
	claim := mustExecute(t, f.acts, info, f.acts.ClaimEscrow, ClaimInput{EscrowID: id})
	require.False(t, claim.Resumed)
	var snaps, infos [3]string
	results := map[string][3]StepOutput{}
	for _, r := range []struct {
		round string
		fn    func(context.Context, StepInput) (StepOutput, error)
		peers bool
	}{
		{"CREATING", f.acts.CreateWallet, false},
		{"PREPARING", f.acts.PrepareMultisig, false},
		{"MAKING", f.acts.MakeMultisig, true},
		{"EXCHANGING_1", f.acts.ExchangeMultisigKeys, true},
		{"EXCHANGING_2", f.acts.ExchangeMultisigKeys, true},
		{"VERIFYING", f.acts.VerifyMultisig, false},
	} {
		outs := forRoles(t, func(i int) (StepOutput, error) {
			in := StepInput{EscrowID: id, Role: roles[i], Round: r.round, Snapshot: snaps[i]}
			if r.peers {
				in.PeerInfos = peersOf(infos[:], i)
			}
			return execute(f.acts, info, r.fn, in)
		})
		for i, o := range outs {
			snaps[i] = o.Snapshot
			if o.MultisigInfo != "" {
				infos[i] = o.MultisigInfo
			}
		}
		results[r.round] = outs
	}
	return results
}

// createAndPrepare runs CreateWallet and PrepareMultisig for one role and
// returns its committed snapshot.
func createAndPrepare(t *testing.T, f *fixture, id, role string) string {
	t.Helper()
	s := mustExecute(t, f.acts, runInfo{}, f.acts.CreateWallet, StepInput{EscrowID: id, Role: role, Round: "CREATING"}).Snapshot
	p := mustExecute(t, f.acts, runInfo{}, f.acts.PrepareMultisig, StepInput{EscrowID: id, Role: role, Round: "PREPARING", Snapshot: s})
	require.Equal(t, s, p.Snapshot)
	return s
}

func finals(res map[string][3]StepOutput) []string {
	var keep []string
	for _, o := range res["EXCHANGING_2"] {
		keep = append(keep, o.Snapshot)
	}
	return keep
}

func TestProtocolThroughFakes(t *testing.T) {
	f := newFixture(t)
	res := runProtocol(t, f, "e1", runInfo{RunID: "run-A"})
	for i, role := range roles {
		assert.True(t, strings.HasPrefix(res["CREATING"][i].Address, "9Fake"), role)
		assert.True(t, strings.HasPrefix(res["PREPARING"][i].MultisigInfo, "Multisig"), role)
		assert.Empty(t, res["EXCHANGING_1"][i].Address, "%s: round 1 gives no final address", role)
		assert.Equal(t, fakeMultisigAddress, res["EXCHANGING_2"][i].Address, role)
		v := res["VERIFYING"][i]
		assert.Equal(t, StepOutput{Snapshot: res["EXCHANGING_2"][i].Snapshot, Address: fakeMultisigAddress,
			Multisig: true, Ready: true, Threshold: 2, Total: 3, Attempt: 1, LeaseWaitMs: v.LeaseWaitMs, RPCMs: v.RPCMs, Slot: v.Slot}, v, role)
		for round, outs := range res {
			assert.False(t, outs[i].Recovered, "%s %s: every round takes the fast path", role, round)
			assert.Equal(t, int32(1), outs[i].Attempt)
		}
	}
	for _, c := range f.world.Calls() {
		assert.NotEqual(t, "open_wallet", c.Method, "the fast path never reopens")
	}
}

func TestStepFastPath(t *testing.T) {
	f := newFixture(t)
	base := StepInput{EscrowID: "e1", Role: "buyer"}

	in := base
	in.Round = "CREATING"
	created := mustExecute(t, f.acts, runInfo{}, f.acts.CreateWallet, in)
	require.True(t, strings.HasPrefix(created.Snapshot, "e1.buyer.creating.a1-"), created.Snapshot)
	assert.False(t, created.Recovered)
	assert.Equal(t, int32(1), created.Attempt)
	assert.True(t, strings.HasPrefix(created.Address, "9Fake"), created.Address)
	m1, err := f.store.Verify(created.Snapshot)
	require.NoError(t, err, "the returned snapshot is committed")
	working := m1.Source
	require.True(t, strings.HasPrefix(working, "e1.buyer.work.a1-"), working)
	assert.Equal(t, created.Address, cacheState(t, f.dir, created.Snapshot).Address)

	in = base
	in.Round, in.Snapshot = "PREPARING", created.Snapshot
	prepared := mustExecute(t, f.acts, runInfo{}, f.acts.PrepareMultisig, in)
	assert.Equal(t, created.Snapshot, prepared.Snapshot, "a read-only step returns its input snapshot")
	assert.Equal(t, "MultisigxV2R1"+created.Address, prepared.MultisigInfo)
	assert.False(t, prepared.Recovered)

	in = base
	in.Round, in.Snapshot, in.PeerInfos = "MAKING", created.Snapshot, twoPeers
	made := mustExecute(t, f.acts, runInfo{}, f.acts.MakeMultisig, in)
	assert.False(t, made.Recovered)
	require.True(t, strings.HasPrefix(made.Snapshot, "e1.buyer.making.a1-"), made.Snapshot)
	require.NotEqual(t, created.Snapshot, made.Snapshot, "every commit is a new snapshot")
	m2, err := f.store.Verify(made.Snapshot)
	require.NoError(t, err)
	assert.Equal(t, working, m2.Source, "the same working wallet stayed open")
	assert.True(t, cacheState(t, f.dir, made.Snapshot).Multisig, "the wallet was stored before the snapshot was taken")
	assert.False(t, cacheState(t, f.dir, created.Snapshot).Multisig, "the first snapshot is untouched")
	assert.Equal(t, "MultisigxV2Rn1"+created.Address, made.MultisigInfo)

	calls := f.world.Calls()
	assert.Equal(t, []string{
		"create_wallet " + working, "get_address", "store",
		"prepare_multisig true",
		"make_multisig", "store",
	}, f.world.CallStrings())
	for _, c := range calls {
		assert.Equal(t, calls[0].Proc, c.Proc, "one process for the role")
	}
	assert.Equal(t, []string{
		"acquire e1/buyer", "release e1/buyer " + working + "|" + created.Snapshot,
		"acquire e1/buyer", "release e1/buyer " + working + "|" + created.Snapshot,
		"acquire e1/buyer", "release e1/buyer " + working + "|" + made.Snapshot,
	}, f.leaser.Events())
	names, err := f.store.List("e1.")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{working, created.Snapshot, made.Snapshot}, names)
}

func TestStepRecoveryAfterWorkerRestart(t *testing.T) {
	tests := []struct {
		name   string
		before []string // rounds run before the restart
		step   string   // the round run after it
		method string   // its wallet call
	}{
		{"restart before make", []string{"CREATING", "PREPARING"}, "MAKING", "make_multisig"},
		{"restart before exchange", []string{"CREATING", "PREPARING", "MAKING"}, "EXCHANGING_1", "exchange_multisig_keys"},
		{"restart before the last exchange", []string{"CREATING", "PREPARING", "MAKING", "EXCHANGING_1"}, "EXCHANGING_2", "exchange_multisig_keys"},
		{"restart before verify", []string{"CREATING", "PREPARING", "MAKING", "EXCHANGING_1", "EXCHANGING_2"}, "VERIFYING", "is_multisig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			run := func(round, snapshot string) (StepOutput, error) {
				in := StepInput{EscrowID: "e1", Role: "buyer", Round: round, Snapshot: snapshot}
				switch round {
				case "CREATING":
					return execute(f.acts, runInfo{}, f.acts.CreateWallet, in)
				case "PREPARING":
					return execute(f.acts, runInfo{}, f.acts.PrepareMultisig, in)
				case "MAKING":
					in.PeerInfos = twoPeers
					return execute(f.acts, runInfo{}, f.acts.MakeMultisig, in)
				case "VERIFYING":
					return execute(f.acts, runInfo{}, f.acts.VerifyMultisig, in)
				default:
					in.PeerInfos = twoPeers
					return execute(f.acts, runInfo{}, f.acts.ExchangeMultisigKeys, in)
				}
			}
			snap := ""
			for _, r := range tt.before {
				out, err := run(r, snap)
				require.NoError(t, err, r)
				require.False(t, out.Recovered, r)
				snap = out.Snapshot
			}
			m, err := f.store.Verify(snap)
			require.NoError(t, err)
			oldWorking := m.Source
			before := walletFiles(t, f.dir, snap)
			oldLeaser, oldEvents := f.leaser, len(f.leaser.Events())

			f.restart()
			require.Empty(t, f.leaser.State("e1/buyer"), "a new worker has no state")
			from := len(f.world.Calls())
			out, err := run(tt.step, snap)
			require.NoError(t, err)
			assert.True(t, out.Recovered, "the step went through the recovery path")

			calls := f.world.Calls()[from:]
			require.GreaterOrEqual(t, len(calls), 3)
			require.Equal(t, "open_wallet", calls[0].Method)
			reopened := calls[0].Arg
			assert.NotEqual(t, snap, reopened, "a committed snapshot is never opened")
			assert.NotEqual(t, oldWorking, reopened, "a fresh working copy, not the old one")
			assert.True(t, strings.HasPrefix(reopened, "e1.buyer.work.a1-"), reopened)
			assert.Equal(t, "prepare_multisig true", calls[1].String(), "experimental multisig is re-enabled after the open")
			assert.Equal(t, tt.method, calls[2].Method)
			for _, c := range calls {
				assert.Equal(t, calls[0].Proc, c.Proc, "all on the new worker's process")
				assert.Less(t, 0, c.Proc)
			}
			assert.Len(t, oldLeaser.Events(), oldEvents, "the old worker's processes are not used")

			assertSameFiles(t, before, walletFiles(t, f.dir, snap), "the committed snapshot is byte-identical")
			_, err = f.store.Verify(snap)
			require.NoError(t, err)
			restored, err := f.store.Exists(reopened)
			require.NoError(t, err)
			assert.True(t, restored, "the working copy was restored into the store")
			if tt.step == "VERIFYING" {
				assert.Equal(t, snap, out.Snapshot)
				assert.True(t, out.Ready)
				assert.Equal(t, fakeMultisigAddress, out.Address)
				return
			}
			require.NotEqual(t, snap, out.Snapshot)
			m2, err := f.store.Verify(out.Snapshot)
			require.NoError(t, err)
			assert.Equal(t, reopened, m2.Source, "the new snapshot is of the reopened copy")
			assert.Equal(t, "release e1/buyer "+reopened+"|"+out.Snapshot, f.leaser.Events()[1])
		})
	}
}

// TestStepRetryFromOlderSnapshot: attempt 1 committed S2 and left its
// wallet open at S2, but the workflow never saw the result and retries
// from S1. The retry must start over from S1 and leave S2 alone.
func TestStepRetryFromOlderSnapshot(t *testing.T) {
	f := newFixture(t)
	s1 := createAndPrepare(t, f, "e1", "vendor")
	in := StepInput{EscrowID: "e1", Role: "vendor", Round: "MAKING", Snapshot: s1, PeerInfos: twoPeers}
	first := mustExecute(t, f.acts, runInfo{}, f.acts.MakeMultisig, in)
	s2 := first.Snapshot
	_, at := parseLeaseState(f.leaser.State("e1/vendor"))
	require.Equal(t, s2, at, "the process holds the wallet at S2")
	s1Files, s2Files := walletFiles(t, f.dir, s1), walletFiles(t, f.dir, s2)

	from := len(f.world.Calls())
	retry, err := execute(f.acts, runInfo{Attempt: 2}, f.acts.MakeMultisig, in)
	require.NoError(t, err, "the retry does not fail with already multisig")
	assert.True(t, retry.Recovered)
	assert.Equal(t, int32(2), retry.Attempt)
	assert.True(t, strings.HasPrefix(retry.Snapshot, "e1.vendor.making.a2-"), "the snapshot name carries the attempt: %s", retry.Snapshot)
	assert.NotEqual(t, s2, retry.Snapshot)
	assert.Equal(t, []string{"open_wallet", "prepare_multisig", "make_multisig", "store"}, f.world.Methods(from))
	reopened := f.world.Calls()[from].Arg
	assert.True(t, strings.HasPrefix(reopened, "e1.vendor.work.a2-"), reopened)

	assertSameFiles(t, s1Files, walletFiles(t, f.dir, s1), "S1 untouched")
	assertSameFiles(t, s2Files, walletFiles(t, f.dir, s2), "S2 untouched")
	for _, s := range []string{s1, s2, retry.Snapshot} {
		_, err := f.store.Verify(s)
		require.NoError(t, err, s)
	}
	_, at = parseLeaseState(f.leaser.State("e1/vendor"))
	assert.Equal(t, retry.Snapshot, at)
}

func TestStepWalletErrorDiscardsLease(t *testing.T) {
	tests := []struct {
		name             string
		method           string
		give             error
		wantType         string
		wantNonRetryable bool
	}{
		{"wallet-rpc unreachable", "make_multisig", &rpcclient.TransportError{Method: "make_multisig", Err: errors.New("connection refused")}, escrow.TypeWalletUnavailable, false},
		{"kex message rejected", "make_multisig", &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeUnknown, Message: "Kex message unexpectedly small"}, escrow.TypeInvalidMultisigMessage, true},
		{"wrong password", "make_multisig", &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeInvalidPassword, Message: "Invalid password"}, escrow.TypeWalletRejected, true},
		{"store times out", "store", &rpcclient.TransportError{Method: "store", Err: context.DeadlineExceeded}, escrow.TypeWalletUnavailable, false},
		{"daemon busy", "make_multisig", &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeDaemonBusy, Message: "busy"}, escrow.TypeWalletUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s1 := createAndPrepare(t, f, "e1", "arbiter")
			s1Files := walletFiles(t, f.dir, s1)
			in := StepInput{EscrowID: "e1", Role: "arbiter", Round: "MAKING", Snapshot: s1, PeerInfos: twoPeers}

			f.world.failNext(tt.method, tt.give)
			events := len(f.leaser.Events())
			_, err := execute(f.acts, runInfo{}, f.acts.MakeMultisig, in)
			appErr := requireAppError(t, err, tt.wantType, tt.wantNonRetryable)
			assert.Contains(t, appErr.Error(), tt.give.Error(), "the cause is in the message")
			assert.Equal(t, []string{"acquire e1/arbiter", "discard e1/arbiter"}, f.leaser.Events()[events:],
				"a failed call discards the lease and never releases it")
			assert.Empty(t, f.leaser.Keys(), "the key lost its process")
			made, err := f.store.List("e1.arbiter.making.")
			require.NoError(t, err)
			assert.Empty(t, made, "nothing committed")
			assertSameFiles(t, s1Files, walletFiles(t, f.dir, s1), "")

			// The retry recovers from S1 on whatever process it gets.
			out, err := execute(f.acts, runInfo{Attempt: 2}, f.acts.MakeMultisig, in)
			require.NoError(t, err)
			assert.True(t, out.Recovered)
			_, err = f.store.Verify(out.Snapshot)
			require.NoError(t, err)
			assertSameFiles(t, s1Files, walletFiles(t, f.dir, s1), "")
		})
	}
}

func TestPeerMessagesCheckedBeforeAnyWalletCall(t *testing.T) {
	tests := []struct {
		name string
		give []string
	}{
		{"no messages", nil},
		{"one message", twoPeers[:1]},
		{"three messages", []string{twoPeers[0], twoPeers[1], "MultisigxV2R1peerCCCCCCCC"}},
		{"identical messages", []string{twoPeers[0], twoPeers[0]}},
		{"no Multisig prefix", []string{twoPeers[0], "NotMultisigxV2R1peerBBBB"}},
		{"empty message", []string{twoPeers[0], ""}},
		{"1 MiB message", []string{twoPeers[0], "MultisigxV2R1" + strings.Repeat("A", 1<<20)}},
	}
	steps := []struct {
		name string
		fn   func(*Activities) func(context.Context, StepInput) (StepOutput, error)
	}{
		{"MakeMultisig", func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.MakeMultisig }},
		{"ExchangeMultisigKeys", func(a *Activities) func(context.Context, StepInput) (StepOutput, error) {
			return a.ExchangeMultisigKeys
		}},
	}
	for _, step := range steps {
		for _, tt := range tests {
			t.Run(step.name+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t)
				in := StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING", Snapshot: "e1.buyer.creating.a1-0000000000", PeerInfos: tt.give}
				_, err := execute(f.acts, runInfo{}, step.fn(f.acts), in)
				requireAppError(t, err, escrow.TypeInvalidMultisigMessage, true)
				assert.Empty(t, f.world.Calls(), "no wallet call")
				assert.Empty(t, f.leaser.Events(), "no lease acquired")
				assert.Empty(t, dirNames(t, f.dir), "no file written")
			})
		}
	}

	// Control: the same fixture with two good messages reaches the wallet,
	// so the emptiness above is the check's doing.
	f := newFixture(t)
	s1 := createAndPrepare(t, f, "e1", "buyer")
	from := len(f.world.Calls())
	mustExecute(t, f.acts, runInfo{}, f.acts.MakeMultisig, StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING", Snapshot: s1, PeerInfos: twoPeers})
	assert.Contains(t, f.world.Methods(from), "make_multisig")
}

func TestInvalidInputTouchesNothing(t *testing.T) {
	step := func(fn func(*Activities) func(context.Context, StepInput) (StepOutput, error), in StepInput) func(*Activities) error {
		return func(a *Activities) error {
			_, err := execute(a, runInfo{}, fn(a), in)
			return err
		}
	}
	create := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.CreateWallet }
	prepare := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.PrepareMultisig }
	mk := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.MakeMultisig }
	exchange := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) {
		return a.ExchangeMultisigKeys
	}
	verify := func(a *Activities) func(context.Context, StepInput) (StepOutput, error) { return a.VerifyMultisig }
	const snap = "e1.buyer.creating.a1-0000000000"
	tests := []struct {
		name string
		run  func(*Activities) error
	}{
		{"create: escrow id ../x", step(create, StepInput{EscrowID: "../x", Role: "buyer", Round: "CREATING"})},
		{"create: role buyer/../x", step(create, StepInput{EscrowID: "e1", Role: "buyer/../x", Round: "CREATING"})},
		{"create: role admin", step(create, StepInput{EscrowID: "e1", Role: "admin", Round: "CREATING"})},
		{"create: empty escrow id", step(create, StepInput{EscrowID: "", Role: "buyer", Round: "CREATING"})},
		{"create: escrow id with a dot", step(create, StepInput{EscrowID: "e1.buyer", Role: "buyer", Round: "CREATING"})},
		{"create: empty role", step(create, StepInput{EscrowID: "e1", Role: "", Round: "CREATING"})},
		{"create: wrong round", step(create, StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING"})},
		{"prepare: escrow id ../x", step(prepare, StepInput{EscrowID: "../x", Role: "buyer", Round: "PREPARING", Snapshot: snap})},
		{"prepare: no snapshot", step(prepare, StepInput{EscrowID: "e1", Role: "buyer", Round: "PREPARING"})},
		{"make: role admin", step(mk, StepInput{EscrowID: "e1", Role: "admin", Round: "MAKING", Snapshot: snap, PeerInfos: twoPeers})},
		{"make: escrow id ../x", step(mk, StepInput{EscrowID: "../x", Role: "buyer", Round: "MAKING", Snapshot: snap, PeerInfos: twoPeers})},
		{"exchange: escrow id a/b", step(exchange, StepInput{EscrowID: "a/b", Role: "buyer", Round: "EXCHANGING_1", Snapshot: snap, PeerInfos: twoPeers})},
		{"exchange: no snapshot", step(exchange, StepInput{EscrowID: "e1", Role: "buyer", Round: "EXCHANGING_1", PeerInfos: twoPeers})},
		{"verify: role buyer/../x", step(verify, StepInput{EscrowID: "e1", Role: "buyer/../x", Round: "VERIFYING", Snapshot: snap})},
		{"claim: escrow id ../x", func(a *Activities) error {
			_, err := execute(a, runInfo{RunID: "run-A"}, a.ClaimEscrow, ClaimInput{EscrowID: "../x"})
			return err
		}},
		{"claim: escrow id a/b", func(a *Activities) error {
			_, err := execute(a, runInfo{RunID: "run-A"}, a.ClaimEscrow, ClaimInput{EscrowID: "a/b"})
			return err
		}},
		{"finish: escrow id ../x", func(a *Activities) error {
			_, err := execute(a, runInfo{RunID: "run-A"}, a.FinishEscrow, FinishInput{EscrowID: "../x", Outcome: escrow.OutcomeFailed})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			parent := filepath.Dir(f.dir)
			err := tt.run(f.acts)
			requireAppError(t, err, escrow.TypeInvalidInput, true)
			assert.Empty(t, f.leaser.Events(), "no lease acquired")
			assert.Empty(t, f.world.Calls(), "no wallet call")
			assert.Empty(t, dirNames(t, f.dir), "nothing created in the wallet dir")
			assert.Equal(t, []string{filepath.Base(f.dir)}, dirNames(t, parent), "nothing created next to it")
		})
	}
}

func TestClaimEscrow(t *testing.T) {
	f := newFixture(t)
	runA := runInfo{WorkflowID: "escrow-e1", RunID: "run-A"}
	runB := runInfo{WorkflowID: "escrow-e1", RunID: "run-B"}
	claimPath := filepath.Join(f.dir, "e1.claim")

	out, err := execute(f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
	require.NoError(t, err)
	assert.False(t, out.Resumed)
	b, err := os.ReadFile(claimPath)
	require.NoError(t, err)
	var c claim
	require.NoError(t, json.Unmarshal(b, &c))
	assert.Equal(t, "e1", c.EscrowID)
	assert.Equal(t, "escrow-e1", c.WorkflowID)
	assert.Equal(t, "run-A", c.RunID)
	assert.WithinDuration(t, time.Now(), c.Created, time.Minute)
	st, err := os.Stat(claimPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	t.Run("same run again resumes", func(t *testing.T) {
		out, err := execute(f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
		require.NoError(t, err)
		assert.True(t, out.Resumed)
		after, err := os.ReadFile(claimPath)
		require.NoError(t, err)
		assert.Equal(t, string(b), string(after), "claim file unchanged")
	})
	t.Run("another run is a duplicate", func(t *testing.T) {
		_, err := execute(f.acts, runB, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
		appErr := requireAppError(t, err, escrow.TypeDuplicateEscrow, true)
		assert.Contains(t, appErr.Error(), "run-A", "names the owner")
		after, err := os.ReadFile(claimPath)
		require.NoError(t, err)
		assert.Equal(t, string(b), string(after), "claim file unchanged")
	})
	t.Run("wallet files without a claim are a duplicate", func(t *testing.T) {
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, "e2.buyer.work.a1-0000000000.keys"), []byte("k"), 0o600))
		before := dirFiles(t, f.dir)
		_, err := execute(f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e2"})
		requireAppError(t, err, escrow.TypeDuplicateEscrow, true)
		assertSameFiles(t, before, dirFiles(t, f.dir), "no claim written")
	})
	t.Run("another escrow's files do not count", func(t *testing.T) {
		// "e2" has wallet files (above) and "e1" a claim: neither is e2x's
		// or e's, whose names only share a prefix without the dot.
		for _, id := range []string{"e2x", "e"} {
			out, err := execute(f.acts, runB, f.acts.ClaimEscrow, ClaimInput{EscrowID: id})
			require.NoError(t, err, id)
			assert.False(t, out.Resumed, id)
			assert.FileExists(t, filepath.Join(f.dir, id+".claim"))
		}
	})
	t.Run("a claim file that is not JSON is an error, never replaced", func(t *testing.T) {
		p := filepath.Join(f.dir, "e3.claim")
		require.NoError(t, os.WriteFile(p, []byte("garbage"), 0o600))
		_, err := execute(f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e3"})
		require.Error(t, err)
		after, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, "garbage", string(after))
	})
	assert.Empty(t, f.leaser.Events(), "claims lease no process")
	assert.Empty(t, f.world.Calls())
}

func TestClaimEscrowConcurrentRuns(t *testing.T) {
	f := newFixture(t)
	const n = 8
	results := make([]error, n)
	resumed := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := execute(f.acts, runInfo{RunID: fmt.Sprint("run-", i)}, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
			results[i], resumed[i] = err, out.Resumed
		}()
	}
	wg.Wait()
	winners := 0
	for i, err := range results {
		if err == nil {
			winners++
			assert.False(t, resumed[i])
			continue
		}
		requireAppError(t, err, escrow.TypeDuplicateEscrow, true)
	}
	assert.Equal(t, 1, winners, "exactly one run owns the escrow")
}

func TestFinishEscrowCompleted(t *testing.T) {
	f := newFixture(t)
	runA := runInfo{RunID: "run-A"}
	res := runProtocol(t, f, "e1", runA)
	keep := finals(res)
	other := runProtocol(t, f, "e2", runInfo{RunID: "run-B"})
	// Leftovers: a temp file of e1 (removed) and of an escrow whose id
	// only shares a prefix (kept), plus that escrow's wallet.
	temps := []string{".e1.buyer.exchanging_2.a1-0000000000.keys.12345.tmp", ".e1.claim.42.tmp"}
	for _, n := range append(temps, ".e10.buyer.work.a1-x.keys.7.tmp", "e10.buyer.work.a1-x.keys") {
		require.NoError(t, os.WriteFile(filepath.Join(f.dir, n), []byte("partial"), 0o600))
	}
	before := dirFiles(t, f.dir)
	e1Wallets, err := f.store.List("e1.")
	require.NoError(t, err)
	require.Len(t, e1Wallets, 15, "5 per role: working copy and 4 snapshots")
	manifests := map[string]walletstore.Manifest{}
	for _, k := range keep {
		m, err := f.store.Verify(k)
		require.NoError(t, err)
		manifests[k] = m
	}
	events, calls := len(f.leaser.Events()), len(f.world.Calls())

	out, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeCompleted, Keep: keep, DurationMs: 1234})
	require.NoError(t, err)
	assert.Equal(t, FinishOutput{Removed: 12 + len(temps), Owner: true}, out)

	after := dirFiles(t, f.dir)
	var e1Left []string
	for name, content := range after {
		assert.Equal(t, before[name], content, "%s unchanged", name)
		if strings.HasPrefix(name, "e1.") || strings.HasPrefix(name, ".e1.") {
			e1Left = append(e1Left, name)
		}
	}
	var want []string
	for _, k := range keep {
		want = append(want, k, k+".keys", k+".address.txt", k+".sha256")
	}
	want = append(want, "e1.claim")
	assert.ElementsMatch(t, want, e1Left, "only the final snapshots and the claim remain")
	for name := range before {
		if !strings.HasPrefix(name, "e1.") && !strings.HasPrefix(name, ".e1.") {
			assert.Contains(t, after, name, "another escrow's file %s is kept", name)
		}
	}
	for _, k := range keep {
		m, err := f.store.Verify(k)
		require.NoError(t, err)
		assert.Equal(t, manifests[k], m)
	}
	for _, o := range finals(other) {
		_, err := f.store.Verify(o)
		require.NoError(t, err)
	}

	// The roles' processes were closed and freed.
	var wantEvents []string
	for _, role := range roles {
		wantEvents = append(wantEvents, "acquireOwned e1/"+role, "release e1/"+role+" ", "forget e1/"+role)
	}
	assert.Equal(t, wantEvents, f.leaser.Events()[events:])
	closed := f.world.Calls()[calls:]
	require.Len(t, closed, 3)
	procs := map[int]bool{}
	for _, c := range closed {
		assert.Equal(t, "close_wallet", c.Method)
		procs[c.Proc] = true
	}
	assert.Len(t, procs, 3, "one close per role's process")
	for _, k := range f.leaser.Keys() {
		assert.True(t, strings.HasPrefix(k, "e2/"), "only e2 still holds processes: %s", k)
	}
	assert.Len(t, f.leaser.Keys(), 3)

	t.Run("a retry of the finish is harmless", func(t *testing.T) {
		out, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeCompleted, Keep: keep})
		require.NoError(t, err)
		assert.Equal(t, FinishOutput{Owner: true}, out)
		assertSameFiles(t, after, dirFiles(t, f.dir), "")
	})
}

// TestFinishEscrowBadKeepDeletesNothing: a final snapshot that is corrupt
// or missing fails the finish before anything is deleted, so the earlier
// snapshots are still there to recover from.
func TestFinishEscrowBadKeepDeletesNothing(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes the dir or the keep list; it returns the keep list.
		spoil func(t *testing.T, f *fixture, keep []string) []string
	}{
		{"corrupt final snapshot", func(t *testing.T, f *fixture, keep []string) []string {
			// Damage the vendor's: in name order (arbiter < buyer <
			// vendor) it comes last, after every other escrow file.
			p := filepath.Join(f.dir, keep[1])
			require.NoError(t, os.WriteFile(p, []byte(`{"multisig":false}`), 0o600))
			return keep
		}},
		{"missing final snapshot", func(t *testing.T, f *fixture, keep []string) []string {
			return []string{keep[0], keep[1] + "x", keep[2]}
		}},
		{"working copy named as final", func(t *testing.T, f *fixture, keep []string) []string {
			m, err := f.store.Verify(keep[1])
			require.NoError(t, err)
			return []string{keep[0], m.Source, keep[2]}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			runA := runInfo{RunID: "run-A"}
			keep := tt.spoil(t, f, finals(runProtocol(t, f, "e1", runA)))
			before, err := f.store.List("e1.")
			require.NoError(t, err)
			files := dirFiles(t, f.dir)
			_, err = execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeCompleted, Keep: keep})
			requireAppError(t, err, escrow.TypeCorruptSnapshot, true)
			after, err := f.store.List("e1.")
			require.NoError(t, err)
			assert.Equal(t, before, after, "no wallet removed")
			assertSameFiles(t, files, dirFiles(t, f.dir), "")
		})
	}
}

func TestFinishEscrowFailedParks(t *testing.T) {
	for _, outcome := range []string{escrow.OutcomeFailed, escrow.OutcomeCancelled} {
		t.Run(outcome, func(t *testing.T) {
			f := newFixture(t)
			runA := runInfo{RunID: "run-A"}
			runProtocol(t, f, "e1", runA)
			wallets, err := f.store.List("e1.")
			require.NoError(t, err)
			before := dirFiles(t, f.dir)
			calls := len(f.world.Calls())

			in := FinishInput{EscrowID: "e1", Outcome: outcome, Reason: "vendor wallet rejected", ReasonType: escrow.TypeWalletRejected}
			out, err := execute(f.acts, runA, f.acts.FinishEscrow, in)
			require.NoError(t, err)
			assert.Equal(t, FinishOutput{Parked: true, Owner: true}, out)

			after := dirFiles(t, f.dir)
			note, ok := after["e1.parked.json"]
			require.True(t, ok, "parked note written")
			delete(after, "e1.parked.json")
			assertSameFiles(t, before, after, "no file deleted or changed")
			var p parked
			require.NoError(t, json.Unmarshal([]byte(note), &p))
			assert.Equal(t, "e1", p.EscrowID)
			assert.Equal(t, outcome, p.Outcome)
			assert.Equal(t, in.Reason, p.Reason)
			assert.Equal(t, in.ReasonType, p.ReasonType)
			assert.Equal(t, wallets, p.Wallets, "the note lists every wallet")
			assert.Len(t, p.Wallets, 15)
			assert.WithinDuration(t, time.Now(), p.Parked, time.Minute)

			assert.Equal(t, []string{"close_wallet", "close_wallet", "close_wallet"}, f.world.Methods(calls), "processes freed")
			assert.Empty(t, f.leaser.Keys())
		})
	}
}

func TestFinishEscrowByNonOwnerTouchesNothing(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		info    runInfo
		outcome string
	}{
		{"another run, completed", "e1", runInfo{RunID: "run-B"}, escrow.OutcomeCompleted},
		{"another run, failed", "e1", runInfo{RunID: "run-B"}, escrow.OutcomeFailed},
		{"unclaimed escrow", "e9", runInfo{RunID: "run-A"}, escrow.OutcomeCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			runProtocol(t, f, "e1", runInfo{RunID: "run-A"})
			if tt.id == "e9" {
				// Wallet files, but no claim: not provably ours.
				require.NoError(t, os.WriteFile(filepath.Join(f.dir, "e9.buyer.work.a1-x.keys"), []byte("k"), 0o600))
			}
			before := dirFiles(t, f.dir)
			events, calls := len(f.leaser.Events()), len(f.world.Calls())
			keep := []string{tt.id + ".buyer.x", tt.id + ".vendor.x", tt.id + ".arbiter.x"}
			out, err := execute(f.acts, tt.info, f.acts.FinishEscrow, FinishInput{EscrowID: tt.id, Outcome: tt.outcome, Keep: keep})
			require.NoError(t, err)
			assert.Equal(t, FinishOutput{}, out)
			assert.False(t, out.Owner)
			assertSameFiles(t, before, dirFiles(t, f.dir), "nothing touched")
			assert.Empty(t, f.leaser.Events()[events:], "no process touched")
			assert.Empty(t, f.world.Calls()[calls:])
			assert.Len(t, f.leaser.Keys(), 3, "the owner's processes are still attached")
		})
	}
}

func TestMaxConcurrentCalls(t *testing.T) {
	tests := []struct {
		name string
		give int
		want int
	}{
		{"one at a time", 1, 1},
		{"two at a time", 2, 2}, // control: the fake does see overlap
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.MaxConcurrentCalls = tt.give })
			gate := make(chan struct{})
			f.world.createGate, f.world.createEntered = gate, make(chan string, 2)
			errc := make(chan error, 2)
			for _, id := range []string{"e1", "e2"} {
				go func() {
					_, err := execute(f.acts, runInfo{}, f.acts.CreateWallet, StepInput{EscrowID: id, Role: "buyer", Round: "CREATING"})
					errc <- err
				}()
			}
			waitEntered := func() string {
				select {
				case n := <-f.world.createEntered:
					return n
				case <-time.After(10 * time.Second):
					t.Fatal("timed out waiting for create_wallet")
					return ""
				}
			}
			for range tt.give {
				waitEntered()
			}
			require.Eventually(t, func() bool {
				return countPrefix(f.leaser.Events(), "acquire ") == 2
			}, 10*time.Second, 5*time.Millisecond, "both activities hold their lease")
			select {
			case n := <-f.world.createEntered:
				require.NotEqual(t, 1, tt.give, "%s started while another wallet call was running", n)
			case <-time.After(200 * time.Millisecond):
			}
			gate <- struct{}{}
			if tt.give == 1 {
				waitEntered() // the second starts once the first is done
			}
			gate <- struct{}{}
			for range 2 {
				select {
				case err := <-errc:
					require.NoError(t, err)
				case <-time.After(10 * time.Second):
					t.Fatal("timed out waiting for the activities")
				}
			}
			assert.Equal(t, tt.want, f.world.MaxActive())
			assert.Equal(t, 2, countPrefix(f.world.CallStrings(), "create_wallet "))
		})
	}
}

func TestHeartbeatsWhileWalletCallRuns(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.HeartbeatEvery = 5 * time.Millisecond })
	gate := make(chan struct{})
	f.world.createGate, f.world.createEntered = gate, make(chan string, 1)
	// Counted in an interceptor: the SDK throttles what reaches the
	// server (and the test environment's listener) to one per 30 s.
	beats := new(atomic.Int32)
	errc := make(chan error, 1)
	go func() {
		_, err := execute(f.acts, runInfo{Heartbeats: beats}, f.acts.CreateWallet, StepInput{EscrowID: "e1", Role: "buyer", Round: "CREATING"})
		errc <- err
	}()
	<-f.world.createEntered
	require.Eventually(t, func() bool { return beats.Load() >= 3 }, 10*time.Second, 5*time.Millisecond,
		"the activity heartbeats while the wallet call blocks")
	close(gate)
	require.NoError(t, <-errc)
	time.Sleep(30 * time.Millisecond) // a tick racing the stop may still land
	n := beats.Load()
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, n, beats.Load(), "heartbeats stop with the activity")
}

// TestLeaseStateRoundTrip pins the lease state format the recovery path
// relies on.
func TestLeaseStateRoundTrip(t *testing.T) {
	tests := []struct {
		give        string
		wantWorking string
		wantSnap    string
	}{
		{leaseState("e1.buyer.work.a1-x", "e1.buyer.creating.a1-x"), "e1.buyer.work.a1-x", "e1.buyer.creating.a1-x"},
		{"", "", ""},
		{"garbage", "garbage", ""},
	}
	for _, tt := range tests {
		w, s := parseLeaseState(tt.give)
		assert.Equal(t, tt.wantWorking, w, tt.give)
		assert.Equal(t, tt.wantSnap, s, tt.give)
	}
	names := []string{workName("e1", "buyer", "a1-x"), snapshotName("e1", "buyer", "EXCHANGING_2", "a1-x")}
	for _, n := range names {
		require.NoError(t, walletstore.ValidateName(n))
		assert.True(t, strings.HasPrefix(n, escrowPrefix("e1")))
		assert.False(t, strings.HasPrefix(n, escrowPrefix("e10")))
	}
}

func TestClaimEscrowUnreadableClaimIsDuplicate(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.dir, "e3.claim")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := execute(f.acts, runInfo{RunID: "run-A"}, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e3"})
	requireAppError(t, err, escrow.TypeDuplicateEscrow, true)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "{not json", string(b), "the unreadable claim is left for a person to look at")
}

func TestFinishEscrowCompletedNeedsOneKeepPerRole(t *testing.T) {
	tests := []struct {
		name string
		give []string
	}{
		{"none", nil},
		{"two", []string{"e1.buyer.x", "e1.vendor.x"}},
		{"another escrow's", []string{"e1.buyer.x", "e1.vendor.x", "e2.arbiter.x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			runA := runInfo{RunID: "run-A"}
			runProtocol(t, f, "e1", runA)
			before := dirFiles(t, f.dir)
			_, err := execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeCompleted, Keep: tt.give})
			requireAppError(t, err, escrow.TypeInvalidInput, true)
			assertSameFiles(t, before, dirFiles(t, f.dir), "nothing removed")
		})
	}
}

// TestClaimWaitsForRoomUnderMaxEscrows: a claim beyond MaxEscrows waits for
// an escrow to finish and then goes ahead; one that waits longer than
// AdmitWait fails with the retryable WorkerBusy and claims nothing.
func TestClaimWaitsForRoomUnderMaxEscrows(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxEscrows = 1; c.AdmitWait = 200 * time.Millisecond })
	runA, runB := runInfo{RunID: "run-A"}, runInfo{RunID: "run-B"}
	mustExecute(t, f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})

	_, err := execute(f.acts, runB, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e2"})
	requireAppError(t, err, escrow.TypeWorkerBusy, false)
	assert.NotContains(t, dirNames(t, f.dir), "e2.claim", "a busy claim writes nothing")

	f.cfg.AdmitWait = time.Minute
	// The same dir and claim files, a fresh in-memory count: e1's claim
	// resumes and counts again.
	f.restart()
	mustExecute(t, f.acts, runA, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e1"})
	claimed := make(chan error, 1)
	go func() {
		_, err := execute(f.acts, runB, f.acts.ClaimEscrow, ClaimInput{EscrowID: "e2"})
		claimed <- err
	}()
	select {
	case err := <-claimed:
		t.Fatalf("claim beyond MaxEscrows returned before room was made: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = execute(f.acts, runA, f.acts.FinishEscrow, FinishInput{EscrowID: "e1", Outcome: escrow.OutcomeFailed, Reason: "test", ReasonType: escrow.TypeWalletRejected})
	require.NoError(t, err)
	select {
	case err := <-claimed:
		require.NoError(t, err, "the waiting claim goes ahead once e1 finished")
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting claim did not go ahead")
	}
	assert.Contains(t, dirNames(t, f.dir), "e2.claim")
}
