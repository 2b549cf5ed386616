package rpcclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsRetryable(t *testing.T) {
	rpc := func(code int, msg string) error { return &RPCError{Method: "m", Code: code, Message: msg} }
	httpErr := func(code int) error {
		return &HTTPError{Method: "m", StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code))}
	}
	tr := func(err error) error { return &TransportError{Method: "m", Err: err} }

	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "nil", give: nil, want: false},
		{name: "plain error", give: errors.New("boom"), want: false},
		{name: "bare context canceled", give: context.Canceled, want: false},
		{name: "bare deadline exceeded", give: context.DeadlineExceeded, want: false},

		{name: "transport EOF", give: tr(io.ErrUnexpectedEOF), want: true},
		{name: "transport reset", give: tr(syscall.ECONNRESET), want: true},
		{name: "transport refused", give: tr(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), want: true},
		{name: "transport per-call timeout", give: tr(context.DeadlineExceeded), want: true},
		{name: "transport canceled", give: tr(context.Canceled), want: false},
		{name: "transport canceled wrapped", give: tr(fmt.Errorf("%w: read: %w", context.Canceled, io.EOF)), want: false},
		{name: "wrapped transport", give: fmt.Errorf("activity: %w", tr(io.EOF)), want: true},

		{name: "http 500", give: httpErr(500), want: true},
		{name: "http 502", give: httpErr(502), want: true},
		{name: "http 503", give: httpErr(503), want: true},
		{name: "http 504", give: httpErr(504), want: true},
		{name: "http 501", give: httpErr(501), want: false},
		{name: "http 505", give: httpErr(505), want: false},
		{name: "http 401", give: httpErr(401), want: false},
		{name: "http 403", give: httpErr(403), want: false},
		{name: "http 404", give: httpErr(404), want: false},
		{name: "http 400", give: httpErr(400), want: false},
		{name: "http 302", give: httpErr(302), want: false},

		{name: "daemon busy", give: rpc(CodeDaemonBusy, "daemon is busy"), want: true},
		{name: "no daemon connection", give: rpc(CodeNoDaemonConnection, "no connection to daemon"), want: true},
		{name: "wrapped no daemon connection", give: fmt.Errorf("step: %w", rpc(CodeNoDaemonConnection, "x")), want: true},
		{
			name: "keys file opened by another program",
			give: rpc(CodeUnknown, `internal error: "/wallets/escrow-7f3a-arbiter.keys" is opened by another wallet program`),
			want: true,
		},
		{name: "failed to lock", give: rpc(CodeUnknown, "Failed to lock wallet file"), want: true},
		{name: "already opened", give: rpc(CodeUnknown, "Wallet file already opened by another process"), want: true},
		{name: "kex message small", give: rpc(CodeUnknown, "Kex message unexpectedly small."), want: false},
		{name: "kex round", give: rpc(CodeUnknown, "Messages don't have the expected kex round number."), want: false},
		{name: "failed to open wallet", give: rpc(CodeUnknown, "Failed to open wallet"), want: false},
		{name: "other unknown", give: rpc(CodeUnknown, "std::bad_alloc"), want: false},
		{name: "denied", give: rpc(CodeDenied, "Command unavailable in restricted mode."), want: false},
		{name: "already exists", give: rpc(CodeAlreadyExists, "Cannot create wallet. Already exists."), want: false},
		{name: "invalid password", give: rpc(CodeInvalidPassword, "Invalid password."), want: false},
		{name: "already multisig", give: rpc(CodeAlreadyMultisig, "This wallet is already multisig"), want: false},
		{name: "not multisig", give: rpc(CodeNotMultisig, "This wallet is not multisig"), want: false},
		{name: "threshold not reached", give: rpc(CodeThresholdNotReached, "Not enough signers signed this transaction."), want: false},
		{name: "multisig disabled", give: rpc(CodeMultisigDisabled, "This wallet is multisig, and multisig is disabled."), want: false},
		{name: "not open", give: rpc(CodeNotOpen, "No wallet file"), want: false},
		{name: "not enough money", give: rpc(CodeNotEnoughMoney, "not enough money"), want: false},
		{name: "method not found", give: rpc(CodeMethodNotFound, "Method not found"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, IsRetryable(tt.give))
		})
	}
}

