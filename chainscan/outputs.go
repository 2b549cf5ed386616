// Package chainscan finds the outputs a Monero transaction pays to one
// standard address, in Go, from what monerod serves: with the address's
// private view key (a scan of the chain and the pool) or with the sender's
// tx key (check_tx_key). It needs no wallet and no monero-wallet-rpc
// process: wallet-rpc v0.18 needs an open wallet for both, and opening one
// costs ≈ 1.3 CPU-s (docs/DESIGN.md).
//
// An output counts when its one-time key is the address's for the
// transaction's derivation and, for RingCT outputs, its amount opens the
// output's commitment (as wallet2 checks), so a sender cannot claim an
// amount it did not commit to. Coinbase outputs are not looked at.
package chainscan

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/sha3"
)

// Address holds the public keys of a standard address.
type Address struct {
	Spend, View *edwards25519.Point
}

// ParseAddress decodes a standard Monero address (any network; the caller
// checks the network byte and checksum first).
func ParseAddress(addr string) (Address, error) {
	raw, err := DecodeBase58(addr)
	if err != nil {
		return Address{}, err
	}
	if len(raw) != 69 {
		return Address{}, errors.New("not a standard address")
	}
	spend, err := new(edwards25519.Point).SetBytes(raw[1:33])
	if err != nil {
		return Address{}, fmt.Errorf("spend key: %w", err)
	}
	view, err := new(edwards25519.Point).SetBytes(raw[33:65])
	if err != nil {
		return Address{}, fmt.Errorf("view key: %w", err)
	}
	return Address{Spend: spend, View: view}, nil
}

// Secret decodes a 32-byte secret key (hex, a reduced scalar).
func Secret(hexKey string) (*edwards25519.Scalar, error) {
	b, err := hex.DecodeString(hexKey)
	if err != nil || len(b) != 32 {
		return nil, errors.New("not 32 bytes of hex")
	}
	return edwards25519.NewScalar().SetCanonicalBytes(b)
}

// Tx is the part of monerod's JSON form of a transaction (as_json) that
// finding outputs needs.
type Tx struct {
	Version    int    `json:"version"`
	UnlockTime uint64 `json:"unlock_time"`
	Vin        []struct {
		Gen *json.RawMessage `json:"gen"`
	} `json:"vin"`
	Vout []struct {
		Amount uint64 `json:"amount"`
		Target struct {
			Key       string `json:"key"`
			TaggedKey *struct {
				Key string `json:"key"`
			} `json:"tagged_key"`
		} `json:"target"`
	} `json:"vout"`
	Extra []byte `json:"-"`
	RCT   struct {
		Type     int `json:"type"`
		ECDHInfo []struct {
			Amount string `json:"amount"`
		} `json:"ecdhInfo"`
		OutPk []string `json:"outPk"`
	} `json:"rct_signatures"`
}

// ParseTx decodes monerod's as_json of one transaction.
func ParseTx(asJSON string) (Tx, error) {
	var tx Tx
	if err := json.Unmarshal([]byte(asJSON), &tx); err != nil {
		return Tx{}, err
	}
	var extra struct {
		Extra []int `json:"extra"`
	}
	if err := json.Unmarshal([]byte(asJSON), &extra); err != nil {
		return Tx{}, err
	}
	tx.Extra = make([]byte, len(extra.Extra))
	for i, v := range extra.Extra {
		tx.Extra[i] = byte(v)
	}
	return tx, nil
}

// coinbase reports whether tx is a miner transaction.
func (tx *Tx) coinbase() bool { return len(tx.Vin) == 1 && tx.Vin[0].Gen != nil }

// pubKeys returns the transaction public keys and the additional public
// keys in tx_extra (tags 0x01 and 0x04). Parsing stops at anything it does
// not know, keeping what it found, as wallet2 does.
func (tx *Tx) pubKeys() (main []*edwards25519.Point, additional []*edwards25519.Point) {
	b := tx.Extra
	point := func(p []byte) *edwards25519.Point {
		pt, err := new(edwards25519.Point).SetBytes(p)
		if err != nil {
			return nil
		}
		return pt
	}
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		switch tag {
		case 0x00: // padding: the rest
			return main, additional
		case 0x01:
			if len(b) < 32 {
				return main, additional
			}
			if p := point(b[:32]); p != nil {
				main = append(main, p)
			}
			b = b[32:]
		case 0x02: // nonce: one size byte
			if len(b) < 1 || len(b) < 1+int(b[0]) {
				return main, additional
			}
			b = b[1+int(b[0]):]
		case 0x04:
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k)/32 {
				return main, additional
			}
			b = b[k:]
			for range n {
				additional = append(additional, point(b[:32])) // nil when invalid
				b = b[32:]
			}
		case 0x03, 0xde: // merge mining, minergate: a varint size
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return main, additional
			}
			b = b[k+int(n):]
		default:
			return main, additional
		}
	}
	return main, additional
}

