package participant

import (
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/walletstore"
)

func TestKeyIsCreatedOnceAndKeptPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	k1, err := LoadOrCreateKey(dir)
	require.NoError(t, err)
	k2, err := LoadOrCreateKey(dir)
	require.NoError(t, err)
	require.Equal(t, k1, k2, "the same key on every run")
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), []byte("zz\n"), 0o600))
	_, err = LoadOrCreateKey(dir)
	require.ErrorContains(t, err, "does not hold 32 hex-encoded bytes")
}

func TestStateBelongsToOneEscrowAndRole(t *testing.T) {
	dir := t.TempDir()
	st, err := loadState(dir, "e1", "buyer")
	require.NoError(t, err)
	st.Sent["PREPARING"] = escrow.SubmitRound{Role: "buyer", Round: "PREPARING", Message: "m"}
	require.NoError(t, st.save(dir))

	again, err := loadState(dir, "e1", "buyer")
	require.NoError(t, err)
	require.Equal(t, st.Sent, again.Sent)
	_, err = loadState(dir, "e1", "vendor")
	require.ErrorContains(t, err, "belongs to escrow e1 as buyer")
}

// TestRewindRestoresTheWalletFromBeforeAnUnrecordedStep: a participant that
// stopped after a wallet step but before recording its message gets the
// wallet back as it was before the step; a recorded step is kept.
func TestRewindRestoresTheWalletFromBeforeAnUnrecordedStep(t *testing.T) {
	dir := t.TempDir()
	store, err := walletstore.Open(filepath.Join(dir, WalletDir))
	require.NoError(t, err)
	write := func(content string) {
		for _, suf := range []string{"", ".keys"} {
			require.NoError(t, os.WriteFile(filepath.Join(store.Dir(), "e1.buyer"+suf), []byte(content+suf), 0o600))
		}
	}
	write("before")
	_, err = store.Snapshot("e1.buyer", "e1.buyer.before-making")
	require.NoError(t, err)
	write("after make_multisig")

	st, err := loadState(dir, "e1", "buyer")
	require.NoError(t, err)
	st.Sent["PREPARING"] = escrow.SubmitRound{Message: "p"}
	r := &runner{st: st, store: store, name: "e1.buyer", log: zap.NewNop()}

	st.Sent["MAKING"] = escrow.SubmitRound{Message: "m"} // recorded: kept
	require.NoError(t, r.rewind())
	b, err := os.ReadFile(filepath.Join(store.Dir(), "e1.buyer.keys"))
	require.NoError(t, err)
	require.Equal(t, "after make_multisig.keys", string(b))

	delete(st.Sent, "MAKING") // not recorded: redone from the snapshot
	require.NoError(t, r.rewind())
	b, err = os.ReadFile(filepath.Join(store.Dir(), "e1.buyer.keys"))
	require.NoError(t, err)
	require.Equal(t, "before.keys", string(b))
}

func TestCheckPeersRefusesAnUnsignedOrForgedPeerMessage(t *testing.T) {
	vendorPub, vendorKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	_, hostKey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	keys := map[string]string{"vendor": hex.EncodeToString(vendorPub)}
	answer := func(signer ed25519.PrivateKey) escrow.SubmitRoundResult {
		m := escrow.SubmitRound{Role: "vendor", Round: "MAKING", Message: "MultisigxV2R1vendor"}
		escrow.Sign(signer, "e1", &m)
		return escrow.SubmitRoundResult{Round: "MAKING",
			Peers:      map[string]string{"vendor": m.Message, "arbiter": "MultisigxV2R1arbiter"},
			Signatures: map[string]string{"vendor": m.Signature}}
	}
	require.NoError(t, checkPeers("e1", answer(vendorKey), keys))
	require.ErrorContains(t, checkPeers("e1", answer(hostKey), keys), "does not carry vendor's signature")
	unsigned := answer(vendorKey)
	unsigned.Signatures = nil
	require.ErrorContains(t, checkPeers("e1", unsigned, keys), "refused")
	swapped := answer(vendorKey)
	swapped.Peers["vendor"] = "MultisigxV2R1host"
	require.ErrorContains(t, checkPeers("e1", swapped, keys), "refused")
	require.NoError(t, checkPeers("e1", answer(hostKey), nil), "no key: the service is trusted")
}

// TestSignedBefore: a participant that signed a payout in one attempt
// refuses to sign in another (one signed payout per escrow).
func TestSignedBefore(t *testing.T) {
	st, err := loadState(t.TempDir(), "e1", "vendor")
	require.NoError(t, err)
	tr := &trader{runner: &runner{st: st}}
	require.Empty(t, tr.signedBefore(1))
	st.Payout[escrow.PayoutRoundName(escrow.PayoutExport, 1)] = escrow.PayoutMessage{}
	require.Empty(t, tr.signedBefore(2), "an export is no signature")
	st.Payout[escrow.PayoutRoundName(escrow.PayoutSigned, 1)] = escrow.PayoutMessage{}
	require.Empty(t, tr.signedBefore(1), "the same attempt resends its recorded signature")
	require.Equal(t, "PAYOUT-SIGNED-1", tr.signedBefore(2))
}
