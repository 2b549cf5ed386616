package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("a\nb\nc\nd\n"), 0o600))
	require.Equal(t, "c\nd", string(tail(path, 2)))
	require.Equal(t, "a\nb\nc\nd", string(tail(path, 10)))
	require.Equal(t, "d", string(tail(path, 1)))
}
