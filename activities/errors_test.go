package activities

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

func TestClassify(t *testing.T) {
	const passThrough = "" // want: returned unchanged, not an ApplicationError
	tests := []struct {
		name             string
		give             error
		wantType         string
		wantNonRetryable bool
	}{
		{"invalid escrow id", &escrow.InvalidEscrowIDError{ID: "../x"}, escrow.TypeInvalidInput, true},
		{"invalid input", &escrow.InvalidInputError{Field: "role", Value: "admin"}, escrow.TypeInvalidInput, true},
		{"invalid wallet name wrapped", fmt.Errorf("walletstore: restore: %w", walletstore.ErrInvalidName), escrow.TypeInvalidInput, true},
		{"invalid wallet name from the store", walletstore.ValidateName("../escape"), escrow.TypeInvalidInput, true},
		{"invalid multisig message", &escrow.InvalidMultisigMessageError{Reason: "garbage"}, escrow.TypeInvalidMultisigMessage, true},
		{"duplicate escrow", &escrow.DuplicateEscrowError{EscrowID: "e1", Detail: "claimed"}, escrow.TypeDuplicateEscrow, true},
		{"verification", &escrow.VerificationError{Reason: "addresses differ"}, escrow.TypeVerificationFailed, true},
		{"wrapped verification", fmt.Errorf("round: %w", &escrow.VerificationError{Reason: "x"}), escrow.TypeVerificationFailed, true},
		{"corrupt snapshot", fmt.Errorf("walletstore: verify %q: %w: e1.keys: size 1", "e1", walletstore.ErrCorrupt), escrow.TypeCorruptSnapshot, true},
		{"snapshot not found", fmt.Errorf("walletstore: restore: %w: snapshot %q", walletstore.ErrNotFound, "e1"), escrow.TypeCorruptSnapshot, true},
		{"disk full", fmt.Errorf("walletstore: snapshot: %w", &os.PathError{Op: "write", Path: "/w/.e1.keys.1.tmp", Err: syscall.ENOSPC}), escrow.TypeDiskFull, true},
		{"quota exceeded", fmt.Errorf("copy: %w", &os.PathError{Op: "write", Path: "/w/x", Err: syscall.EDQUOT}), escrow.TypeDiskFull, true},
		{"permission denied (EACCES)", fmt.Errorf("walletstore: %w", &os.PathError{Op: "open", Path: "/w/x", Err: syscall.EACCES}), escrow.TypeWalletDirUnwritable, true},
		{"fs.ErrPermission", fmt.Errorf("claim: %w", fs.ErrPermission), escrow.TypeWalletDirUnwritable, true},
		{"read-only file system", fmt.Errorf("walletstore: %w", &os.PathError{Op: "link", Path: "/w/x", Err: syscall.EROFS}), escrow.TypeWalletDirUnwritable, true},
		{"make_multisig unknown error (bad kex message)", &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeUnknown, Message: "Kex message unexpectedly small."}, escrow.TypeInvalidMultisigMessage, true},
		{"exchange_multisig_keys unknown error", fmt.Errorf("step: %w", &rpcclient.RPCError{Method: "exchange_multisig_keys", Code: rpcclient.CodeUnknown, Message: "bad kex"}), escrow.TypeInvalidMultisigMessage, true},
		{"open_wallet unknown error", &rpcclient.RPCError{Method: "open_wallet", Code: rpcclient.CodeUnknown, Message: "Failed to open wallet"}, escrow.TypeWalletRejected, true},
		{"invalid password", &rpcclient.RPCError{Method: "open_wallet", Code: rpcclient.CodeInvalidPassword, Message: "Invalid password"}, escrow.TypeWalletRejected, true},
		{"already multisig", &rpcclient.RPCError{Method: "make_multisig", Code: rpcclient.CodeAlreadyMultisig, Message: "This wallet is already multisig"}, escrow.TypeWalletRejected, true},
		{"multisig disabled", &rpcclient.RPCError{Method: "exchange_multisig_keys", Code: rpcclient.CodeMultisigDisabled, Message: "disabled"}, escrow.TypeWalletRejected, true},
		{"daemon busy", &rpcclient.RPCError{Method: "store", Code: rpcclient.CodeDaemonBusy, Message: "busy"}, escrow.TypeWalletUnavailable, false},
		{"wallet file locked (retryable unknown)", &rpcclient.RPCError{Method: "open_wallet", Code: rpcclient.CodeUnknown, Message: `"/w/a.keys" is opened by another wallet program`}, escrow.TypeWalletUnavailable, false},
		{"transport error", &rpcclient.TransportError{Method: "make_multisig", Err: syscall.ECONNREFUSED}, escrow.TypeWalletUnavailable, false},
		{"transport timeout", fmt.Errorf("call: %w", &rpcclient.TransportError{Method: "create_wallet", Err: context.DeadlineExceeded}), escrow.TypeWalletUnavailable, false},
		{"http 503", &rpcclient.HTTPError{Method: "store", StatusCode: 503}, escrow.TypeWalletUnavailable, false},
		{"context canceled", context.Canceled, passThrough, false},
		{"wrapped context canceled", fmt.Errorf("acquire: %w", context.Canceled), passThrough, false},
		{"transport error of a canceled call", &rpcclient.TransportError{Method: "make_multisig", Err: context.Canceled}, passThrough, false},
		{"unknown error", errors.New("something odd"), passThrough, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.give)
			require.Error(t, got)
			var appErr *temporal.ApplicationError
			if tt.wantType == passThrough {
				require.Same(t, tt.give, got, "returned unchanged")
				require.False(t, errors.As(got, &appErr), "not an ApplicationError: %v", got)
				return
			}
			require.True(t, errors.As(got, &appErr), "want an ApplicationError, got %T %v", got, got)
			assert.Equal(t, tt.wantType, appErr.Type())
			assert.Equal(t, tt.wantNonRetryable, appErr.NonRetryable(), "NonRetryable")
			assert.Equal(t, tt.give.Error(), appErr.Message(), "the message is the cause's")
			assert.ErrorIs(t, got, tt.give, "the cause stays in the chain")
			// The escrow.NonRetryableTypes list the workflow's retry policy uses
			// agrees with the flag.
			assert.Equal(t, tt.wantNonRetryable, contains(escrow.NonRetryableTypes, appErr.Type()), "NonRetryableTypes lists %s", appErr.Type())
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestClassifyNilAndIdempotent(t *testing.T) {
	require.NoError(t, classify(nil))
	once := classify(&escrow.DuplicateEscrowError{EscrowID: "e1", Detail: "x"})
	twice := classify(once)
	require.Same(t, once, twice, "an ApplicationError passes unchanged")
	wrapped := fmt.Errorf("outer: %w", once)
	require.Same(t, wrapped, classify(wrapped), "so does an error wrapping one")
	own := temporal.NewApplicationError("custom", "Custom")
	require.Same(t, own, classify(own))
}

// TestClassifiedErrorsDoNotQuoteMessages feeds checkPeers peer messages
// that carry a secret-looking marker: no error the activities return may
// contain it (kex messages carry key material).
func TestClassifiedErrorsDoNotQuoteMessages(t *testing.T) {
	const marker = "SECRETKEYMATERIAL9f3c"
	msg := func(s string) string { return "MultisigxV2R1" + marker + s }
	tests := []struct {
		name string
		give []string
	}{
		{"one message", []string{msg("a")}},
		{"three messages", []string{msg("a"), msg("b"), msg("c")}},
		{"identical messages", []string{msg("a"), msg("a")}},
		{"no Multisig prefix", []string{msg("a"), "xx" + marker}},
		{"too long", []string{msg("a"), msg(strings.Repeat("z", 1<<20))}},
		{"too short", []string{"Multi", msg(marker)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := checkPeers(StepInput{EscrowID: "e1", Role: "buyer", Round: "MAKING", PeerInfos: tt.give})
			var badMsg *escrow.InvalidMultisigMessageError
			require.ErrorAs(t, raw, &badMsg)
			got := classify(raw)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, got, &appErr)
			assert.Equal(t, escrow.TypeInvalidMultisigMessage, appErr.Type())
			assert.True(t, appErr.NonRetryable())
			for e := got; e != nil; e = errors.Unwrap(e) {
				assert.NotContains(t, e.Error(), marker, "%T quotes a peer message", e)
			}
			assert.NotContains(t, fmt.Sprintf("%+v", got), marker)
		})
	}
}

