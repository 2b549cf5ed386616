package activities

import (
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// The fuzz targets of this file run their seed corpus (f.Add and
// testdata/fuzz/<FuzzName>/) in every plain `go test`; `make fuzz` runs each
// for 30 s.

// isEscrowID is an escrow id check written independently of the regexp in
// errors.go: 1 to 64 bytes of A-Z a-z 0-9 _ -, the first a letter or digit.
func isEscrowID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// FuzzValidateEscrowID checks that escrow.ValidateEscrowID accepts exactly the ids
// isEscrowID accepts, that every name the activities derive from an accepted
// id is a valid wallet name inside the wallet dir, and that a rejection is a
// one-line *escrow.InvalidEscrowIDError that quotes the id.
func FuzzValidateEscrowID(f *testing.F) {
	for _, id := range []string{
		"order-42", "a", "0", "Z_", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"", "-a", "_a", "../x", "a/b", "a.b", "a b", "a\x00b", "a\nb", "a\tb", "ñ", "%2e%2e",
		"x\u202e", "A\xff", "a..b", ".", "..", "a\\b", "order-42\n",
	} {
		f.Add(id)
	}
	dir := filepath.Join(string(filepath.Separator)+"w", "wallets")
	f.Fuzz(func(t *testing.T, id string) {
		err := escrow.ValidateEscrowID(id)
		want := isEscrowID(id)
		if (err == nil) != want {
			t.Fatalf("ValidateEscrowID(%q) = %v, independent check says valid=%v", id, err, want)
		}
		if err != nil {
			var bad *escrow.InvalidEscrowIDError
			if !errors.As(err, &bad) || bad.ID != id {
				t.Fatalf("ValidateEscrowID(%q) = %T %v, want *escrow.InvalidEscrowIDError", id, err, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(id)) {
				t.Fatalf("error %q does not quote the id %q", msg, id)
			}
			for _, r := range msg {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("error for %q contains control character %U: %q", id, r, msg)
				}
			}
			return
		}
		if strings.ContainsAny(id, "/.\\\x00") {
			t.Fatalf("accepted id %q contains '/', '.', '\\' or NUL", id)
		}
		names := []string{workName(id, "buyer", "a1-00")}
		for _, role := range escrow.Roles {
			names = append(names, workName(id, string(role), "a12-0123456789"))
			for _, round := range escrow.Rounds {
				names = append(names, snapshotName(id, string(role), string(round), "a12-0123456789"))
			}
		}
		for _, n := range names {
			if err := walletstore.ValidateName(n); err != nil {
				t.Fatalf("accepted id %q gives invalid wallet name: %v", id, err)
			}
			if !strings.HasPrefix(n, escrowPrefix(id)) {
				t.Fatalf("wallet name %q lacks the escrow prefix %q", n, escrowPrefix(id))
			}
		}
		for _, file := range []string{id + ".claim", id + ".parked.json"} {
			if p := filepath.Join(dir, file); filepath.Dir(p) != dir || filepath.Base(p) != file {
				t.Fatalf("file %q of accepted id %q leaves the wallet dir: %s", file, id, p)
			}
		}
	})
}

// checkPeersReason matches every error checkPeers may return: a closed set
// of reasons that contain no part of the messages (kex messages carry key
// material and must not reach logs or workflow history through errors).
var checkPeersReason = regexp.MustCompile(`^invalid multisig message: (want 2 peer messages, got [0-9]+|the two peer messages are identical|peer message is not a Monero multisig message)$`)

// wantPeersOK is the rule checkPeers implements, written independently.
func wantPeersOK(peers []string) bool {
	if len(peers) != 2 || peers[0] == peers[1] {
		return false
	}
	for _, m := range peers {
		if len(m) < len("Multisig") || len(m) > 64*1024 || m[:len("Multisig")] != "Multisig" {
			return false
		}
	}
	return true
}

// FuzzCheckPeers feeds checkPeers up to three fuzzed messages (count says
// how many of a, b, c are passed) and checks that it never panics, accepts
// exactly the inputs the rule allows, and rejects with a non-retryable
// InvalidMultisigMessage whose text is one of a closed set of reasons.
func FuzzCheckPeers(f *testing.F) {
	good := "MultisigxV2R1" + strings.Repeat("A", 40)
	for _, s := range []struct {
		count   uint8
		a, b, c string
	}{
		{2, twoPeers[0], twoPeers[1], ""},
		{2, good, good, ""},
		{2, good, "", ""},
		{2, "", "", ""},
		{2, "Multisig", "Multisi", ""},
		{2, good, "multisig" + good[8:], ""},
		{2, good, "Multisig\x00\x00\x00", ""},
		{2, good, "Multisigñ€", ""},
		{2, good, " " + good, ""},
		{0, "", "", ""},
		{1, good, "", ""},
		{3, good, twoPeers[0], twoPeers[1]},
		{255, good, twoPeers[0], twoPeers[1]},
	} {
		f.Add(s.count, s.a, s.b, s.c)
	}
	f.Fuzz(func(t *testing.T, count uint8, a, b, c string) {
		peers := []string{a, b, c}[:int(count)%4]
		if n := 64*1024 + int(count>>4)%5 - 2 - len(a); count%4 == 2 && count >= 128 && n >= 0 {
			// Around the upper length bound, which mutation rarely reaches.
			peers = []string{b, a + strings.Repeat("A", n)}
		}
		in := StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING", Snapshot: "e1.buyer.creating.a1-00", PeerInfos: peers}
		err := checkPeers(in)
		if want := wantPeersOK(peers); (err == nil) != want {
			t.Fatalf("checkPeers(%d messages) = %v, rule says ok=%v", len(peers), err, want)
		}
		if err == nil {
			return
		}
		var bad *escrow.InvalidMultisigMessageError
		if !errors.As(err, &bad) {
			t.Fatalf("checkPeers error %T %v, want *escrow.InvalidMultisigMessageError", err, err)
		}
		if !checkPeersReason.MatchString(err.Error()) {
			t.Fatalf("checkPeers error %q is not one of the fixed reasons", err)
		}
		var appErr *temporal.ApplicationError
		cerr := classify(err)
		if !errors.As(cerr, &appErr) || appErr.Type() != escrow.TypeInvalidMultisigMessage || !appErr.NonRetryable() {
			t.Fatalf("classify(%v) = %v, want a non-retryable %s", err, cerr, escrow.TypeInvalidMultisigMessage)
		}
		if appErr.Message() != err.Error() {
			t.Fatalf("classify changed the message: %q → %q", err, appErr.Message())
		}
	})
}

// FuzzClassify builds an error of one of the kinds the activities meet
// (kind), from fuzzed text and codes, optionally wrapped, and checks that
// classify never panics, returns an ApplicationError of a documented type
// for every kind it knows, marks it non-retryable exactly when the type is
// in escrow.NonRetryableTypes, keeps the cause in the chain, and adds nothing to
// the cause's message.
func FuzzClassify(f *testing.F) {
	f.Add(uint8(0), "make_multisig", -1, "Kex message unexpectedly small.", false)
	f.Add(uint8(0), "exchange_multisig_keys", -28, "already multisig", true)
	f.Add(uint8(0), "open_wallet", -1, `"/w/a.keys" is opened by another wallet program`, false)
	f.Add(uint8(0), "store", -3, "busy", false)
	f.Add(uint8(1), "store", 503, "503 Service Unavailable", false)
	f.Add(uint8(1), "open_wallet", 401, "", true)
	f.Add(uint8(2), "create_wallet", 0, "connection refused", false)
	f.Add(uint8(3), "", 0, "../x", false)
	f.Add(uint8(4), "role", 0, "buyer/../x", true)
	f.Add(uint8(5), "", 0, "garbage", false)
	f.Add(uint8(6), "", 0, "e1", false)
	f.Add(uint8(7), "", 0, "addresses differ", false)
	f.Add(uint8(8), "", 0, "../escape", false)
	f.Add(uint8(9), "", 0, "e1.buyer.making.a1-00", true)
	f.Add(uint8(10), "", 0, "e1", false)
	f.Add(uint8(11), "", 0, "something odd", false)

	types := map[string]bool{escrow.TypeWalletUnavailable: true}
	for _, typ := range escrow.NonRetryableTypes {
		types[typ] = true
	}
	f.Fuzz(func(t *testing.T, kind uint8, method string, code int, text string, wrap bool) {
		var give error
		switch kind % 12 {
		case 0:
			give = &rpcclient.RPCError{Method: method, Code: code, Message: text}
		case 1:
			give = &rpcclient.HTTPError{Method: method, StatusCode: code, Status: text}
		case 2:
			give = &rpcclient.TransportError{Method: method, Err: errors.New(text)}
		case 3:
			give = &escrow.InvalidEscrowIDError{ID: text}
		case 4:
			give = &escrow.InvalidInputError{Field: method, Value: text}
		case 5:
			give = &escrow.InvalidMultisigMessageError{Reason: text}
		case 6:
			give = &escrow.DuplicateEscrowError{EscrowID: text, Detail: method}
		case 7:
			give = &escrow.VerificationError{Reason: text}
		case 8:
			give = walletstore.ValidateName(text)
			if give == nil {
				give = walletstore.ErrInvalidName
			}
		case 9:
			give = walletstore.ErrCorrupt
		case 10:
			give = walletstore.ErrNotFound
		default:
			give = errors.New(text)
		}
		if wrap {
			give = errors.Join(errors.New("step"), give) // a wrapper with an Unwrap() []error
		}
		got := classify(give)
		if got == nil {
			t.Fatalf("classify(%v) = nil", give)
		}
		var appErr *temporal.ApplicationError
		if !errors.As(got, &appErr) {
			if kind%12 != 2 && kind%12 != 11 {
				t.Fatalf("classify(%T %v) = %T %v, want an ApplicationError", give, give, got, got)
			}
			if got != give {
				t.Fatalf("classify returned a new non-application error %v for %v", got, give)
			}
			return
		}
		if !types[appErr.Type()] {
			t.Fatalf("classify(%v): undocumented type %q", give, appErr.Type())
		}
		if want := contains(escrow.NonRetryableTypes, appErr.Type()); appErr.NonRetryable() != want {
			t.Fatalf("classify(%v): type %s NonRetryable=%v, want %v", give, appErr.Type(), appErr.NonRetryable(), want)
		}
		if appErr.Message() != give.Error() {
			t.Fatalf("classify(%v) changed the message to %q", give, appErr.Message())
		}
		if !errors.Is(got, give) {
			t.Fatalf("classify(%v) lost the cause", give)
		}
	})
}
