// Package temporalconn holds how every escrowflow program connects to a
// Temporal cluster that is not a loopback dev server: mutual TLS (client
// certificate and key, the CA that signed the server's certificate, the
// server name to check) and an API key (Temporal Cloud). The worker,
// escrowctl and the bench register the same flags and read the same
// environment variables; a backend using package starter fills a Security
// itself and calls Apply on its client.Options:
//
//	sec := temporalconn.SecurityFromEnv(os.Getenv)
//	opts := client.Options{HostPort: "temporal.example:7233", Namespace: "escrows"}
//	if err := sec.Apply(&opts); err != nil { ... }
//	sc, err := starter.Dial(opts)
//
// Keys are read from files (or, for containers that pass secrets in the
// environment, from EnvTLSKeyData and EnvAPIKey); they are never logged:
// String names the files and says whether a key is set, nothing more.
package temporalconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
)

// Environment variables read by SecurityFromEnv; flags override them. The
// names are those of the Temporal CLI, so one environment serves both.
const (
	// EnvTLSCert names the PEM file of the client certificate (chain).
	EnvTLSCert = "TEMPORAL_TLS_CERT"
	// EnvTLSKey names the PEM file of the client certificate's key.
	EnvTLSKey = "TEMPORAL_TLS_KEY"
	// EnvTLSKeyData holds the PEM key itself, for when EnvTLSKey is unset.
	EnvTLSKeyData = "TEMPORAL_TLS_KEY_DATA"
	// EnvTLSCA names the PEM file of the CA(s) to verify the server with;
	// unset: the system's roots.
	EnvTLSCA = "TEMPORAL_TLS_CA"
	// EnvTLSServerName is the name the server's certificate must carry;
	// unset: the host of the address.
	EnvTLSServerName = "TEMPORAL_TLS_SERVER_NAME"
	// EnvAPIKeyFile names a file holding the API key.
	EnvAPIKeyFile = "TEMPORAL_API_KEY_FILE"
	// EnvAPIKey holds the API key itself, for when EnvAPIKeyFile is unset.
	EnvAPIKey = "TEMPORAL_API_KEY"
)

// ErrTLSConfig is wrapped by every error about an unusable TLS or API-key
// setting (a missing file, a key without certificate, a bad PEM).
var ErrTLSConfig = errors.New("temporal TLS settings")

// Security is the TLS and API-key part of a Temporal connection. The zero
// value is a plaintext connection without credentials.
type Security struct {
	// CertFile and KeyFile are the client certificate and key (PEM) for
	// mutual TLS; both or neither. KeyData is the key itself instead of
	// KeyFile.
	CertFile string
	KeyFile  string
	KeyData  []byte
	// CAFile verifies the server's certificate; empty: system roots.
	CAFile string
	// ServerName is checked against the server's certificate; empty: the
	// host of the address.
	ServerName string
	// APIKeyFile holds the API key; APIKey is the key itself instead.
	APIKeyFile string
	APIKey     string
}

// SecurityFromEnv returns the Security the environment describes.
func SecurityFromEnv(getenv func(string) string) Security {
	s := Security{
		CertFile:   getenv(EnvTLSCert),
		KeyFile:    getenv(EnvTLSKey),
		CAFile:     getenv(EnvTLSCA),
		ServerName: getenv(EnvTLSServerName),
		APIKeyFile: getenv(EnvAPIKeyFile),
		APIKey:     getenv(EnvAPIKey),
	}
	if v := getenv(EnvTLSKeyData); v != "" {
		s.KeyData = []byte(v)
	}
	return s
}

