package rpcclient

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	digestRealm = "monero-rpc"
	digestNonce = "b3f1a6c0e2d94c7a9e5f1d2c3b4a5968"
)

// digestAuth is an RFC 2617 (qop="auth", MD5) server side, written
// independently of the client library: it challenges requests that lack a
// valid Authorization header and passes the others to next.
type digestAuth struct {
	user, pass string
	next       http.Handler

	challenged atomic.Int32
	accepted   atomic.Int32
}

func (d *digestAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.valid(r) {
		d.challenged.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		// monero-wallet-rpc offers MD5-sess first, then MD5; the client must
		// pick the MD5 challenge this server verifies.
		w.Header().Add("WWW-Authenticate",
			`Digest qop="auth",algorithm=MD5-sess,realm="`+digestRealm+`",nonce="`+digestNonce+`",stale=false`)
		w.Header().Add("WWW-Authenticate",
			`Digest realm="`+digestRealm+`", nonce="`+digestNonce+`", qop="auth", algorithm=MD5`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d.accepted.Add(1)
	d.next.ServeHTTP(w, r)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (d *digestAuth) valid(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(h, "Digest ")
	if !ok {
		return false
	}
	p := parseAuthParams(rest)
	if p["username"] != d.user || p["realm"] != digestRealm || p["nonce"] != digestNonce ||
		p["uri"] != r.URL.RequestURI() || p["qop"] != "auth" || p["nc"] == "" || p["cnonce"] == "" {
		return false
	}
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return false
	}
	ha1 := md5hex(d.user + ":" + digestRealm + ":" + d.pass)
	ha2 := md5hex(r.Method + ":" + p["uri"])
	want := md5hex(strings.Join([]string{ha1, digestNonce, p["nc"], p["cnonce"], "auth", ha2}, ":"))
	return subtle.ConstantTimeCompare([]byte(want), []byte(p["response"])) == 1
}

// parseAuthParams parses `k1="v1", k2=v2` (quoted values may escape with \).
func parseAuthParams(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var val strings.Builder
		if strings.HasPrefix(s, `"`) {
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[min(i+1, len(s)):]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		out[key] = val.String()
	}
}

func TestParseAuthParams(t *testing.T) {
	got := parseAuthParams(`username="escrow", realm="monero-rpc", nc=00000001, qop=auth, opaque="a\"b"`)
	require.Equal(t, map[string]string{
		"username": "escrow", "realm": "monero-rpc", "nc": "00000001", "qop": "auth", "opaque": `a"b`,
	}, got)
}

func TestDigestAuth(t *testing.T) {
	newAuthServer := func(t *testing.T) (*digestAuth, string) {
		auth := &digestAuth{
			user: "escrow",
			pass: "rpc-login-pw",
			next: goldenHandler(t, loadGolden(t, MethodGetVersion), nil),
		}
		return auth, newServer(t, auth).URL
	}
	client := func(url, user, pass string) *Client {
		cfg := DefaultConfig()
		cfg.URL = url
		cfg.Username = user
		cfg.Password = pass
		cfg.Timeout = 5 * time.Second
		return New(cfg)
	}

	t.Run("right password", func(t *testing.T) {
		auth, url := newAuthServer(t)
		c := client(url, "escrow", "rpc-login-pw")

		v, err := c.GetVersion(context.Background())
		require.NoError(t, err)
		require.Equal(t, recordedVersion(t), v)
		// A second call reuses the cached challenge.
		_, err = c.GetVersion(context.Background())
		require.NoError(t, err)
		require.EqualValues(t, 2, auth.accepted.Load())
		require.EqualValues(t, 1, auth.challenged.Load())
	})

	t.Run("wrong password", func(t *testing.T) {
		auth, url := newAuthServer(t)
		c := client(url, "escrow", "not-the-pw")

		_, err := c.GetVersion(context.Background())
		var httpErr *HTTPError
		require.ErrorAs(t, err, &httpErr)
		require.Equal(t, http.StatusUnauthorized, httpErr.StatusCode)
		require.False(t, IsRetryable(err))
		require.NotContains(t, err.Error(), "not-the-pw")
		require.Zero(t, auth.accepted.Load())
	})

	t.Run("wrong user", func(t *testing.T) {
		_, url := newAuthServer(t)
		_, err := client(url, "mallory", "rpc-login-pw").GetVersion(context.Background())
		var httpErr *HTTPError
		require.ErrorAs(t, err, &httpErr)
		require.Equal(t, http.StatusUnauthorized, httpErr.StatusCode)
	})

	t.Run("no credentials", func(t *testing.T) {
		_, url := newAuthServer(t)
		_, err := client(url, "", "").GetVersion(context.Background())
		var httpErr *HTTPError
		require.ErrorAs(t, err, &httpErr)
		require.Equal(t, http.StatusUnauthorized, httpErr.StatusCode)
	})
}

func TestDigestDoesNotModifyCallerClient(t *testing.T) {
	hc := &http.Client{Timeout: time.Minute}
	cfg := DefaultConfig()
	cfg.Username = "escrow"
	cfg.Password = "pw"
	cfg.HTTPClient = hc
	c := New(cfg)
	require.Nil(t, hc.Transport)
	require.NotSame(t, hc, c.hc)
	require.Equal(t, time.Minute, c.hc.Timeout)
}
