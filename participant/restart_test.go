package participant

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestCrashBetweenWalletStepAndRecord runs a real escrow (dev server,
// in-process worker, real wallet-rpc) whose buyer is external and stops
// the participant right after its make_multisig, before the message is
// recorded: the restarted participant restores the wallet from before
// the step, redoes it, and the escrow completes.
func TestCrashBetweenWalletStepAndRecord(t *testing.T) {
	tp := testenv.StartTemporal(t)
	runWorker(t, tp.HostPort, t.TempDir())
	tc := tp.Client(t)
	ctx := context.Background()
	dir := t.TempDir()
	pub, err := PublicKey(dir)
	require.NoError(t, err)
	sc := starter.New(tc)
	_, err = sc.StartSetup(ctx, escrow.SetupInput{EscrowID: "crash-1",
		Custody:      map[escrow.Role]escrow.Custody{escrow.Buyer: escrow.CustodyExternal},
		Participants: map[escrow.Role]escrow.Participant{escrow.Buyer: {PublicKey: pub}}})
	require.NoError(t, err)

	crash := errors.New("crashed after make_multisig")
	cfg := Config{EscrowID: "crash-1", Role: "buyer", Dir: dir, Temporal: tc,
		WalletRPCBinary: testenv.RequireBinary(t, "monero-wallet-rpc"), Logger: zap.NewNop(),
		afterStep: func(round string) error {
			if round == string(escrow.RoundMake) {
				return crash
			}
			return nil
		}}
	_, err = Run(ctx, cfg)
	require.ErrorIs(t, err, crash)
	st, err := loadState(dir, "crash-1", "buyer")
	require.NoError(t, err)
	require.NotContains(t, st.Sent, string(escrow.RoundMake), "the step's message was not recorded")

	cfg.afterStep = nil
	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	out, err := sc.Wait(ctx, "crash-1")
	require.NoError(t, err)
	require.Equal(t, out.MultisigAddress, res.Address)
}

// runWorker runs the worker in this process until the test ends.
func runWorker(t *testing.T, hostPort, walletDir string) {
	t.Helper()
	cfg := worker.DefaultConfig()
	cfg.TemporalAddress = hostPort
	cfg.WalletDir = walletDir
	cfg.PoolSize = 2
	cfg.WalletRPCBinary = testenv.RequireBinary(t, "monero-wallet-rpc")
	cfg.MasterSecret = []byte("participant-test-master-secret-0123456789abcdef")
	// A throwaway testnet escrow; the participant's client reads results
	// without a key ring.
	cfg.Codec.InsecurePlaintextHistory = true
	cfg.MetricsAddress = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, zap.NewNop()) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("worker did not stop within 60 s")
		}
	})
	testenv.WaitFor(t, 90*time.Second, "the worker's /readyz", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("worker stopped: %v", err)
		default:
		}
		return worker.Ready(ctx, cfg.MetricsAddress)
	})
}
