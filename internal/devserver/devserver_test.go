package devserver

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestArgs(t *testing.T) {
	got := strings.Join(Args(Options{Port: 7233, UIPort: 8233, DBFile: "/d/t.db", UICodecEndpoint: "http://127.0.0.1:8234"}), " ")
	assert.Equal(t, "server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 --db-filename /d/t.db"+
		" --search-attribute EscrowState=Keyword --ui-codec-endpoint http://127.0.0.1:8234"+
		" --dynamic-config-value history.transferProcessorMaxPollRPS=1000"+
		" --dynamic-config-value system.enableActivityEagerExecution=true --log-level warn", got)

	headless := strings.Join(Args(Options{Port: 1, UIPort: -1, DBFile: "x"}), " ")
	assert.Contains(t, headless, "--headless")
	assert.NotContains(t, headless, "--ui-port")
	assert.NotContains(t, headless, "--ui-codec-endpoint")
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := FreePort()
		assert.NoError(t, err)
		assert.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
}
