package codec

import (
	"crypto/subtle"
	"net"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// MaxRequestBody bounds a request body the codec endpoint reads; a larger
// one is refused with 413. Temporal's own payload limit is 2 MiB.
const MaxRequestBody = 4 << 20

// HandlerOptions protect the codec endpoint.
type HandlerOptions struct {
	// Token, when not empty, must come with every request as
	// "Authorization: Bearer <token>" (the CLI's --codec-auth).
	Token string
	// Origin, when set, is the one browser origin (the Web UI) allowed to
	// call the endpoint cross-origin.
	Origin string
	// Hosts, when set, are the Host header values (host or host:port)
	// served; any other is refused with 421, so that a page whose DNS name
	// was rebound to the endpoint's address cannot use it.
	Hosts []string
}

// Handler serves the codec over HTTP for `temporal workflow show
// --codec-endpoint …` and the Web UI's codec server setting: POST /encode
// and POST /decode with protojson Payloads, bodies up to MaxRequestBody.
//
// Decoding hands out plaintext, so only authorised users may call it: see
// HandlerOptions.
func Handler(c *Codec, opts HandlerOptions) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(opts.Hosts) > 0 && !hostAllowed(r.Host, opts.Hosts) {
			http.Error(w, "misdirected request", http.StatusMisdirectedRequest)
			return
		}
		if opts.Origin != "" && r.Header.Get("Origin") == opts.Origin {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", opts.Origin)
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if opts.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(opts.Token)) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if r.ContentLength > MaxRequestBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		inner.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the Host header host (with or without its
// port) is one of allowed.
func hostAllowed(host string, allowed []string) bool {
	if slices.Contains(allowed, host) {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return slices.Contains(allowed, h)
	}
	return false
}