func TestIsCode(t *testing.T) {
	err := fmt.Errorf("open: %w", &RPCError{Method: MethodOpenWallet, Code: CodeInvalidPassword, Message: "Invalid password."})
	require.True(t, IsCode(err, CodeInvalidPassword))
	require.False(t, IsCode(err, CodeUnknown))
	require.False(t, IsCode(nil, CodeUnknown))
	require.False(t, IsCode(&TransportError{Method: "m", Err: io.EOF}, CodeUnknown))
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{
			give: &RPCError{Method: "create_wallet", Code: -21, Message: "Cannot create wallet. Already exists."},
			want: "wallet rpc create_wallet: Cannot create wallet. Already exists. (code -21)",
		},
		{
			give: &HTTPError{Method: "get_version", StatusCode: 401, Status: "401 Unauthorized"},
			want: "wallet rpc get_version: http 401 Unauthorized",
		},
		{
			give: &HTTPError{Method: "get_version", StatusCode: 500},
			want: "wallet rpc get_version: http 500 Internal Server Error",
		},
		{
			give: &TransportError{Method: "store", Err: io.EOF},
			want: "wallet rpc store: transport: EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			require.Equal(t, tt.want, tt.give.Error())
		})
	}
	require.ErrorIs(t, &TransportError{Method: "m", Err: io.EOF}, io.EOF)
}

func TestRPCErrorResponse(t *testing.T) {
	srv := newServer(t, rawHandler(http.StatusOK,
		`{"id":1,"jsonrpc":"2.0","error":{"code":-21,"message":"Cannot create wallet. Already exists."}}`))
	c := newClient(srv, 5*time.Second)

	err := c.CreateWallet(context.Background(), "escrow-7f3a-arbiter", testPassword)
	var rpcErr *RPCError
	require.ErrorAs(t, err, &rpcErr)
	require.Equal(t, &RPCError{Method: MethodCreateWallet, Code: CodeAlreadyExists, Message: "Cannot create wallet. Already exists."}, rpcErr)
	require.True(t, IsCode(err, CodeAlreadyExists))
	require.False(t, IsRetryable(err))
	require.NotContains(t, err.Error(), testPassword)
}

func TestRPCErrorLockedWalletIsRetryable(t *testing.T) {
	srv := newServer(t, rawHandler(http.StatusOK,
		`{"id":1,"jsonrpc":"2.0","error":{"code":-1,"message":"internal error: \"/w/escrow.keys\" is opened by another wallet program"}}`))
	c := newClient(srv, 5*time.Second)

	err := c.OpenWallet(context.Background(), "escrow", testPassword)
	require.True(t, IsCode(err, CodeUnknown))
	require.True(t, IsRetryable(err))
}

func TestHTTPStatusErrors(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{status: http.StatusInternalServerError, retryable: true},
		{status: http.StatusServiceUnavailable, retryable: true},
		{status: http.StatusUnauthorized, retryable: false},
		{status: http.StatusForbidden, retryable: false},
		{status: http.StatusNotFound, retryable: false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			// A JSON-RPC looking body must not be decoded on a non-200.
			srv := newServer(t, rawHandler(tt.status, `{"jsonrpc":"2.0","id":1,"result":{"version":1}}`))
			c := newClient(srv, 5*time.Second)

			_, err := c.GetVersion(context.Background())
			var httpErr *HTTPError
			require.ErrorAs(t, err, &httpErr)
			require.Equal(t, MethodGetVersion, httpErr.Method)
			require.Equal(t, tt.status, httpErr.StatusCode)
			require.Equal(t, fmt.Sprintf("%d %s", tt.status, http.StatusText(tt.status)), httpErr.Status)
			require.Equal(t, tt.retryable, IsRetryable(err))
		})
	}
}

func TestInvalidBodyIsTransportError(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "garbage", give: "<html>502 bad gateway</html>"},
		{name: "empty body", give: ""},
		{name: "truncated", give: `{"jsonrpc":"2.0","id":1,"result":{"version":`},
		{name: "neither result nor error", give: `{"jsonrpc":"2.0","id":1}`},
		{name: "null result", give: `{"jsonrpc":"2.0","id":1,"result":null}`},
		{name: "null body", give: `null`},
		{name: "array body", give: `[]`},
		{name: "error not an object", give: `{"jsonrpc":"2.0","id":1,"error":"boom"}`},
		{name: "result of wrong type", give: `{"jsonrpc":"2.0","id":1,"result":{"version":"v0.18"}}`},
		{name: "result not an object", give: `{"jsonrpc":"2.0","id":1,"result":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, rawHandler(http.StatusOK, tt.give))
			c := newClient(srv, 5*time.Second)

			v, err := c.GetVersion(context.Background())
			var trErr *TransportError
			require.ErrorAs(t, err, &trErr)
			require.Equal(t, MethodGetVersion, trErr.Method)
			require.True(t, IsRetryable(err))
			require.Equal(t, Version{}, v, "result must be zero on error")
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"result":{"version":65563,"release":true}}`
	srv := newServer(t, rawHandler(http.StatusOK, body))
	c := newClient(srv, 5*time.Second)

	c.maxBody = int64(len(body))
	_, err := c.GetVersion(context.Background())
	require.NoError(t, err, "a body of exactly the limit is accepted")

	c.maxBody = int64(len(body)) - 1
	_, err = c.GetVersion(context.Background())
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.Contains(t, err.Error(), "exceeds")
}

