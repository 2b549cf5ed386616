package trade

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/internal/testenv"
)

// MeasureEnv enables TestMeasureTradeLatency (docs/BENCHMARKS.md).
const MeasureEnv = "ESCROWFLOW_MEASURE_TRADE"

// DecisionDelayEnv is how long TestMeasureTradeLatency waits after FUNDED
// before the release (a Go duration, default 0: at once). A buyer
// releases when the goods arrive, long after FUNDED; 0 is the worst case.
const DecisionDelayEnv = "ESCROWFLOW_MEASURE_DECISION_DELAY"

// TestMeasureTradeLatency is a measurement, not a test: on a quiet chain
// (no background miner) it mines the block that unlocks a deposit and
// times the trade's way to FUNDED, then times a release to the payout's
// submission. It prints the figures docs/BENCHMARKS.md records.
func TestMeasureTradeLatency(t *testing.T) {
	if os.Getenv(MeasureEnv) != "1" {
		t.Skipf("measurement, not a test: %s=1 runs it", MeasureEnv)
	}
	var delay time.Duration
	if v := os.Getenv(DecisionDelayEnv); v != "" {
		var err error
		delay, err = time.ParseDuration(v)
		require.NoError(t, err, DecisionDelayEnv)
	}
	e := newEnv(t)
	cfg := e.workerConfig(t, filepath.Join(t.TempDir(), "w"), 3)
	require.NoError(t, os.MkdirAll(cfg.WalletDir, 0o700))
	e.runWorker(t, cfg)
	ctx := context.Background()
	const rounds = 3
	for i := range rounds {
		id := "lat" + string(rune('a'+i))
		p := newParty(t, e, id)
		in := tradeInput(id, xmr, p.vendor, p.buyer)
		in.ScanInterval, in.DepositTimeout = "1s", "10m" // a check a second (at most 1000 per timeout)
		_, err := e.sc.StartTrade(ctx, in)
		require.NoError(t, err)
		st := e.waitTrade(t, id, 5*time.Minute, escrow.TradeAwaitingDeposit)
		e.faucet.Pay(t, st.MultisigAddress, xmr)
		e.chain.Mine(t, 9) // one block short of unlocking (10)
		testenv.WaitFor(t, 2*time.Minute, "9 confirmations seen", func() bool {
			s, err := e.sc.TradeStatus(ctx, id)
			return err == nil && s.Deposit.Confirmations >= 9
		})
		e.chain.Mine(t, 1)
		mined := time.Now()
		e.waitTrade(t, id, 2*time.Minute, escrow.TradeFunded)
		funded := time.Since(mined)

		time.Sleep(delay)
		decided := time.Now()
		_, err = e.sc.Release(ctx, id)
		require.NoError(t, err)
		testenv.WaitFor(t, 5*time.Minute, "payout submitted", func() bool {
			s, err := e.sc.TradeStatus(ctx, id)
			return err == nil && s.Payout.TxHash != "" && s.State == escrow.TradeReleasing && s.Payout.Confirmations == 0 &&
				payoutSubmitted(e, s.Payout.TxHash)
		})
		submitted := time.Since(decided)
		t.Logf("MEASURE trade %s: last needed block → FUNDED %s; release (%s after FUNDED) → payout in the daemon's pool %s",
			id, funded.Round(10*time.Millisecond), delay, submitted.Round(10*time.Millisecond))
		logActivities(t, e, id, decided)
		e.chain.Mine(t, 1)
		e.finish(t, id, escrow.TradePaidOut)
	}
}

// payoutSubmitted reports whether the daemon knows the payout.
func payoutSubmitted(e *env, hash string) bool {
	r, err := e.chain.Daemon.GetTransactions(context.Background(), []string{hash})
	return err == nil && len(r.Txs) == 1
}

// logActivities logs the trade's activities scheduled after since: how
// long each waited for a worker and ran, from the workflow's history.
func logActivities(t *testing.T, e *env, id string, since time.Time) {
	type act struct {
		name                         string
		scheduled, started, finished time.Time
	}
	acts := map[int64]*act{}
	var order []int64
	it := e.tc.GetWorkflowHistory(context.Background(), escrow.TradeWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		at := ev.GetEventTime().AsTime()
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			acts[ev.GetEventId()] = &act{name: ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), scheduled: at}
			order = append(order, ev.GetEventId())
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			acts[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()].started = at
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			acts[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()].finished = at
		}
	}
	for _, k := range order {
		a := acts[k]
		if a.scheduled.Before(since) || a.finished.IsZero() {
			continue
		}
		t.Logf("MEASURE trade %s: +%s %s (queued %s, ran %s)", id, a.scheduled.Sub(since).Round(10*time.Millisecond), a.name,
			a.started.Sub(a.scheduled).Round(10*time.Millisecond), a.finished.Sub(a.started).Round(10*time.Millisecond))
	}
}
