package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/codec"
)

// Environment variables of the payload codec.
const (
	EnvCodecKeysFile = "ESCROWFLOW_CODEC_KEYS_FILE"
	EnvCodecKeys     = "ESCROWFLOW_CODEC_KEYS"
	EnvCodecAddress  = "ESCROWFLOW_CODEC_ADDRESS"
	EnvCodecToken    = "ESCROWFLOW_CODEC_TOKEN"
	// EnvCodecTokenFile names a file holding the bearer token.
	EnvCodecTokenFile = "ESCROWFLOW_CODEC_TOKEN_FILE"
	// EnvCodecHosts lists the Host header values the endpoint serves
	// (comma separated).
	EnvCodecHosts  = "ESCROWFLOW_CODEC_HOSTS"
	EnvCodecOrigin = "ESCROWFLOW_CODEC_ORIGIN"
	// EnvInsecurePlaintextHistory ("true") lets the worker start without a
	// key ring; refused on mainnet.
	EnvInsecurePlaintextHistory = "ESCROWFLOW_INSECURE_PLAINTEXT_HISTORY"
)

// CodecConfig configures the payload codec that encrypts workflow history.
type CodecConfig struct {
	// KeysFile holds the key ring ("id:hex" lines, the last is current);
	// Keys is the ring itself (env only). Neither set: the worker refuses
	// to start unless InsecurePlaintextHistory.
	KeysFile string
	Keys     string
	// InsecurePlaintextHistory lets the worker start without a key ring:
	// round messages (each role's blinded view-key share) are then stored
	// in plaintext in workflow history. Refused on mainnet.
	InsecurePlaintextHistory bool
	// Address serves the codec over HTTP (POST /encode, /decode) for
	// `temporal workflow show --codec-endpoint` and the Web UI; empty: off.
	Address string
	// Token, when set, is required as "Authorization: Bearer <token>";
	// TokenFile holds it. One is required when Address is not loopback.
	Token     string
	TokenFile string
	// Hosts are the Host header values the endpoint serves (host or
	// host:port); empty: 127.0.0.1, localhost and ::1 when Address is
	// loopback, Address's host when it names one, any for a wildcard
	// address (then the token guards it).
	Hosts []string
	// Origin is the browser origin (the Web UI) allowed to call Address.
	Origin string
}

func codecFromEnv(getenv func(string) string, c *CodecConfig) error {
	if v := getenv(EnvInsecurePlaintextHistory); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s: %w", EnvInsecurePlaintextHistory, err)
		}
		c.InsecurePlaintextHistory = b
	}
	for name, dst := range map[string]*string{
		EnvCodecKeysFile: &c.KeysFile, EnvCodecKeys: &c.Keys, EnvCodecAddress: &c.Address,
		EnvCodecToken: &c.Token, EnvCodecOrigin: &c.Origin, EnvCodecTokenFile: &c.TokenFile,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv(EnvCodecHosts); v != "" {
		c.Hosts = strings.Split(v, ",")
	}
	return nil
}

// check reports a codec endpoint that would decrypt for anyone on the
// network: one listening beyond loopback needs a token.
func (c *CodecConfig) check() error {
	if c.Address == "" || c.Token != "" || c.TokenFile != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return fmt.Errorf("codec address %q: want host:port", c.Address)
	}
	if !isLoopback(host) {
		return fmt.Errorf("codec address %s listens beyond loopback: set %s or %s (--codec-token-file)", c.Address, EnvCodecToken, EnvCodecTokenFile)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hosts is Hosts or its default for Address.
func (c *CodecConfig) hosts() []string {
	if len(c.Hosts) > 0 {
		return c.Hosts
	}
	host, _, _ := net.SplitHostPort(c.Address)
	switch ip := net.ParseIP(host); {
	case isLoopback(host):
		return []string{"127.0.0.1", "localhost", "::1"}
	case host == "" || (ip != nil && ip.IsUnspecified()):
		return nil
	default:
		return []string{host}
	}
}

// token is Token, or the content of TokenFile.
func (c *CodecConfig) token() (string, error) {
	if c.Token != "" || c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("codec token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("codec token file %s is empty", c.TokenFile)
	}
	return t, nil
}

func (c *CodecConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.KeysFile, "codec-keys-file", c.KeysFile, "key ring that encrypts workflow payloads (id:hex lines, last is current) (env "+EnvCodecKeysFile+", or the ring in "+EnvCodecKeys+")")
	fs.StringVar(&c.Address, "codec-address", c.Address, "host:port serving the codec (POST /encode, /decode) for the CLI and Web UI; empty disables (env "+EnvCodecAddress+")")
	fs.BoolVar(&c.InsecurePlaintextHistory, "insecure-plaintext-history", c.InsecurePlaintextHistory, "start without a codec key ring: round messages (view-key shares) stay readable in workflow history; refused on mainnet (env "+EnvInsecurePlaintextHistory+")")
	fs.StringVar(&c.Origin, "codec-origin", c.Origin, "browser origin allowed to call the codec endpoint (env "+EnvCodecOrigin+")")
	fs.StringVar(&c.TokenFile, "codec-token-file", c.TokenFile, "file holding the bearer token the codec endpoint requires; required beyond loopback (env "+EnvCodecTokenFile+", or the token in "+EnvCodecToken+")")
	fs.Func("codec-host", "Host header value the codec endpoint serves, repeatable; default: the loopback names for a loopback address (env "+EnvCodecHosts+", comma separated)", func(v string) error {
		c.Hosts = append(c.Hosts, v)
		return nil
	})
}

// ErrKeyRingRequired is returned by Run when no codec key ring is configured and
// InsecurePlaintextHistory is not set.
var ErrKeyRingRequired = errors.New("no codec key ring: set " + EnvCodecKeysFile + " (--codec-keys-file) or " + EnvCodecKeys +
	", or accept round messages in plaintext workflow history with --insecure-plaintext-history (not on mainnet)")

// load returns the configured codec, or nil when no key ring is set and
// plaintext history was asked for; without either it returns ErrKeyRingRequired.
func (c *CodecConfig) load() (*codec.Codec, error) {
	switch {
	case c.Keys != "":
		return codec.ParseKeys(c.Keys)
	case c.KeysFile != "":
		return codec.LoadKeys(c.KeysFile)
	case c.InsecurePlaintextHistory:
		return nil, nil
	}
	return nil, ErrKeyRingRequired
}

// serveCodec serves cd on addr until the returned stop is called.
func serveCodec(cd *codec.Codec, c CodecConfig, log *zap.Logger) (stop func(), err error) {
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", c.Address)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           codec.Handler(cd, codec.HandlerOptions{Token: token, Origin: c.Origin, Hosts: c.hosts()}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("codec endpoint failed", zap.Error(err))
		}
	}()
	log.Info("codec endpoint listening", zap.String("address", l.Addr().String()), zap.Bool("token_required", token != ""),
		zap.Strings("hosts", c.hosts()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
