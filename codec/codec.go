// Package codec encrypts Temporal payloads with AES-256-GCM so that the
// multisig messages (which carry key material) never sit in workflow
// history in plaintext.
//
// Keys are named: every encrypted payload carries the id of the key that
// sealed it in its metadata, so keys rotate by adding a new key and making
// it current; older keys keep decrypting what they sealed. A key ring is
// written as lines (or comma-separated entries) of "id:hex", 32 bytes of
// key each; the last entry is the current key:
//
//	2026-01:5f0c…e1   # older, still decrypts
//	2026-07:9a41…07   # current, encrypts
//
// Payloads that are not encrypted (for example the JSON input of a
// `temporal workflow start --input …`) pass through Decode unchanged, so
// plain starts keep working.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

const (
	// Encoding is the metadata "encoding" of an encrypted payload.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the key that sealed a payload.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the size of every key: AES-256.
	KeySize = 32
)

// ErrUnknownKey reports a payload sealed with a key the ring does not hold.
var ErrUnknownKey = errors.New("codec: payload encrypted with an unknown key")

// ErrNoKeyRing reports an encrypted payload met by a client that has no key
// ring (see Plain).
var ErrNoKeyRing = errors.New("codec: payload is encrypted but no key ring is configured")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Codec is a converter.PayloadCodec that seals payloads with the current key
// of its ring and opens them with whichever key sealed them.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
}

// ParseKeys parses a key ring ("id:hex" entries separated by newlines or
// commas; '#' starts a comment). The last entry is the current key.
func ParseKeys(spec string) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for _, line := range strings.FieldsFunc(spec, func(r rune) bool { return r == '\n' || r == ',' }) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, hexKey, ok := strings.Cut(line, ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("codec: key entry %q: want id:hex with an id of [A-Za-z0-9._-]", redact(line))
		}
		key, err := hex.DecodeString(hexKey)
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("codec: key %q: want %d bytes as hex", id, KeySize)
		}
		if _, dup := c.aeads[id]; dup {
			return nil, fmt.Errorf("codec: key %q listed twice", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		c.aeads[id] = aead
		c.current = id
	}
	if c.current == "" {
		return nil, errors.New("codec: no key")
	}
	return c, nil
}

// LoadKeys reads a key ring from the file path.
func LoadKeys(path string) (*Codec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	return ParseKeys(string(b))
}

// redact keeps an entry's id for an error message and hides its key.
func redact(entry string) string {
	if id, _, ok := strings.Cut(entry, ":"); ok {
		return id + ":***"
	}
	return "***"
}

// NewKey returns a new random key entry "id:hex" for a key ring.
func NewKey(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("codec: key id %q: want [A-Za-z0-9._-]", id)
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return id + ":" + hex.EncodeToString(k), nil
}

// CurrentKeyID is the id of the key that encrypts.
func (c *Codec) CurrentKeyID() string { return c.current }

// aad binds a ciphertext to its key id and encoding.
func aad(id string) []byte { return []byte(Encoding + "/" + id) }

// Encode seals every payload with the current key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.current),
			},
			Data: aead.Seal(nonce, nonce, plain, aad(c.current)),
		}
	}
	return out, nil
}

// Decode opens encrypted payloads and passes others through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize()+aead.Overhead() {
			return nil, errors.New("codec: encrypted payload too short")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], aad(id))
		if err != nil {
			return nil, fmt.Errorf("codec: decrypt with key %q: %w", id, err)
		}
		var inner commonpb.Payload
		if err := inner.Unmarshal(plain); err != nil {
			return nil, fmt.Errorf("codec: unmarshal payload: %w", err)
		}
		out[i] = &inner
	}
	return out, nil
}

// DataConverter returns the SDK's default data converter wrapped with c.
// Workers, starters and escrowctl must all use the same key ring.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// plain is the PayloadCodec of a client without a key ring.
type plain struct{}

func (plain) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) { return payloads, nil }

func (plain) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for _, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) == Encoding {
			return nil, fmt.Errorf("%w (key %q)", ErrNoKeyRing, p.GetMetadata()[MetadataKeyID])
		}
	}
	return payloads, nil
}

// Plain returns the data converter of a client without a key ring: the SDK's
// default, which sends payloads unencrypted, except that an encrypted
// payload fails with ErrNoKeyRing instead of the SDK's "payload encoding is
// not supported".
func Plain() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), plain{})
}
