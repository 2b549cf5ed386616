// Package rpcclient is a typed JSON-RPC 2.0 client for monero-wallet-rpc
// v0.18, which serves every wallet method at POST /json_rpc.
//
// A Client is built from a Config (start from DefaultConfig) and is safe for
// concurrent use. Client.Call is the generic entry point; the typed methods
// (GetVersion, OpenWallet, MakeMultisig, Transfer, ...) are thin wrappers
// that fix the method name and the exact monero JSON field names.
//
// The package does no logging, and no error it returns ever contains request
// parameters: wallet passwords and multisig key-exchange messages stay out of
// error strings, so callers may log errors as they are.
//
// # Errors
//
// Every failed Call returns one of three error types, or a plain error for a
// local programming mistake (parameters that cannot be JSON-encoded, a URL
// that cannot form a request); plain errors are never retryable.
//
//   - *RPCError: the wallet answered with a JSON-RPC "error" object. The
//     request reached the wallet and was refused; Code is one of the Code*
//     constants (wallet_rpc_server_error_codes.h).
//   - *HTTPError: the wallet answered with a status other than 200, e.g. 401
//     for a wrong --rpc-login, or 500.
//   - *TransportError: no usable answer: dial failure, connection reset or
//     EOF, the per-call timeout, context cancellation, a body that is not a
//     valid JSON-RPC response (garbage, too large, or neither "result" nor
//     "error"). Whether the wallet executed the call is unknown.
//
// IsRetryable folds these into one decision, and IsCode tests a wallet error
// code. A caller typically handles them like this:
//
//	addr, err := c.GetAddress(ctx)
//	var rpcErr *rpcclient.RPCError
//	var httpErr *rpcclient.HTTPError
//	var trErr *rpcclient.TransportError
//	switch {
//	case err == nil:
//		use(addr)
//	case rpcclient.IsCode(err, rpcclient.CodeNotOpen):
//		// no wallet open: open one, then call again
//	case errors.As(err, &rpcErr):
//		// the wallet refused; rpcErr.Code and rpcErr.Message say why
//	case errors.As(err, &httpErr) && httpErr.StatusCode == http.StatusUnauthorized:
//		// wrong --rpc-login credentials: fix the configuration, do not retry
//	case errors.As(err, &trErr):
//		// wallet unreachable or answer lost: for a non-idempotent call
//		// (transfer, submit_multisig) check the wallet state before retrying
//	}
//	if rpcclient.IsRetryable(err) {
//		// back off and call again, with a fresh context
//	}
package rpcclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error codes sent by monero-wallet-rpc v0.18 in the JSON-RPC "error" object
// (src/wallet/wallet_rpc_server_error_codes.h), plus the JSON-RPC protocol
// codes its HTTP server (epee) uses. Compare with IsCode.
const (
	CodeUnknown                 = -1  // WALLET_RPC_ERROR_CODE_UNKNOWN_ERROR: any unclassified wallet exception
	CodeWrongAddress            = -2  // WALLET_RPC_ERROR_CODE_WRONG_ADDRESS
	CodeDaemonBusy              = -3  // WALLET_RPC_ERROR_CODE_DAEMON_IS_BUSY
	CodeGenericTransferError    = -4  // WALLET_RPC_ERROR_CODE_GENERIC_TRANSFER_ERROR
	CodeWrongPaymentID          = -5  // WALLET_RPC_ERROR_CODE_WRONG_PAYMENT_ID
	CodeTransferType            = -6  // WALLET_RPC_ERROR_CODE_TRANSFER_TYPE
	CodeDenied                  = -7  // WALLET_RPC_ERROR_CODE_DENIED: e.g. restricted RPC, watch-only
	CodeWrongTxID               = -8  // WALLET_RPC_ERROR_CODE_WRONG_TXID
	CodeWrongSignature          = -9  // WALLET_RPC_ERROR_CODE_WRONG_SIGNATURE
	CodeWrongKeyImage           = -10 // WALLET_RPC_ERROR_CODE_WRONG_KEY_IMAGE
	CodeWrongURI                = -11 // WALLET_RPC_ERROR_CODE_WRONG_URI
	CodeWrongIndex              = -12 // WALLET_RPC_ERROR_CODE_WRONG_INDEX
	CodeNotOpen                 = -13 // WALLET_RPC_ERROR_CODE_NOT_OPEN: "No wallet file"
	CodeAccountIndexOutOfBounds = -14 // WALLET_RPC_ERROR_CODE_ACCOUNT_INDEX_OUT_OF_BOUNDS
	CodeAddressIndexOutOfBounds = -15 // WALLET_RPC_ERROR_CODE_ADDRESS_INDEX_OUT_OF_BOUNDS
	CodeTxNotPossible           = -16 // WALLET_RPC_ERROR_CODE_TX_NOT_POSSIBLE
	CodeNotEnoughMoney          = -17 // WALLET_RPC_ERROR_CODE_NOT_ENOUGH_MONEY
	CodeTxTooLarge              = -18 // WALLET_RPC_ERROR_CODE_TX_TOO_LARGE
	CodeNotEnoughOutsToMix      = -19 // WALLET_RPC_ERROR_CODE_NOT_ENOUGH_OUTS_TO_MIX
	CodeZeroDestination         = -20 // WALLET_RPC_ERROR_CODE_ZERO_DESTINATION
	CodeAlreadyExists           = -21 // WALLET_RPC_ERROR_CODE_WALLET_ALREADY_EXISTS
	CodeInvalidPassword         = -22 // WALLET_RPC_ERROR_CODE_INVALID_PASSWORD
	CodeNoWalletDir             = -23 // WALLET_RPC_ERROR_CODE_NO_WALLET_DIR: --wallet-dir not set
	CodeNoTxKey                 = -24 // WALLET_RPC_ERROR_CODE_NO_TXKEY
	CodeWrongKey                = -25 // WALLET_RPC_ERROR_CODE_WRONG_KEY
	CodeBadHex                  = -26 // WALLET_RPC_ERROR_CODE_BAD_HEX
	CodeBadTxMetadata           = -27 // WALLET_RPC_ERROR_CODE_BAD_TX_METADATA
	CodeAlreadyMultisig         = -28 // WALLET_RPC_ERROR_CODE_ALREADY_MULTISIG
	CodeWatchOnly               = -29 // WALLET_RPC_ERROR_CODE_WATCH_ONLY
	CodeBadMultisigInfo         = -30 // WALLET_RPC_ERROR_CODE_BAD_MULTISIG_INFO
	CodeNotMultisig             = -31 // WALLET_RPC_ERROR_CODE_NOT_MULTISIG
	CodeWrongLR                 = -32 // WALLET_RPC_ERROR_CODE_WRONG_LR
	CodeThresholdNotReached     = -33 // WALLET_RPC_ERROR_CODE_THRESHOLD_NOT_REACHED
	CodeBadMultisigTxData       = -34 // WALLET_RPC_ERROR_CODE_BAD_MULTISIG_TX_DATA
	CodeMultisigSignature       = -35 // WALLET_RPC_ERROR_CODE_MULTISIG_SIGNATURE
	CodeMultisigSubmission      = -36 // WALLET_RPC_ERROR_CODE_MULTISIG_SUBMISSION
	CodeNotEnoughUnlockedMoney  = -37 // WALLET_RPC_ERROR_CODE_NOT_ENOUGH_UNLOCKED_MONEY
	CodeNoDaemonConnection      = -38 // WALLET_RPC_ERROR_CODE_NO_DAEMON_CONNECTION
	CodeBadUnsignedTxData       = -39 // WALLET_RPC_ERROR_CODE_BAD_UNSIGNED_TX_DATA
	CodeBadSignedTxData         = -40 // WALLET_RPC_ERROR_CODE_BAD_SIGNED_TX_DATA
	CodeSignedSubmission        = -41 // WALLET_RPC_ERROR_CODE_SIGNED_SUBMISSION
	CodeSignUnsigned            = -42 // WALLET_RPC_ERROR_CODE_SIGN_UNSIGNED
	CodeNonDeterministic        = -43 // WALLET_RPC_ERROR_CODE_NON_DETERMINISTIC
	CodeInvalidLogLevel         = -44 // WALLET_RPC_ERROR_CODE_INVALID_LOG_LEVEL
	CodeAttributeNotFound       = -45 // WALLET_RPC_ERROR_CODE_ATTRIBUTE_NOT_FOUND
	CodeZeroAmount              = -46 // WALLET_RPC_ERROR_CODE_ZERO_AMOUNT
	CodeInvalidSignatureType    = -47 // WALLET_RPC_ERROR_CODE_INVALID_SIGNATURE_TYPE
	CodeMultisigDisabled        = -48 // WALLET_RPC_ERROR_CODE_DISABLED: multisig used without enable_multisig_experimental

	CodeInvalidRequest = -32600 // JSON-RPC: the request object was not valid
	CodeMethodNotFound = -32601 // JSON-RPC: no such method (typo, or method absent from this wallet version)
	CodeParseError     = -32700 // JSON-RPC: the request body was not valid JSON
)

