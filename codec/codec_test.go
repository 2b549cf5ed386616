package codec

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	keyA = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyB = "k2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
)

type stepInput struct {
	EscrowID  string   `json:"escrowId"`
	PeerInfos []string `json:"peerInfos"`
}

func mustParse(t *testing.T, spec string) *Codec {
	t.Helper()
	c, err := ParseKeys(spec)
	require.NoError(t, err)
	return c
}

func TestRoundTripHidesPlaintext(t *testing.T) {
	c := mustParse(t, keyA)
	dc := c.DataConverter()
	give := stepInput{EscrowID: "e1", PeerInfos: []string{"MultisigxV2R1secretA", "MultisigxV2R1secretB"}}
	p, err := dc.ToPayload(give)
	require.NoError(t, err)
	require.Equal(t, Encoding, string(p.Metadata[converter.MetadataEncoding]))
	require.Equal(t, "k1", string(p.Metadata[MetadataKeyID]))
	require.NotContains(t, string(p.Data), "Multisig")
	require.NotContains(t, string(p.Data), "e1")

	var got stepInput
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, give, got)

	// Two encodings of the same value differ (random nonce).
	p2, err := dc.ToPayload(give)
	require.NoError(t, err)
	require.NotEqual(t, p.Data, p2.Data)
}

func TestRotation(t *testing.T) {
	old := mustParse(t, keyA)
	p, err := old.DataConverter().ToPayload("sealed with k1")
	require.NoError(t, err)

	rotated := mustParse(t, keyA+"\n"+keyB)
	require.Equal(t, "k2", rotated.CurrentKeyID(), "the last key is current")
	var s string
	require.NoError(t, rotated.DataConverter().FromPayload(p, &s), "old keys keep decrypting")
	require.Equal(t, "sealed with k1", s)
	p2, err := rotated.DataConverter().ToPayload("new")
	require.NoError(t, err)
	require.Equal(t, "k2", string(p2.Metadata[MetadataKeyID]))

	// A ring without k2 cannot open it.
	_, err = old.Decode([]*commonpb.Payload{p2})
	require.ErrorIs(t, err, ErrUnknownKey)
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	c := mustParse(t, keyA)
	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"escrowId": "raw-1"})
	require.NoError(t, err)
	out, err := c.Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Same(t, plain, out[0])
}

// TestPlain: a client without a key ring sends and reads plain payloads and
// names the problem when it meets an encrypted one.
func TestPlain(t *testing.T) {
	dc := Plain()
	p, err := dc.ToPayload(stepInput{EscrowID: "raw-1"})
	require.NoError(t, err)
	require.Equal(t, converter.MetadataEncodingJSON, string(p.Metadata[converter.MetadataEncoding]), "sent unencrypted")
	var got stepInput
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, "raw-1", got.EscrowID)

	sealed, err := mustParse(t, keyA).DataConverter().ToPayload(stepInput{EscrowID: "e1"})
	require.NoError(t, err)
	err = dc.FromPayload(sealed, &got)
	require.ErrorIs(t, err, ErrNoKeyRing)
	require.Contains(t, err.Error(), `key "k1"`)
}

func TestTamperingIsDetected(t *testing.T) {
	c := mustParse(t, keyA)
	enc, err := c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	require.NoError(t, err)
	tests := []struct {
		name   string
		mutate func(p *commonpb.Payload)
	}{
		{"flipped bit", func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 }},
		{"truncated", func(p *commonpb.Payload) { p.Data = p.Data[:5] }},
		{"relabelled key", func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("k9") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &commonpb.Payload{Metadata: map[string][]byte{}, Data: append([]byte(nil), enc[0].Data...)}
			for k, v := range enc[0].Metadata {
				p.Metadata[k] = v
			}
			tt.mutate(p)
			_, err := c.Decode([]*commonpb.Payload{p})
			require.Error(t, err)
		})
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{"one", keyA, ""},
		{"comments and commas", "# ring\n" + keyA + " # old\n," + keyB, ""},
		{"empty", "  \n# nothing\n", "no key"},
		{"short key", "k1:0001", "32 bytes"},
		{"not hex", "k1:" + strings.Repeat("zz", 32), "32 bytes"},
		{"no id", ":" + strings.Repeat("00", 32), "id:hex"},
		{"bad id", "../k:" + strings.Repeat("00", 32), "id:hex"},
		{"duplicate", keyA + "," + keyA, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys(tt.give)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "000102030405", "errors never show key material")
		})
	}
	entry, err := NewKey("fresh")
	require.NoError(t, err)
	c := mustParse(t, entry)
	require.Equal(t, "fresh", c.CurrentKeyID())
}

func TestHandler(t *testing.T) {
	c := mustParse(t, keyA)
	enc, err := c.DataConverter().ToPayload("hello")
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{enc}})
	require.NoError(t, err)
	srv := httptest.NewServer(Handler(c, HandlerOptions{Token: "tok", Origin: "http://127.0.0.1:8233"}))
	defer srv.Close()

	post := func(auth string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://127.0.0.1:8233")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	for _, auth := range []string{"", "Bearer wrong", "tok"} {
		resp := post(auth)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "auth %q", auth)
	}
	resp := post("Bearer tok")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "http://127.0.0.1:8233", resp.Header.Get("Access-Control-Allow-Origin"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out struct {
		Payloads []struct {
			Data []byte `json:"data"`
		} `json:"payloads"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.Len(t, out.Payloads, 1)
	require.Equal(t, `"hello"`, string(out.Payloads[0].Data))
}

// TestHandlerRefusesForeignHostAndLargeBodies: with Hosts set, a request
// naming another host (DNS rebinding) is refused before anything is
// decoded, with the right token or not; a body over MaxRequestBody is
// refused with 413.
func TestHandlerRefusesForeignHostAndLargeBodies(t *testing.T) {
	c := mustParse(t, keyA)
	srv := httptest.NewServer(Handler(c, HandlerOptions{Token: "tok", Hosts: []string{"127.0.0.1", "localhost"}}))
	defer srv.Close()
	post := func(host string, body io.Reader) int {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", body)
		require.NoError(t, err)
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	require.Equal(t, http.StatusMisdirectedRequest, post("evil.example:"+port, strings.NewReader(`{"payloads":[]}`)))
	require.Equal(t, http.StatusOK, post("localhost:"+port, strings.NewReader(`{"payloads":[]}`)))
	big := `{"payloads":[{"data":"` + strings.Repeat("A", MaxRequestBody) + `"}]}`
	require.Equal(t, http.StatusRequestEntityTooLarge, post("127.0.0.1:"+port, strings.NewReader(big)))
}
