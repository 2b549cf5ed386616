package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/escrowflow/escrowflow/codec"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

var dataField = regexp.MustCompile(`"(?:data|encoding|encryption-key-id)":\s*"([A-Za-z0-9+/=]*)"`)

// TestEncryptedHistory runs one escrow with the payload codec on: the raw
// history holds no multisig message and no password in plaintext, the
// codec endpoint lets `temporal workflow show` decode it, and a plain
// `temporal workflow start --input` still works against the worker.
func TestEncryptedHistory(t *testing.T) {
	keys, err := codec.NewKey("e2e")
	require.NoError(t, err)
	cd, err := codec.ParseKeys(keys)
	require.NoError(t, err)
	codecAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	const token = "e2e-codec-token"

	tp := testenv.StartTemporal(t)
	walletDir := t.TempDir()
	inProcessWorker(t, tp.HostPort, walletDir, 3, func(c *worker.Config) {
		c.Codec = worker.CodecConfig{Keys: keys, Address: codecAddr, Token: token}
	})
	ctx := context.Background()
	tc, err := client.Dial(client.Options{HostPort: tp.HostPort, DataConverter: cd.DataConverter()})
	require.NoError(t, err)
	defer tc.Close()
	sc := starter.New(tc)

	// Started with plain JSON (as an operator would), decoded by the worker.
	out, err := exec.Command(testenv.TemporalCLI(t), "workflow", "start", "--address", tp.HostPort,
		"--task-queue", escrow.TaskQueue, "--type", escrow.WorkflowName, "--workflow-id", "escrow-enc-1",
		"--input", `{"escrowId":"enc-1"}`).CombinedOutput()
	require.NoError(t, err, "%s", out)
	res, err := sc.Wait(ctx, "enc-1")
	require.NoError(t, err)
	verifyWallets(t, walletDir, res)

	// The raw history, as the server stores it.
	var raw strings.Builder
	it := tp.Client(t).GetWorkflowHistory(ctx, "escrow-enc-1", "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		b, err := protojson.Marshal(ev)
		require.NoError(t, err)
		raw.Write(b)
		events++
	}
	require.Greater(t, events, 50)
	plain := withDecodedData(t, raw.String())
	require.True(t, strings.Contains(plain, codec.Encoding), "payloads are encrypted")
	// (error type names such as InvalidMultisigMessage are fine; messages start "MultisigxV2")
	if i := strings.Index(plain, "MultisigxV"); i >= 0 {
		t.Fatalf("a multisig message in plaintext in history: …%q…", plain[max(0, i-300):min(len(plain), i+60)])
	}
	require.False(t, strings.Contains(plain, res.MultisigAddress), "results are encrypted too")
	for _, role := range escrow.Roles {
		require.False(t, strings.Contains(plain, password(t, "enc-1", role)), "a password in history")
	}
	require.False(t, strings.Contains(plain, masterSecret))

	// Without the codec, the CLI shows ciphertext; with the endpoint and
	// the token, it shows the messages.
	show := func(args ...string) string {
		out, err := exec.Command(testenv.TemporalCLI(t), append([]string{"workflow", "show", "--address", tp.HostPort,
			"--workflow-id", "escrow-enc-1", "--output", "json"}, args...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	require.False(t, strings.Contains(withDecodedData(t, show()), "MultisigxV"), "decoded without the codec")
	decodedShow := withDecodedData(t, show("--codec-endpoint", "http://"+codecAddr, "--codec-auth", "Bearer "+token))
	require.True(t, strings.Contains(decodedShow, "MultisigxV"),
		"the codec endpoint decodes for an authorised user")
	out, err = exec.Command(testenv.TemporalCLI(t), "workflow", "show", "--address", tp.HostPort,
		"--workflow-id", "escrow-enc-1", "--codec-endpoint", "http://"+codecAddr, "--codec-auth", "Bearer wrong").CombinedOutput()
	require.False(t, strings.Contains(withDecodedData(t, string(out)), "MultisigxV"), "a wrong token decodes nothing (err %v)", err)
}

// withDecodedData returns s followed by the decoded bytes of every base64
// "data" (and metadata) field in it: protojson shows payload bytes base64.
func withDecodedData(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(s)
	for _, m := range dataField.FindAllStringSubmatch(s, -1) {
		d, err := base64.StdEncoding.DecodeString(m[1])
		require.NoError(t, err)
		b.WriteByte('\n')
		b.Write(d)
	}
	return b.String()
}