// RPCError is a JSON-RPC "error" object returned by the wallet: the request
// reached monero-wallet-rpc, which refused it. Method is the JSON-RPC method
// called; Code and Message are copied verbatim from the response.
type RPCError struct {
	Method  string
	Code    int
	Message string
}

// Error returns "wallet rpc <method>: <message> (code <n>)".
func (e *RPCError) Error() string {
	return "wallet rpc " + e.Method + ": " + e.Message + " (code " + strconv.Itoa(e.Code) + ")"
}

// HTTPError reports an HTTP response whose status was not 200 OK, for example
// 401 when the --rpc-login credentials are wrong, or 500. Its body is
// discarded. Status is the status line text, e.g. "401 Unauthorized".
type HTTPError struct {
	Method     string
	StatusCode int
	Status     string
}

// Error returns "wallet rpc <method>: http <status>".
func (e *HTTPError) Error() string {
	status := e.Status
	if status == "" {
		status = strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	}
	return "wallet rpc " + e.Method + ": http " + strings.TrimSpace(status)
}

// TransportError reports that no valid JSON-RPC answer was obtained for
// Method: the connection could not be made or broke (refused, reset, EOF),
// the per-call timeout or the caller's context ended the call, or the body of
// a 200 response was not a valid JSON-RPC response (malformed JSON, larger
// than the read limit, a "result" that does not fit the result type, or
// neither "result" nor "error"). The wallet may or may not have executed the
// call. Err is the underlying cause; context.Canceled and
// context.DeadlineExceeded are matchable with errors.Is.
type TransportError struct {
	Method string
	Err    error
}

