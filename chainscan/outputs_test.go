package chainscan

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"testing"

	"filippo.io/edwards25519"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The real-chain proof is activities.TestTradePayoutOnRegtest (exact
// amounts of real deposits, by scan and by tx key). These tests cover the
// parsing and the refusals.

func pointOf(s *edwards25519.Scalar) *edwards25519.Point {
	return new(edwards25519.Point).ScalarBaseMult(s)
}

func randomScalar(t *testing.T) *edwards25519.Scalar {
	var b [64]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	s, err := edwards25519.NewScalar().SetUniformBytes(b[:])
	require.NoError(t, err)
	return s
}

// payment builds the JSON of a transaction whose output 1 pays amount to
// (a, b)'s address with tx key r; output 0 pays someone else.
func payment(t *testing.T, view, spend, r *edwards25519.Scalar, amount uint64) (string, map[string]any) {
	B := new(edwards25519.Point).ScalarBaseMult(spend)
	A := new(edwards25519.Point).ScalarBaseMult(view)
	R := new(edwards25519.Point).ScalarBaseMult(r)
	d := derivation(r, A)
	s := hashToScalar(d, binary.AppendUvarint(nil, 1))
	P := new(edwards25519.Point).ScalarBaseMult(s)
	P.Add(P, B)
	pad := keccak([]byte("amount"), s.Bytes())
	enc := binary.LittleEndian.AppendUint64(nil, amount)
	for i := range enc {
		enc[i] ^= pad[i]
	}
	var amt [32]byte
	binary.LittleEndian.PutUint64(amt[:], amount)
	as, _ := edwards25519.NewScalar().SetCanonicalBytes(amt[:])
	C := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(as, pointH, hashToScalar([]byte("commitment_mask"), s.Bytes()))
	other := new(edwards25519.Point).ScalarBaseMult(randomScalar(t)).Bytes()
	extra := []int{0x02, 3, 9, 9, 9, 0x01} // a nonce, then the tx public key
	for _, c := range R.Bytes() {
		extra = append(extra, int(c))
	}
	tx := map[string]any{
		"version": 2, "unlock_time": 0, "vin": []any{map[string]any{"key": map[string]any{}}},
		"vout": []any{
			map[string]any{"amount": 0, "target": map[string]any{"tagged_key": map[string]any{"key": hex.EncodeToString(other), "view_tag": "00"}}},
			map[string]any{"amount": 0, "target": map[string]any{"tagged_key": map[string]any{"key": hex.EncodeToString(P.Bytes()), "view_tag": "00"}}},
		},
		"extra": extra,
		"rct_signatures": map[string]any{"type": 6, "ecdhInfo": []any{map[string]any{"amount": "0011223344556677"}, map[string]any{"amount": hex.EncodeToString(enc)}},
			"outPk": []any{hex.EncodeToString(other), hex.EncodeToString(C.Bytes())}},
	}
	b, err := json.Marshal(tx)
	require.NoError(t, err)
	return string(b), tx
}

func TestOutputsByViewKeyAndTxKey(t *testing.T) {
	view, spend, r := randomScalar(t), randomScalar(t), randomScalar(t)
	addr := Address{Spend: new(edwards25519.Point).ScalarBaseMult(spend), View: new(edwards25519.Point).ScalarBaseMult(view)}
	js, raw := payment(t, view, spend, r, 1_234_567)
	tx, err := ParseTx(js)
	require.NoError(t, err)
	want := []Found{{Index: 1, Amount: 1_234_567}}
	assert.Equal(t, want, WithViewKey(tx, addr, view), "8·a·R")
	assert.Equal(t, want, WithTxKey(tx, addr, []*edwards25519.Scalar{r}), "8·r·A")
	assert.Empty(t, WithViewKey(tx, addr, randomScalar(t)), "another view key")
	assert.Empty(t, WithTxKey(tx, addr, []*edwards25519.Scalar{randomScalar(t)}), "another tx key")

	// An amount that does not open the commitment counts for nothing.
	rct := raw["rct_signatures"].(map[string]any)
	rct["outPk"].([]any)[1] = hex.EncodeToString(new(edwards25519.Point).ScalarBaseMult(randomScalar(t)).Bytes())
	b, _ := json.Marshal(raw)
	forged, err := ParseTx(string(b))
	require.NoError(t, err)
	assert.Empty(t, WithViewKey(forged, addr, view))
}

func TestSummarize(t *testing.T) {
	outs := []Output{
		{TxID: "a", Amount: 5, Height: 100},
		{TxID: "a", Index: 1, Amount: 1, Height: 100},
		{TxID: "b", Amount: 7, Height: 105},
		{TxID: "c", Amount: 2, Height: 90, UnlockTime: 200},
		{TxID: "p", Amount: 3}, // pool
	}
	r := Summarize(outs, 110)
	assert.Equal(t, Result{Received: 18, Confirmations: 0, TxIDs: []string{"a", "b", "c", "p"}, Unlocked: 6}, r)
	r = Summarize(outs[:3], 115)
	assert.Equal(t, Result{Received: 13, Confirmations: 10, TxIDs: []string{"a", "b"}, Unlocked: 13}, r)
	assert.True(t, Unlocked(200, 200))
	assert.False(t, Unlocked(1_700_000_000, 10_000_000), "a Unix time counts as locked")
}

// BenchmarkWithViewKey is the cost of looking at one two-output
// transaction that does not pay the address (a scan's common case).
func BenchmarkWithViewKey(b *testing.B) {
	t := &testing.T{}
	view, spend := randomScalar(t), randomScalar(t)
	js, _ := payment(t, randomScalar(t), randomScalar(t), randomScalar(t), 5)
	addr := Address{Spend: pointOf(spend), View: pointOf(view)}
	for b.Loop() {
		tx, err := ParseTx(js)
		if err != nil {
			b.Fatal(err)
		}
		if len(WithViewKey(tx, addr, view)) != 0 {
			b.Fatal("found an output of another address")
		}
	}
}
