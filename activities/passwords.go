package activities

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// MinMasterSecretLen is the shortest master secret NewPasswords accepts.
const MinMasterSecretLen = 32

// Passwords derives wallet passwords from the worker's master secret, so no
// password ever travels in workflow input, output or history. The derivation
// is HKDF-SHA256(master, salt "escrowflow/wallet-password/v1",
// info "<escrowId>/<role>"), hex encoded.
type Passwords struct {
	master []byte
}

// NewPasswords returns a Passwords over master, which must hold at least
// MinMasterSecretLen bytes.
func NewPasswords(master []byte) (*Passwords, error) {
	if len(master) < MinMasterSecretLen {
		return nil, fmt.Errorf("master secret too short: %d bytes, want at least %d", len(master), MinMasterSecretLen)
	}
	return &Passwords{master: append([]byte(nil), master...)}, nil
}

// For returns the wallet password of role in escrow escrowID.
func (p *Passwords) For(escrowID, role string) (string, error) {
	if p == nil {
		return "", errors.New("no master secret configured")
	}
	key, err := hkdf.Key(sha256.New, p.master, []byte("escrowflow/wallet-password/v1"), escrowID+"/"+role, 32)
	if err != nil {
		return "", fmt.Errorf("derive wallet password: %w", err)
	}
	return hex.EncodeToString(key), nil
}

// String never shows the secret.
func (p *Passwords) String() string { return "Passwords{master:***}" }

// GoString keeps the secret out of %#v too, which would otherwise print
// the master bytes.
func (p *Passwords) GoString() string { return p.String() }
