package temporalconn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

// writePair writes a self-signed certificate and its key into dir.
func writePair(t *testing.T, dir string) (certFile, keyFile string, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
	certFile, keyFile = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile, keyPEM
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	cert, key, keyPEM := writePair(t, dir)
	apiKeyFile := filepath.Join(dir, "api.key")
	require.NoError(t, os.WriteFile(apiKeyFile, []byte("sekrit-key\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))

	tests := []struct {
		name      string
		give      Security
		wantTLS   bool
		wantCerts int
		wantCA    bool
		wantCreds bool
		wantErr   string
	}{
		{name: "plaintext", give: Security{}},
		{name: "mutual TLS", give: Security{CertFile: cert, KeyFile: key, CAFile: cert, ServerName: "s"}, wantTLS: true, wantCerts: 1, wantCA: true},
		{name: "key from env", give: Security{CertFile: cert, KeyData: keyPEM}, wantTLS: true, wantCerts: 1},
		{name: "server TLS only", give: Security{CAFile: cert}, wantTLS: true, wantCA: true},
		{name: "api key file", give: Security{APIKeyFile: apiKeyFile}, wantCreds: true},
		{name: "api key env", give: Security{APIKey: "k"}, wantCreds: true},
		{name: "cert without key", give: Security{CertFile: cert}, wantErr: "without a key"},
		{name: "key without cert", give: Security{KeyFile: key}, wantErr: "without a certificate"},
		{name: "missing CA", give: Security{CAFile: filepath.Join(dir, "nope")}, wantErr: "CA"},
		{name: "CA not PEM", give: Security{CAFile: apiKeyFile}, wantErr: "no PEM"},
		{name: "key not matching", give: Security{CertFile: cert, KeyFile: apiKeyFile}, wantErr: "its key"},
		{name: "empty api key file", give: Security{APIKeyFile: empty}, wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts client.Options
			err := tt.give.Apply(&opts)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrTLSConfig))
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "PRIVATE KEY")
				assert.NotContains(t, err.Error(), "sekrit")
				return
			}
			require.NoError(t, err)
			tc := opts.ConnectionOptions.TLS
			assert.Equal(t, tt.wantTLS, tc != nil)
			if tc != nil {
				assert.Len(t, tc.Certificates, tt.wantCerts)
				assert.Equal(t, tt.wantCA, tc.RootCAs != nil)
				assert.Equal(t, tt.give.ServerName, tc.ServerName)
			}
			assert.Equal(t, tt.wantCreds, opts.Credentials != nil)
		})
	}
}

func TestFromEnvAndFlags(t *testing.T) {
	env := map[string]string{EnvTLSCert: "c", EnvTLSKey: "k", EnvTLSCA: "ca", EnvTLSServerName: "sn", EnvAPIKeyFile: "af", EnvAPIKey: "secret-in-env", EnvTLSKeyData: "KEYPEM"}
	s := SecurityFromEnv(func(k string) string { return env[k] })
	assert.Equal(t, Security{CertFile: "c", KeyFile: "k", KeyData: []byte("KEYPEM"), CAFile: "ca", ServerName: "sn", APIKeyFile: "af", APIKey: "secret-in-env"}, s)

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	s.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--temporal-tls-cert", "c2", "--temporal-tls-key", "k2", "--temporal-tls-ca", "ca2", "--temporal-tls-server-name", "sn2", "--temporal-api-key", "af2"}))
	assert.Equal(t, "c2", s.CertFile)
	assert.Equal(t, "k2", s.KeyFile)
	assert.Equal(t, "ca2", s.CAFile)
	assert.Equal(t, "sn2", s.ServerName)
	assert.Equal(t, "af2", s.APIKeyFile)

	str := s.String()
	assert.Contains(t, str, "cert=c2")
	assert.NotContains(t, str, "secret-in-env")
	assert.NotContains(t, str, "KEYPEM")
	assert.Equal(t, "plaintext", Security{}.String())
	assert.True(t, strings.Contains(Security{APIKey: "x"}.String(), "api-key=(from env)"))
}
