package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
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
	EnvCodecOrigin   = "ESCROWFLOW_CODEC_ORIGIN"
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
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
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
		EnvCodecToken: &c.Token, EnvCodecOrigin: &c.Origin,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	return nil
}

func (c *CodecConfig) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.KeysFile, "codec-keys-file", c.KeysFile, "key ring that encrypts workflow payloads (id:hex lines, last is current) (env "+EnvCodecKeysFile+", or the ring in "+EnvCodecKeys+")")
	fs.StringVar(&c.Address, "codec-address", c.Address, "host:port serving the codec (POST /encode, /decode) for the CLI and Web UI; empty disables (env "+EnvCodecAddress+")")
	fs.BoolVar(&c.InsecurePlaintextHistory, "insecure-plaintext-history", c.InsecurePlaintextHistory, "start without a codec key ring: round messages (view-key shares) stay readable in workflow history; refused on mainnet (env "+EnvInsecurePlaintextHistory+")")
	fs.StringVar(&c.Origin, "codec-origin", c.Origin, "browser origin allowed to call the codec endpoint (env "+EnvCodecOrigin+"; the bearer token only in "+EnvCodecToken+")")
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
	l, err := net.Listen("tcp", c.Address)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: codec.Handler(cd, c.Token, c.Origin), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("codec endpoint failed", zap.Error(err))
		}
	}()
	log.Info("codec endpoint listening", zap.String("address", l.Addr().String()), zap.Bool("token_required", c.Token != ""))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
