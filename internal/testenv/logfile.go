package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// FileLogger returns a debug-level logger that writes JSON lines to a file
// in a temp dir of t. When t has failed by its end, the last lines of the
// file are printed with t.Log: the logs of background parts of a test
// (participants, in-process workers) are there when a run goes wrong, and
// quiet when it passes.
func FileLogger(t testing.TB, name string, lines int) *zap.Logger {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(path) // seed-check: not a wallet file (a test log)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.Lock(f), zapcore.DebugLevel))
	t.Cleanup(func() {
		_ = f.Sync()
		if t.Failed() {
			t.Logf("%s log %s (last %d lines):\n%s", name, path, lines, tail(path, lines))
		}
		_ = f.Close()
	})
	return log
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte(err.Error())
	}
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
