package activities

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/sha3"
)

// Monero addresses are checked here, in Go, because wallet-rpc's
// validate_address needs an open wallet (measured: docs/DESIGN.md, "Money
// flow"), and CheckTradeTerms runs without one.

// addressPrefixes are the network bytes of standard addresses and
// subaddresses (integrated addresses are refused: a payout never carries a
// payment id). Regtest uses mainnet's.
var addressPrefixes = map[string]map[byte]string{
	"mainnet":  {18: "standard", 42: "subaddress"},
	"regtest":  {18: "standard", 42: "subaddress"},
	"testnet":  {53: "standard", 63: "subaddress"},
	"stagenet": {24: "standard", 36: "subaddress"},
}

// integratedPrefixes are the integrated-address network bytes, named in the
// refusal.
var integratedPrefixes = map[byte]bool{19: true, 54: true, 25: true}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58 block sizes: 8 bytes encode to 11 characters; a shorter last block
// of n characters decodes to blockBytes[n] bytes (-1: impossible).
var blockBytes = [12]int{0, -1, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8}

// decodeBase58 decodes Monero's block-wise base58.
func decodeBase58(s string) ([]byte, error) {
	var out []byte
	for len(s) > 0 {
		n := min(11, len(s))
		block := s[:n]
		s = s[n:]
		size := blockBytes[n]
		if size < 0 {
			return nil, fmt.Errorf("bad length")
		}
		v := new(big.Int)
		for _, c := range []byte(block) {
			i := strings.IndexByte(base58Alphabet, c)
			if i < 0 {
				return nil, fmt.Errorf("character %q is not base58", c)
			}
			v.Mul(v, big.NewInt(58))
			v.Add(v, big.NewInt(int64(i)))
		}
		b := v.Bytes()
		if len(b) > size {
			return nil, fmt.Errorf("block overflows")
		}
		out = append(out, make([]byte, size-len(b))...)
		out = append(out, b...)
	}
	return out, nil
}

// AddressError reports an address that is not valid for the worker's
// network; it is typed InvalidInput.
type AddressError struct{ Field, Reason string }

func (e *AddressError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// CheckAddress checks that addr is a standard address or a subaddress of
// network ("mainnet", "testnet", "stagenet" or "regtest") with a good
// checksum. field names it in the error (never the whole value: only its
// first characters are quoted).
func CheckAddress(network, field, addr string) error {
	prefixes, ok := addressPrefixes[network]
	if !ok {
		return &AddressError{Field: field, Reason: fmt.Sprintf("unknown network %q", network)}
	}
	short := addr
	if len(short) > 8 {
		short = short[:8] + "…"
	}
	if len(addr) != 95 && len(addr) != 106 {
		return &AddressError{Field: field, Reason: fmt.Sprintf("%q is not a Monero address (length %d)", short, len(addr))}
	}
	raw, err := decodeBase58(addr)
	if err != nil {
		return &AddressError{Field: field, Reason: fmt.Sprintf("%q is not a Monero address: %v", short, err)}
	}
	body, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	h := sha3.NewLegacyKeccak256()
	h.Write(body)
	if !bytes.Equal(h.Sum(nil)[:4], sum) {
		return &AddressError{Field: field, Reason: fmt.Sprintf("%q has a bad checksum", short)}
	}
	switch {
	case integratedPrefixes[raw[0]]:
		return &AddressError{Field: field, Reason: fmt.Sprintf("%q is an integrated address; give a standard address or a subaddress", short)}
	case prefixes[raw[0]] == "" || len(raw) != 69:
		return &AddressError{Field: field, Reason: fmt.Sprintf("%q is not a %s address", short, network)}
	}
	return nil
}
