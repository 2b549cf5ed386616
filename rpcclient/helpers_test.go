package rpcclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golden is one testdata/<method>.json file: the exact request the client
// must send (with "id" normalized to 0) and the canned wallet response (whose
// "id" the fake server replaces with the request's id).
type golden struct {
	Request  json.RawMessage `json:"request"`
	Response json.RawMessage `json:"response"`
}

func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(data, &g))
	require.NotEmpty(t, g.Request, "%s: no request", name)
	require.NotEmpty(t, g.Response, "%s: no response", name)
	return g
}

// recorder remembers what a fake server received.
type recorder struct {
	mu  sync.Mutex
	ids []uint64
}

func (r *recorder) add(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
}

func (r *recorder) IDs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.ids...)
}

// goldenHandler serves g: it checks that each request is a POST to /json_rpc
// with a JSON content type and a body equal to g.Request once "id" (which
// must be a positive integer) is set to 0. A mismatch fails the test and is
// answered with 400, so the client call fails too.
func goldenHandler(t *testing.T, g golden, rec *recorder) http.Handler {
	want, err := decodeExact(g.Request)
	require.NoError(t, err)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if !assert.NoError(t, err) ||
			!assert.Equal(t, http.MethodPost, r.Method) ||
			!assert.Equal(t, "/json_rpc", r.URL.Path) ||
			!assert.Equal(t, "application/json", r.Header.Get("Content-Type")) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		decoded, err := decodeExact(body)
		got, isObject := decoded.(map[string]any)
		if !assert.NoError(t, err, "request body: %s", body) || !assert.True(t, isObject, "request body: %s", body) {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		rawID, _ := got["id"].(json.Number)
		id, err := strconv.ParseUint(rawID.String(), 10, 64)
		if !assert.NoError(t, err, "id must be a non-negative JSON integer: %s", body) ||
			!assert.NotZero(t, id, "id must be positive: %s", body) {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		if rec != nil {
			rec.add(id)
		}
		got["id"] = json.Number("0")
		if !assert.Equal(t, want, any(got), "request body differs from golden: %s", body) {
			http.Error(w, "request differs from golden", http.StatusBadRequest)
			return
		}
		decoded, err = decodeExact(g.Response)
		resp, isObject := decoded.(map[string]any)
		if !assert.NoError(t, err) || !assert.True(t, isObject) {
			http.Error(w, "bad golden", http.StatusInternalServerError)
			return
		}
		resp["id"] = rawID
		out, err := json.Marshal(resp)
		if !assert.NoError(t, err) {
			http.Error(w, "bad golden", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

// decodeExact unmarshals JSON into any, keeping numbers as json.Number so
// that large amounts compare exactly.
func decodeExact(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// newServer starts h on a loopback httptest server closed at test end.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client for srv with the given per-call timeout.
func newClient(srv *httptest.Server, timeout time.Duration) *Client {
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	cfg.Timeout = timeout
	return New(cfg)
}

// rawHandler answers every request with status and body, after draining the
// request.
func rawHandler(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// stallHandler holds each request until the client goes away (or 10s pass).
func stallHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
}

// goldenField decodes the value at request or response path ("params",
// "multisig_info"; "result", "address") of testdata/<method>.json.
func goldenField[T any](t *testing.T, method, part, key string) T {
	t.Helper()
	g := loadGolden(t, method)
	raw := g.Request
	if part == "result" {
		raw = g.Response
	}
	var msg map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &msg))
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(msg[part], &fields), "%s: %s", method, part)
	var v T
	require.NoError(t, json.Unmarshal(fields[key], &v), "%s: %s.%s", method, part, key)
	return v
}

// recordedVersion is the version testdata/get_version.json answers.
func recordedVersion(t *testing.T) Version {
	t.Helper()
	return Version{Version: goldenField[uint32](t, MethodGetVersion, "result", "version"),
		Release: goldenField[bool](t, MethodGetVersion, "result", "release")}
}

// recordedRound is the MultisigRound testdata/<method>.json answers.
func recordedRound(t *testing.T, method string) MultisigRound {
	t.Helper()
	return MultisigRound{Address: goldenField[string](t, method, "result", "address"),
		MultisigInfo: goldenField[string](t, method, "result", "multisig_info")}
}