func TestCheckPeersAccepts(t *testing.T) {
	require.NoError(t, checkPeers(StepInput{PeerInfos: []string{"MultisigxV2R1aaaa", "MultisigxV2R1bbbb"}}))
	require.NoError(t, checkPeers(StepInput{PeerInfos: []string{"Multisig", "Multisig" + strings.Repeat("x", 64<<10-8)}}),
		"8 bytes and 64 KiB are the limits")
	require.Error(t, checkPeers(StepInput{PeerInfos: []string{"Multisig", "Multisig" + strings.Repeat("x", 64<<10-7)}}))
}

func TestValidateEscrowID(t *testing.T) {
	tests := []struct {
		name string
		give string
		want bool
	}{
		{"single letter", "a", true},
		{"mixed", "A-1_b", true},
		{"digit first", "0abc", true},
		{"64 chars", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"parent dir", "../x", false},
		{"slash", "a/b", false},
		{"backslash", `a\b`, false},
		{"space", "a b", false},
		{"dot", "a.b", false},
		{"trailing dot", "a.", false},
		{"non-ASCII", "ñ", false},
		{"leading dash", "-a", false},
		{"leading underscore", "_a", false},
		{"65 chars", strings.Repeat("a", 65), false},
		{"NUL", "a\x00", false},
		{"trailing newline", "a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := escrow.ValidateEscrowID(tt.give)
			if tt.want {
				require.NoError(t, err)
				// A valid id makes valid wallet names.
				require.NoError(t, walletstore.ValidateName(snapshotName(tt.give, "arbiter", "EXCHANGING_2", "a12-0123456789")))
				return
			}
			var idErr *escrow.InvalidEscrowIDError
			require.ErrorAs(t, err, &idErr)
			assert.Equal(t, tt.give, idErr.ID)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", tt.give), "the id is quoted, so control characters show")
		})
	}
}