// Error returns "wallet rpc <method>: transport: <cause>".
func (e *TransportError) Error() string {
	return fmt.Sprintf("wallet rpc %s: transport: %v", e.Method, e.Err)
}

// Unwrap returns the underlying cause, Err.
func (e *TransportError) Unwrap() error { return e.Err }

// IsCode reports whether err is, or wraps, an *RPCError whose Code is code.
func IsCode(err error, code int) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && rpcErr.Code == code
}

// IsRetryable reports whether a call that failed with err may succeed if
// made again unchanged, after a back-off and with a context that has not
// ended. The rules:
//
//   - nil, or anything matching context.Canceled: false (the caller gave up).
//   - *TransportError: true, including the per-call timeout
//     (context.DeadlineExceeded). For non-idempotent methods the caller must
//     still decide whether a lost answer makes a retry safe.
//   - *HTTPError: true for 5xx except 501 Not Implemented and 505 HTTP
//     Version Not Supported; false for every 4xx, including 401 and 403
//     (wrong credentials do not fix themselves).
//   - *RPCError: true for CodeDaemonBusy and CodeNoDaemonConnection, and for
//     CodeUnknown when the message says the wallet file is locked or already
//     opened by another wallet program (an old wallet-rpc process still
//     holding it while it exits). False for every other code, including
//     CodeUnknown key-exchange errors ("Kex message unexpectedly small", ...).
//   - any other error: false.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		switch rpcErr.Code {
		case CodeDaemonBusy, CodeNoDaemonConnection:
			return true
		case CodeUnknown:
			return isLockMessage(rpcErr.Message)
		default:
			return false
		}
	}
	var httpErr *HTTPError
	if errors.As(err, &httpErr) {
		switch {
		case httpErr.StatusCode == http.StatusNotImplemented,
			httpErr.StatusCode == http.StatusHTTPVersionNotSupported:
			return false
		case httpErr.StatusCode >= 500 && httpErr.StatusCode <= 599:
			return true
		default:
			return false
		}
	}
	var trErr *TransportError
	return errors.As(err, &trErr)
}

// lockMessages are lower-case fragments of the CodeUnknown messages wallet2
// produces when a wallet or keys file is still held by another process, e.g.
// `internal error: "/w/a.keys" is opened by another wallet program`.
var lockMessages = []string{
	"opened by another wallet program",
	"failed to lock",
	"already opened",
	"file is locked",
	"file is in use",
}

func isLockMessage(msg string) bool {
	msg = strings.ToLower(msg)
	for _, frag := range lockMessages {
		if strings.Contains(msg, frag) {
			return true
		}
	}
	return false
}