func TestServerClosesConnection(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	}))
	c := newClient(srv, 5*time.Second)

	err := c.Store(context.Background())
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.Equal(t, MethodStore, trErr.Method)
	require.True(t, IsRetryable(err))
}

func TestServerClosesMidBody(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"jsonrpc\":\"2.0\",")
		_ = buf.Flush()
		_ = conn.Close()
	}))
	c := newClient(srv, 5*time.Second)

	_, err := c.GetVersion(context.Background())
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.True(t, IsRetryable(err))
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cfg := DefaultConfig()
	cfg.URL = "http://" + addr
	_, err = New(cfg).GetVersion(context.Background())
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.True(t, IsRetryable(err))
}

func TestPerCallTimeout(t *testing.T) {
	srv := newServer(t, stallHandler())
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	cfg.Timeout = time.Minute
	cfg.MethodTimeouts = map[string]time.Duration{MethodGetVersion: 100 * time.Millisecond}
	c := New(cfg)

	start := time.Now()
	_, err := c.GetVersion(context.Background())
	elapsed := time.Since(start)

	require.Less(t, elapsed, 2*time.Second)
	require.GreaterOrEqual(t, elapsed, 100*time.Millisecond)
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, IsRetryable(err))
}

func TestConfigTimeoutAppliesWithoutOverride(t *testing.T) {
	srv := newServer(t, stallHandler())
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	cfg.Timeout = 100 * time.Millisecond
	cfg.MethodTimeouts = map[string]time.Duration{MethodTransfer: time.Hour}
	c := New(cfg)

	start := time.Now()
	err := c.Store(context.Background())
	require.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, IsRetryable(err))
}

func TestCallerDeadlineEarlierThanTimeout(t *testing.T) {
	srv := newServer(t, stallHandler())
	c := newClient(srv, time.Minute)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetVersion(ctx)
	require.Less(t, time.Since(start), 2*time.Second)
	var trErr *TransportError
	require.ErrorAs(t, err, &trErr)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestContextCancelIsNotRetryable(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		stallHandler().ServeHTTP(w, r)
	}))
	c := newClient(srv, time.Minute)

	t.Run("canceled in flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.GetVersion(ctx)
		require.Less(t, time.Since(start), 2*time.Second)
		var trErr *TransportError
		require.ErrorAs(t, err, &trErr)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, IsRetryable(err))
		require.EqualValues(t, 1, hits.Load())
	})
	t.Run("canceled before call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.GetVersion(ctx)
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, IsRetryable(err))
		require.EqualValues(t, 1, hits.Load(), "no request is sent")
	})
}

// TestErrorsNeverContainParams makes each failure path fail while sending a
// password and key-exchange messages, and checks that none leaks.
func TestErrorsNeverContainParams(t *testing.T) {
	const (
		secretPassword = "hunter2-do-not-log"
		secretKex      = "MultisigxV2R1c2VjcmV0LWtleC1tZXNzYWdl"
	)
	handlers := map[string]http.Handler{
		"rpc error":   rawHandler(http.StatusOK, `{"id":1,"jsonrpc":"2.0","error":{"code":-1,"message":"Kex message unexpectedly small."}}`),
		"http 500":    rawHandler(http.StatusInternalServerError, "internal"),
		"garbage":     rawHandler(http.StatusOK, "garbage"),
		"no result":   rawHandler(http.StatusOK, `{"id":1,"jsonrpc":"2.0"}`),
		"wrong types": rawHandler(http.StatusOK, `{"id":1,"jsonrpc":"2.0","result":["not","an","object"]}`),
		"timeout":     stallHandler(),
	}
	for name, h := range handlers {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, h)
			c := newClient(srv, 100*time.Millisecond)
			ctx := context.Background()

			errs := []error{
				c.OpenWallet(ctx, "escrow", secretPassword),
				c.CreateWallet(ctx, "escrow", secretPassword),
				c.ChangeWalletPassword(ctx, secretPassword, secretPassword+"2"),
			}
			_, err := c.MakeMultisig(ctx, []string{secretKex}, 2, secretPassword)
			errs = append(errs, err)
			_, err = c.ExchangeMultisigKeys(ctx, []string{secretKex}, secretPassword)
			errs = append(errs, err)
			_, err = c.ImportMultisigInfo(ctx, []string{secretKex})
			errs = append(errs, err)

			for _, err := range errs {
				require.Error(t, err)
				msg := err.Error()
				require.True(t, strings.HasPrefix(msg, "wallet rpc "), msg)
				require.NotContains(t, msg, secretPassword)
				require.NotContains(t, msg, secretKex)
			}
		})
	}
}
