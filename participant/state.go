package participant

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Files a participant keeps in its directory.
const (
	// KeyFile holds the participant's ed25519 private key seed (hex).
	KeyFile = "participant.key"
	// PasswordFile holds its wallet's password (hex); it never leaves the
	// directory.
	PasswordFile = "wallet.password"
	// StateFile records, per escrow round, the message it sent and the
	// peers' messages it received, so a restarted participant resends the
	// same message instead of redoing a wallet step.
	StateFile = "state.json"
	// WalletDir is the sub-directory of its wallet files.
	WalletDir = "wallets"
)

// LoadOrCreateKey returns the participant key in dir, creating dir and the
// key (mode 0600) on first use.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	seed, err := loadOrCreateSecret(dir, KeyFile, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the hex public key of the participant key in dir (for
// "participants": {"<role>": {"publicKey": …}} in the escrow's input),
// creating the key on first use.
func PublicKey(dir string) (string, error) {
	key, err := LoadOrCreateKey(dir)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(key.Public().(ed25519.PublicKey)), nil
}

// loadOrCreateSecret reads n hex-encoded random bytes from dir/name, or
// writes new ones there atomically.
func loadOrCreateSecret(dir, name string, n int) ([]byte, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(secret) != n {
			return nil, fmt.Errorf("participant: %s does not hold %d hex-encoded bytes", path, n)
		}
		return secret, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("participant: %w", err)
	}
	secret := make([]byte, n)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("participant: %w", err)
	}
	if err := walletstore.AtomicWriteFile(path, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return secret, nil
}

// state is what a participant has done in its escrow.
type state struct {
	EscrowID string `json:"escrowId"`
	Role     string `json:"role"`
	// Sent holds the signed message of each round it sent (before the
	// send: a resend after a restart is the same update).
	Sent map[string]escrow.SubmitRound `json:"sent"`
	// Answers holds the peers' messages of each round.
	Answers map[string]map[string]string `json:"answers"`
	// Payout holds the signed payoutRound message of each payout round it
	// sent (recorded before the wallet is stored and the message sent),
	// PayoutAnswers their answers, PayoutDone the attempts it finished.
	Payout        map[string]escrow.PayoutMessage     `json:"payout,omitempty"`
	PayoutAnswers map[string]escrow.PayoutRoundResult `json:"payoutAnswers,omitempty"`
	PayoutDone    map[int]bool                        `json:"payoutDone,omitempty"`
}

func loadState(dir, escrowID, role string) (*state, error) {
	st := &state{EscrowID: escrowID, Role: role, Sent: map[string]escrow.SubmitRound{}, Answers: map[string]map[string]string{},
		Payout: map[string]escrow.PayoutMessage{}, PayoutAnswers: map[string]escrow.PayoutRoundResult{}, PayoutDone: map[int]bool{}}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("participant: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("participant: %s: %w", StateFile, err)
	}
	if st.Payout == nil {
		st.Payout = map[string]escrow.PayoutMessage{}
	}
	if st.PayoutAnswers == nil {
		st.PayoutAnswers = map[string]escrow.PayoutRoundResult{}
	}
	if st.PayoutDone == nil {
		st.PayoutDone = map[int]bool{}
	}
	if st.EscrowID != escrowID || st.Role != role {
		return nil, fmt.Errorf("participant: %s belongs to escrow %s as %s, not %s as %s", dir, st.EscrowID, st.Role, escrowID, role)
	}
	return st, nil
}

func (st *state) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return walletstore.AtomicWriteFile(filepath.Join(dir, StateFile), b, 0o600)
}
