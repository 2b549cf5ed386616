package rpcclient

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeResponse checks that DecodeResponse never panics, that every
// error it returns is an *RPCError or a *TransportError, and that a nil
// error means a JSON object result was decoded.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"version":65563,"release":true}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"0","error":{"code":-1,"message":"Kex message unexpectedly small."}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":0,"message":""},"result":{}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":null,"error":null}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":[1,2,3]}`))
	f.Add([]byte(`{"result":{"n_outputs":18446744073709551616}}`))
	f.Add([]byte(`{"error":{"code":1e400}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte("\xff\xfe{"))

	f.Fuzz(func(t *testing.T, body []byte) {
		var m map[string]any
		err := DecodeResponse(body, "fuzz", &m)
		if err == nil {
			if m == nil {
				t.Fatalf("nil error but no result decoded from %q", body)
			}
			// The decoded result must be exactly the body's "result" member.
			var resp struct {
				Result map[string]any `json:"result"`
			}
			if jerr := json.Unmarshal(body, &resp); jerr != nil || resp.Result == nil {
				t.Fatalf("nil error for a body without an object result: %q", body)
			}
		} else {
			var rpcErr *RPCError
			var trErr *TransportError
			if !errors.As(err, &rpcErr) && !errors.As(err, &trErr) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if trErr != nil && trErr.Unwrap() == nil {
				t.Fatalf("TransportError without cause for %q", body)
			}
			if m != nil && rpcErr != nil {
				t.Fatalf("RPCError but result decoded for %q", body)
			}
		}

		// Typed and nil targets must not panic either.
		var v Version
		_ = DecodeResponse(body, "fuzz", &v)
		_ = DecodeResponse(body, "fuzz", nil)
	})
}
