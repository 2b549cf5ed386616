package escrow

// The custody contract: which roles keep their own keys, the submitRound
// update an external participant sends each round and the bytes it signs.
// Its failure and rejection types are in errors.go.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Custody says who holds a role's wallet.
type Custody string

const (
	// CustodyHosted: the worker holds the role's wallet, with a password
	// derived from its master secret (the default, and always the
	// arbiter's).
	CustodyHosted Custody = "hosted"
	// CustodyExternal: the participant holds its own wallet and password
	// and sends each round's message with the SubmitRoundUpdate.
	CustodyExternal Custody = "external"
)

// SubmitRoundUpdate is the name of the Temporal Update an external
// participant sends each setup round's message with. Its argument is a
// SubmitRound, its answer a SubmitRoundResult.
const SubmitRoundUpdate = "submitRound"

// DefaultParticipantDeadline is how long a setup round waits for an external
// participant's message before the escrow fails with ParticipantTimeout.
const DefaultParticipantDeadline = 10 * time.Minute

// MaxRoundMessageBytes bounds one round message.
const MaxRoundMessageBytes = 64 << 10

// Participant describes an external participant at start.
type Participant struct {
	// PublicKey is the participant's ed25519 public key, 64 hex digits.
	PublicKey string `json:"publicKey"`
}

// SubmitRound is the argument of the submitRound update: JSON
// {"role","round","message","signature"}.
type SubmitRound struct {
	Role  string `json:"role"`
	Round string `json:"round"`
	// Message is the participant's round message: the multisig info its
	// wallet returned (PREPARING, MAKING, EXCHANGING_1) or the multisig
	// address its last exchange returned (EXCHANGING_2).
	Message string `json:"message"`
	// Signature is the ed25519 signature of SignedBytes, 128 hex digits.
	Signature string `json:"signature"`
}

// SubmitRoundResult answers a submitRound once every role's message for
// that round is in: the two peers' messages of the round, by role.
type SubmitRoundResult struct {
	Round string            `json:"round"`
	Peers map[string]string `json:"peers"`
	// Signatures holds the external peers' signatures of their messages
	// (hosted peers have none): a participant that knows a peer's public
	// key checks that the service relayed that peer's own message.
	Signatures map[string]string `json:"signatures,omitempty"`
}

// signedPrefix starts every signed round message (a domain separator: no
// other signature made with a participant key can be taken for one).
const signedPrefix = "escrowflow-submitRound-v1"

// SignedBytes returns the exact bytes a participant signs for a round
// message: the ASCII lines
//
//	escrowflow-submitRound-v1
//	<escrowId>
//	<role>
//	<round>
//	<lowercase hex of SHA-256(message)>
//
// joined by "\n" with no trailing newline. Escrow ids, roles and rounds
// cannot contain a newline, so the encoding is unambiguous.
func SignedBytes(escrowID, role, round, message string) []byte {
	return signedBytes(signedPrefix, escrowID, role, round, message)
}

func signedBytes(prefix, escrowID, role, round, content string) []byte {
	sum := sha256.Sum256([]byte(content))
	return []byte(strings.Join([]string{prefix, escrowID, role, round, hex.EncodeToString(sum[:])}, "\n"))
}

// Sign fills m.Signature with key's signature of m for escrowID.
func Sign(key ed25519.PrivateKey, escrowID string, m *SubmitRound) {
	m.Signature = hex.EncodeToString(ed25519.Sign(key, SignedBytes(escrowID, m.Role, m.Round, m.Message)))
}

// Verify reports whether m carries pub's signature for escrowID.
func Verify(pub ed25519.PublicKey, escrowID string, m SubmitRound) bool {
	sig, err := hex.DecodeString(m.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, SignedBytes(escrowID, m.Role, m.Round, m.Message), sig)
}

// ParsePublicKey decodes an ed25519 public key of 64 hex digits.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q is not %d hex-encoded bytes", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// CheckRoundMessage checks that message is well formed for a round: at most
// MaxRoundMessageBytes; a Monero multisig info ("Multisig" and base58) in
// every round but the last exchange, where it is the 95-character base58
// standard address the exchange returned.
func CheckRoundMessage(lastExchange bool, message string) error {
	if len(message) > MaxRoundMessageBytes {
		return fmt.Errorf("message of %d bytes, at most %d", len(message), MaxRoundMessageBytes)
	}
	body := message
	if !lastExchange {
		if len(message) < 16 || !strings.HasPrefix(message, "Multisig") {
			return fmt.Errorf("not a Monero multisig message")
		}
		body = strings.TrimPrefix(message, "Multisig")
	} else if len(message) != 95 {
		return fmt.Errorf("want a 95-character address, got %d characters", len(message))
	}
	for i := 0; i < len(body); i++ {
		if !strings.ContainsRune(base58, rune(body[i])) {
			return fmt.Errorf("message has a character outside base58")
		}
	}
	return nil
}

const base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
