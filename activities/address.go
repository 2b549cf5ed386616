package activities

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/sha3"

	"github.com/escrowflow/escrowflow/chainscan"
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
	raw, err := chainscan.DecodeBase58(addr)
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