// Found is one output paid to the address.
type Found struct {
	Index  int
	Amount uint64
}

// derivation is 8·s·P, Monero's generate_key_derivation.
func derivation(s *edwards25519.Scalar, p *edwards25519.Point) []byte {
	if p == nil {
		return nil
	}
	d := new(edwards25519.Point).ScalarMult(s, p)
	return d.MultByCofactor(d).Bytes()
}

// hashToScalar is Hs: Keccak-256 reduced mod l.
func hashToScalar(parts ...[]byte) *edwards25519.Scalar {
	var wide [64]byte
	copy(wide[:], keccak(parts...))
	s, _ := edwards25519.NewScalar().SetUniformBytes(wide[:])
	return s
}

func keccak(parts ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// pointH is RingCT's second generator H (rctTypes.h).
var pointH = func() *edwards25519.Point {
	b, _ := hex.DecodeString("8b655970153799af2aeadc9ff1add0ea6c7251d54154cfa92c173a0dd39c1f94")
	p, err := new(edwards25519.Point).SetBytes(b)
	if err != nil {
		panic(err)
	}
	return p
}()

// match returns the amount of output i if derivation d makes it the
// address's, with ok false otherwise (or when its amount does not open its
// commitment).
func (tx *Tx) match(addr Address, d []byte, i int) (amount uint64, ok bool) {
	if d == nil {
		return 0, false
	}
	out := tx.Vout[i]
	key := out.Target.Key
	if out.Target.TaggedKey != nil {
		key = out.Target.TaggedKey.Key
	}
	want, err := hex.DecodeString(key)
	if err != nil || len(want) != 32 {
		return 0, false
	}
	s := hashToScalar(d, binary.AppendUvarint(nil, uint64(i)))
	got := new(edwards25519.Point).ScalarBaseMult(s)
	got.Add(got, addr.Spend)
	if string(got.Bytes()) != string(want) {
		return 0, false
	}
	if tx.RCT.Type == 0 {
		return out.Amount, true
	}
	// RingCT with 8-byte encrypted amounts (Bulletproof2, CLSAG,
	// Bulletproof+: every type a v0.18 chain accepts).
	if tx.RCT.Type < 4 || i >= len(tx.RCT.ECDHInfo) || i >= len(tx.RCT.OutPk) {
		return 0, false
	}
	enc, err := hex.DecodeString(tx.RCT.ECDHInfo[i].Amount)
	if err != nil || len(enc) < 8 {
		return 0, false
	}
	sb := s.Bytes()
	pad := keccak([]byte("amount"), sb)
	var amt [32]byte
	for j := range 8 {
		amt[j] = enc[j] ^ pad[j]
	}
	mask := hashToScalar([]byte("commitment_mask"), sb)
	a, _ := edwards25519.NewScalar().SetCanonicalBytes(amt[:])
	c := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(a, pointH, mask)
	commit, err := hex.DecodeString(tx.RCT.OutPk[i])
	if err != nil || string(c.Bytes()) != string(commit) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(amt[:8]), true
}

// outputs tries every output with the main derivations and the output's
// additional one.
func (tx *Tx) outputs(addr Address, main [][]byte, additional [][]byte) []Found {
	if tx.coinbase() {
		return nil
	}
	var found []Found
	for i := range tx.Vout {
		ds := main
		if i < len(additional) {
			ds = append(ds[:len(ds):len(ds)], additional[i])
		}
		for _, d := range ds {
			if amt, ok := tx.match(addr, d, i); ok {
				found = append(found, Found{Index: i, Amount: amt})
				break
			}
		}
	}
	return found
}

// WithViewKey returns the outputs of tx paid to addr, found with the
// address's private view key.
func WithViewKey(tx Tx, addr Address, view *edwards25519.Scalar) []Found {
	pubs, extra := tx.pubKeys()
	var main, additional [][]byte
	for _, p := range pubs {
		main = append(main, derivation(view, p))
	}
	for _, p := range extra {
		additional = append(additional, derivation(view, p))
	}
	return tx.outputs(addr, main, additional)
}

// WithTxKey returns the outputs of tx paid to addr, proven with the
// sender's tx keys: the main key, then one additional key per output when
// the transaction has them (get_tx_key's concatenation).
func WithTxKey(tx Tx, addr Address, keys []*edwards25519.Scalar) []Found {
	if len(keys) == 0 {
		return nil
	}
	main := [][]byte{derivation(keys[0], addr.View)}
	var additional [][]byte
	for _, k := range keys[1:] {
		additional = append(additional, derivation(k, addr.View))
	}
	return tx.outputs(addr, main, additional)
}
