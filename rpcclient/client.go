package rpcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/icholy/digest"
)

// MaxResponseBytes is the largest response body Call reads. A larger body
// fails the call with a *TransportError.
const MaxResponseBytes = 64 << 20

// maxDrainBytes bounds how much of an unread body is discarded before it is
// closed, so that a misbehaving server cannot hold a call open indefinitely.
const maxDrainBytes = 256 << 10

// Config configures a Client. Start from DefaultConfig and override fields.
type Config struct {
	// URL is the wallet RPC base URL, e.g. "http://127.0.0.1:18083". The
	// client appends "/json_rpc" (unless URL already ends with it).
	URL string
	// Username is the --rpc-login user name; empty disables authentication.
	Username string
	// Password is the --rpc-login password, sent with HTTP digest auth.
	Password string
	// Timeout bounds each call when the caller's context has no earlier
	// deadline. Zero or negative means no per-call timeout.
	Timeout time.Duration
	// MethodTimeouts overrides Timeout for the named JSON-RPC methods, e.g.
	// {"get_version": 5 * time.Second}. A zero or negative entry disables the
	// per-call timeout for that method. New copies the map.
	MethodTimeouts map[string]time.Duration
	// HTTPClient is the client used to send requests; nil means a new
	// http.Client using http.DefaultTransport. When Username is set, New
	// copies it and wraps its Transport in a digest-auth transport; the
	// caller's client is never modified.
	HTTPClient *http.Client
}

// DefaultConfig returns the configuration for a wallet RPC on
// http://127.0.0.1:18083 without authentication and with a 2 minute per-call
// timeout.
func DefaultConfig() Config {
	return Config{
		URL:     "http://127.0.0.1:18083",
		Timeout: 2 * time.Minute,
	}
}

// Client calls one monero-wallet-rpc endpoint. It is safe for concurrent use;
// note that monero-wallet-rpc itself serves one request at a time.
type Client struct {
	endpoint       string
	hc             *http.Client
	timeout        time.Duration
	methodTimeouts map[string]time.Duration
	maxBody        int64
	nextID         atomic.Uint64
}

// New returns a Client for cfg. It performs no I/O and never fails; an
// unusable URL surfaces as an error from the first call.
func New(cfg Config) *Client {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if cfg.Username != "" {
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		wrapped := *hc
		wrapped.Transport = &digest.Transport{
			Username:  cfg.Username,
			Password:  cfg.Password,
			Transport: base,
		}
		hc = &wrapped
	}
	endpoint := strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(endpoint, "/json_rpc") {
		endpoint += "/json_rpc"
	}
	return &Client{
		endpoint:       endpoint,
		hc:             hc,
		timeout:        cfg.Timeout,
		methodTimeouts: maps.Clone(cfg.MethodTimeouts),
		maxBody:        MaxResponseBytes,
	}
}

// URL returns the endpoint the client posts to: Config.URL with "/json_rpc"
// appended.
func (c *Client) URL() string { return c.endpoint }

// request is a JSON-RPC 2.0 request. Params is omitted when nil.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  any    `json:"params,omitempty"`
}

// Call invokes method with params and decodes the response "result" into
// result. params is JSON-encoded as the "params" member, and omitted when
// nil. result must be a pointer (as for json.Unmarshal), or nil to discard
// the result; either way the response must carry a non-null "result". Each
// call gets a fresh numeric id from a per-Client counter.
//
// The call is bounded by ctx and by the method's per-call timeout
// (Config.MethodTimeouts, else Config.Timeout), whichever ends first. On
// failure it returns *RPCError, *HTTPError or *TransportError (see the
// package documentation); an error never includes params.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	body, err := json.Marshal(request{
		JSONRPC: "2.0",
		ID:      c.nextID.Add(1),
		Method:  method,
		Params:  params,
	})
	if err != nil {
		return &encodeError{method: method, params: params, err: err}
	}
	if d := c.timeoutFor(method); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("wallet rpc %s: build request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(ctx, method, err)
	}
	defer drainAndClose(resp.Body)

	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Method: method, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return transportError(ctx, method, err)
	}
	if int64(len(data)) > c.maxBody {
		return &TransportError{Method: method, Err: fmt.Errorf("response body exceeds %d bytes", c.maxBody)}
	}
	return DecodeResponse(data, method, result)
}

// encodeError reports params that json.Marshal rejected. Its message names
// only the Go type, since the marshaler's own message may quote a value.
type encodeError struct {
	method string
	params any
	err    error
}

func (e *encodeError) Error() string {
	return fmt.Sprintf("wallet rpc %s: cannot encode params of type %T as JSON", e.method, e.params)
}

func (e *encodeError) Unwrap() error { return e.err }

func (c *Client) timeoutFor(method string) time.Duration {
	if d, ok := c.methodTimeouts[method]; ok {
		return d
	}
	return c.timeout
}

// transportError wraps err, making sure the context's verdict (Canceled or
// DeadlineExceeded) is matchable with errors.Is even when the transport
// reported the failure in its own words.
func transportError(ctx context.Context, method string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return &TransportError{Method: method, Err: err}
}

func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrainBytes))
	_ = body.Close()
}

// response is a JSON-RPC 2.0 response. RawMessage members stay nil when the
// member is absent and hold "null" when it is null.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

type errorObject struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// DecodeResponse decodes a JSON-RPC 2.0 response body for method, the way
// Call does after a 200 OK:
//
//   - a non-null "error" member yields *RPCError with its code and message
//     (an all-zero error object next to a result is ignored);
//   - otherwise a non-null "result" member is unmarshaled into result (a
//     pointer, or nil to skip decoding) and DecodeResponse returns nil;
//   - anything else (body not JSON, "error" not an object, "result" not
//     matching result's type, or neither member present and non-null) yields
//     *TransportError.
//
// The "jsonrpc" and "id" members are not checked. DecodeResponse never
// panics, whatever body holds.
func DecodeResponse(body []byte, method string, result any) error {
	var resp response
	if err := json.Unmarshal(body, &resp); err != nil {
		return &TransportError{Method: method, Err: fmt.Errorf("decode response: %w", err)}
	}
	hasResult := !isNull(resp.Result)
	if !isNull(resp.Error) {
		var eo errorObject
		if err := json.Unmarshal(resp.Error, &eo); err != nil {
			return &TransportError{Method: method, Err: fmt.Errorf("decode error object: %w", err)}
		}
		if !(hasResult && eo.Code == 0 && eo.Message == "") {
			return &RPCError{Method: method, Code: eo.Code, Message: eo.Message}
		}
	}
	if !hasResult {
		return &TransportError{Method: method, Err: errors.New("response has neither result nor error")}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return &TransportError{Method: method, Err: fmt.Errorf("decode result: %w", err)}
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