// RegisterFlags binds --temporal-tls-cert, --temporal-tls-key,
// --temporal-tls-ca, --temporal-tls-server-name and --temporal-api-key (a
// file) to s; their defaults are s's current values.
func (s *Security) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.CertFile, "temporal-tls-cert", s.CertFile, "client certificate (PEM file) for mutual TLS to Temporal (env "+EnvTLSCert+")")
	fs.StringVar(&s.KeyFile, "temporal-tls-key", s.KeyFile, "the client certificate's key (PEM file) (env "+EnvTLSKey+", or the key itself in "+EnvTLSKeyData+")")
	fs.StringVar(&s.CAFile, "temporal-tls-ca", s.CAFile, "CA certificate(s) (PEM file) that signed the Temporal server's certificate; empty: system roots (env "+EnvTLSCA+")")
	fs.StringVar(&s.ServerName, "temporal-tls-server-name", s.ServerName, "name the Temporal server's certificate must carry; empty: the address's host (env "+EnvTLSServerName+")")
	fs.StringVar(&s.APIKeyFile, "temporal-api-key", s.APIKeyFile, "file holding a Temporal API key, e.g. for Temporal Cloud (env "+EnvAPIKeyFile+", or the key itself in "+EnvAPIKey+")")
}

// TLSEnabled reports whether the connection uses TLS.
func (s Security) TLSEnabled() bool {
	return s.CertFile != "" || s.KeyFile != "" || len(s.KeyData) > 0 || s.CAFile != "" || s.ServerName != ""
}

// String describes s for logs: the files and whether an API key is set,
// never a key.
func (s Security) String() string {
	if !s.TLSEnabled() && s.APIKeyFile == "" && s.APIKey == "" {
		return "plaintext"
	}
	var parts []string
	if s.TLSEnabled() {
		parts = append(parts, "tls")
		if s.CertFile != "" {
			parts = append(parts, "cert="+s.CertFile)
		}
		if s.CAFile != "" {
			parts = append(parts, "ca="+s.CAFile)
		}
		if s.ServerName != "" {
			parts = append(parts, "server-name="+s.ServerName)
		}
	}
	switch {
	case s.APIKeyFile != "":
		parts = append(parts, "api-key-file="+s.APIKeyFile)
	case s.APIKey != "":
		parts = append(parts, "api-key=(from env)")
	}
	return strings.Join(parts, " ")
}

// TLSConfig returns the client's tls.Config, or nil when TLS is off.
func (s Security) TLSConfig() (*tls.Config, error) {
	if !s.TLSEnabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	hasKey := s.KeyFile != "" || len(s.KeyData) > 0
	switch {
	case s.CertFile != "" && hasKey:
		certPEM, err := os.ReadFile(s.CertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", ErrTLSConfig, err)
		}
		keyPEM := s.KeyData
		if s.KeyFile != "" {
			if keyPEM, err = os.ReadFile(s.KeyFile); err != nil {
				return nil, fmt.Errorf("%w: client key: %w", ErrTLSConfig, err)
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The error names no key material.
			return nil, fmt.Errorf("%w: client certificate %s and its key: %w", ErrTLSConfig, s.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case s.CertFile != "":
		return nil, fmt.Errorf("%w: client certificate %s without a key (--temporal-tls-key or %s)", ErrTLSConfig, s.CertFile, EnvTLSKey)
	case hasKey:
		return nil, fmt.Errorf("%w: a client key without a certificate (--temporal-tls-cert or %s)", ErrTLSConfig, EnvTLSCert)
	}
	if s.CAFile != "" {
		caPEM, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA: %w", ErrTLSConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%w: CA %s holds no PEM certificate", ErrTLSConfig, s.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// apiKey returns the API key, or "" when none is set.
func (s Security) apiKey() (string, error) {
	if s.APIKeyFile == "" {
		return strings.TrimSpace(s.APIKey), nil
	}
	b, err := os.ReadFile(s.APIKeyFile)
	if err != nil {
		return "", fmt.Errorf("%w: API key: %w", ErrTLSConfig, err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("%w: API key file %s is empty", ErrTLSConfig, s.APIKeyFile)
	}
	return key, nil
}

// Apply sets opts' TLS configuration and credentials from s. With an API key
// and no TLS setting, the SDK turns TLS on with the system's roots.
func (s Security) Apply(opts *client.Options) error {
	cfg, err := s.TLSConfig()
	if err != nil {
		return err
	}
	if cfg != nil {
		opts.ConnectionOptions.TLS = cfg
	}
	key, err := s.apiKey()
	if err != nil {
		return err
	}
	if key != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	return nil
}
