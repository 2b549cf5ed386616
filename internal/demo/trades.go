// Package demo holds the logic of `make demo`. Its setup part (setup.go,
// escrowctl's `demo`) sets up several escrows at once and shows their
// timeline. Its money part (escrowctl's `demo-trades`) sets up three
// EscrowTrades at once on a regtest chain, funds them from a faucet, then
// releases one, refunds one and resolves a dispute of the third 70/30,
// each payout checked in the recipients' own wallets; scripts/demo.sh
// starts the daemon and the wallet-rpc it uses.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/starter"
)

// Trades is what the demo uses of *starter.Client.
type Trades interface {
	StartTrade(ctx context.Context, in escrow.TradeInput) (starter.Run, error)
	AnnounceDeposit(ctx context.Context, escrowID string, ann escrow.DepositAnnouncement) (escrow.TradeStatus, error)
	Release(ctx context.Context, escrowID string) (escrow.TradeStatus, error)
	Refund(ctx context.Context, escrowID string) (escrow.TradeStatus, error)
	Dispute(ctx context.Context, escrowID, by, reason string) (escrow.TradeStatus, error)
	Resolve(ctx context.Context, escrowID string, vendorShareBps int) (escrow.TradeStatus, error)
	TradeStatus(ctx context.Context, escrowID string) (escrow.TradeStatus, error)
	WaitTrade(ctx context.Context, escrowID string) (*escrow.TradeStatus, error)
}

// The demo's trade terms.
const (
	// DefaultAmount is each trade's price: 1 XMR.
	DefaultAmount = 1_000_000_000_000
	// Confirmations the deposits and payouts need (the contract's default).
	Confirmations = escrow.DefaultConfirmations
	// ResolveVendorShareBps is the arbiter's split of the disputed trade.
	ResolveVendorShareBps = 7000
	// scanInterval is short so that a trade notices mined blocks within
	// seconds (it also bounds the trade's follow interval).
	scanInterval   = "2s"
	depositTimeout = "30m"
	// mineEvery is the least time between two bursts of mining, so that
	// the trades see one burst before the demo decides on the next.
	mineEvery = 3 * time.Second
)

// Config is one run of the demo.
type Config struct {
	Trades Trades
	// DaemonAddress is the regtest monerod's RPC host:port; WalletRPC the
	// URL of a monero-wallet-rpc on that daemon (no login) that holds the
	// faucet and the parties' wallets.
	DaemonAddress string
	WalletRPC     string
	// IDs are the escrow ids of the release, refund and dispute trades.
	IDs          [3]string
	AmountAtomic uint64
	// Poll is the status poll interval.
	Poll time.Duration
	// Progress receives timestamped progress lines.
	Progress io.Writer
	Now      func() time.Time
	// External, when set, makes the run one trade whose buyer and vendor
	// keep their own wallets (see External), released; IDs are unused.
	External *External
}

// Report is the demo's outcome, one entry per trade.
type Report struct {
	Trades []TradeReport `json:"trades"`
	// MeasuredMs is the demo's own clock from its start to the last
	// recipient's wallet read.
	MeasuredMs int64 `json:"measuredMs"`
}

// TradeReport is one trade's outcome and what the recipients' own
// wallets received from its payout.
type TradeReport struct {
	EscrowID        string            `json:"escrowId"`
	Decision        string            `json:"decision"`
	State           escrow.TradeState `json:"state"`
	MultisigAddress string            `json:"multisigAddress"`
	DepositTxID     string            `json:"depositTxid"`
	PayoutTxHash    string            `json:"payoutTxHash"`
	FeeAtomic       uint64            `json:"feeAtomic"`
	Recipients      []Recipient       `json:"recipients"`
	Error           string            `json:"error,omitempty"`
}

// Recipient is what one party's own wallet received from the payout,
// against what the trade's payout says it pays that party.
type Recipient struct {
	Role           escrow.Role `json:"role"`
	Address        string      `json:"address"`
	ExpectedAtomic uint64      `json:"expectedAtomic"`
	ReceivedAtomic uint64      `json:"receivedAtomic"`
}

// OK reports whether the trade was paid out and every recipient got
// exactly what the payout says.
func (t TradeReport) OK() bool {
	if t.Error != "" || t.State != escrow.TradePaidOut {
		return false
	}
	for _, r := range t.Recipients {
		if r.ReceivedAtomic != r.ExpectedAtomic {
			return false
		}
	}
	return true
}

// ErrMismatch is returned (wrapped) when a trade failed or a recipient's
// wallet did not receive what the payout says.
var ErrMismatch = errors.New("a trade did not pay out as decided")

// decisions are the three trades' decisions, in the order of Config.IDs.
var decisions = [3]string{"release", "refund", "dispute 70/30"}

// run is the state of one demo run.
type run struct {
	Config
	chain  *chain
	began  time.Time
	trades []*tradeRun
	// parts are the external participants' outcomes (External runs).
	parts []chan partResult
}

type tradeRun struct {
	id            string
	decision      string
	vendor, buyer party
	depositTxID   string
	depositTxKey  string
	last          escrow.TradeState
	status        escrow.TradeStatus
}

type party struct{ wallet, address string }

// Run runs the demo and returns its report; the error wraps ErrMismatch
// when a trade did not pay out exactly as decided.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.AmountAtomic == 0 {
		cfg.AmountAtomic = DefaultAmount
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	wcfg := rpcclient.DefaultConfig()
	wcfg.URL = cfg.WalletRPC
	r := &run{Config: cfg, began: cfg.Now(), chain: &chain{
		daemon: rpcclient.NewDaemon(cfg.DaemonAddress, 2*time.Minute), wallets: rpcclient.New(wcfg)}}
	if cfg.External != nil {
		r.trades = []*tradeRun{{id: cfg.External.ID, decision: externalDecision}}
	} else {
		for i, id := range cfg.IDs {
			r.trades = append(r.trades, &tradeRun{id: id, decision: decisions[i]})
		}
	}
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	if err := r.fund(ctx); err != nil {
		return nil, err
	}
	if err := r.decide(ctx); err != nil {
		return nil, err
	}
	return r.finish(ctx)
}

func (r *run) progress(format string, args ...any) {
	fmt.Fprintf(r.Progress, "%8s  %s\n", "+"+r.Now().Sub(r.began).Round(100*time.Millisecond).String(), fmt.Sprintf(format, args...))
}

// setUp creates each trade's vendor and buyer wallets and starts the
// three trades at once.
func (r *run) setUp(ctx context.Context) error {
	for _, t := range r.trades {
		for _, p := range []*party{&t.vendor, &t.buyer} {
			role := "vendor"
			if p == &t.buyer {
				role = "buyer"
			}
			p.wallet = t.id + "-" + role
			var err error
			if p.address, err = r.chain.newWallet(ctx, p.wallet); err != nil {
				return err
			}
		}
	}
	r.progress("created the vendor's and the buyer's own wallets of each trade")
	errs := make([]error, len(r.trades))
	var wg sync.WaitGroup
	for i, t := range r.trades {
		wg.Go(func() {
			in := escrow.TradeInput{EscrowID: t.id, AmountAtomic: r.AmountAtomic,
				VendorAddress: t.vendor.address, BuyerRefundAddress: t.buyer.address,
				DepositTimeout: depositTimeout, Confirmations: Confirmations, ScanInterval: scanInterval}
			if r.External != nil {
				if errs[i] = r.externalCustody(&in); errs[i] != nil {
					return
				}
			}
			_, errs[i] = r.Trades.StartTrade(ctx, in)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if r.External != nil {
		r.startParticipants(ctx, r.trades[0])
	}
	for _, t := range r.trades {
		r.progress("%s  started: EscrowTrade %s, price %s", t.id, escrow.TradeWorkflowID(t.id), xmr(r.AmountAtomic))
	}
	return nil
}

// fund readies the faucet while the trades set up, then pays each trade's
// price from the faucet to its multisig address, announces it with its tx
// key, and mines until every trade is FUNDED.
func (r *run) fund(ctx context.Context) error {
	mined, err := r.chain.openFaucet(ctx, 2*uint64(len(r.trades))*r.AmountAtomic)
	if err != nil {
		return err
	}
	if mined > 0 {
		r.progress("faucet: mined %d blocks to itself (coinbase unlocks after %d)", mined, CoinbaseUnlock)
	}
	if err := r.await(ctx, "awaiting the deposit", func(t *tradeRun) bool {
		return t.status.State == escrow.TradeAwaitingDeposit && t.status.MultisigAddress != ""
	}); err != nil {
		return err
	}
	for _, t := range r.trades {
		txid, key, err := r.chain.pay(ctx, t.status.MultisigAddress, r.AmountAtomic)
		if err != nil {
			return err
		}
		t.depositTxID, t.depositTxKey = txid, key
		r.progress("%s  faucet paid %s to %s…, tx %s", t.id, xmr(r.AmountAtomic), short(t.status.MultisigAddress), txid)
	}
	errs := make([]error, len(r.trades))
	var wg sync.WaitGroup
	for i, t := range r.trades {
		wg.Go(func() {
			_, errs[i] = r.Trades.AnnounceDeposit(ctx, t.id, escrow.DepositAnnouncement{TxID: t.depositTxID, TxKey: t.depositTxKey})
			if errs[i] == nil {
				r.progress("%s  deposit announced with its tx key, checked by the trade", t.id)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.await(ctx, "funded", func(t *tradeRun) bool { return t.status.State == escrow.TradeFunded })
}

// decide sends each trade's decision.
func (r *run) decide(ctx context.Context) error {
	if r.External != nil {
		if _, err := r.Trades.Release(ctx, r.trades[0].id); err != nil {
			return err
		}
		r.progress("%s  release by the buyer: its and the vendor's own wallets create and sign the payout", r.trades[0].id)
		return r.await(ctx, "paid out", func(t *tradeRun) bool { return final(t.status.State) })
	}
	rel, ref, dis := r.trades[0].id, r.trades[1].id, r.trades[2].id
	if _, err := r.Trades.Release(ctx, rel); err != nil {
		return err
	}
	r.progress("%s  release by the buyer", rel)
	if _, err := r.Trades.Refund(ctx, ref); err != nil {
		return err
	}
	r.progress("%s  refund by the vendor", ref)
	if _, err := r.Trades.Dispute(ctx, dis, string(escrow.Buyer), "the goods never came"); err != nil {
		return err
	}
	r.progress("%s  dispute by the buyer", dis)
	if _, err := r.Trades.Resolve(ctx, dis, ResolveVendorShareBps); err != nil {
		return err
	}
	r.progress("%s  resolved by the arbiter: %d%% to the vendor, the rest to the buyer", dis, ResolveVendorShareBps/100)
	return r.await(ctx, "paid out", func(t *tradeRun) bool { return final(t.status.State) })
}

func final(s escrow.TradeState) bool {
	return s == escrow.TradePaidOut || s == escrow.TradeExpired || s == escrow.TradeFailed
}

// finish takes each trade's result and reads what its recipients' own
// wallets received from the payout.
func (r *run) finish(ctx context.Context) (*Report, error) {
	if err := r.chain.wallets.CloseWallet(ctx); err != nil {
		return nil, fmt.Errorf("close the faucet: %w", err)
	}
	rep := &Report{}
	bad := 0
	for _, t := range r.trades {
		tr := TradeReport{EscrowID: t.id, Decision: t.decision, DepositTxID: t.depositTxID}
		st, err := r.Trades.WaitTrade(ctx, t.id)
		if err != nil {
			tr.State, tr.Error = escrow.TradeFailed, err.Error()
		} else {
			tr.State, tr.MultisigAddress = st.State, st.MultisigAddress
			tr.PayoutTxHash, tr.FeeAtomic = st.Payout.TxHash, st.Payout.FeeAtomic
			for _, p := range []struct {
				role escrow.Role
				p    party
			}{{escrow.Vendor, t.vendor}, {escrow.Buyer, t.buyer}} {
				rc := Recipient{Role: p.role, Address: p.p.address, ExpectedAtomic: paidTo(st.Payout.Outputs, p.p.address)}
				if rc.ReceivedAtomic, err = r.chain.receivedBy(ctx, p.p.wallet, st.Payout.TxHash); err != nil {
					return nil, err
				}
				tr.Recipients = append(tr.Recipients, rc)
			}
		}
		if err := r.participantsDone(ctx); err != nil && tr.Error == "" {
			tr.Error = err.Error()
		}
		if !tr.OK() {
			bad++
		}
		rep.Trades = append(rep.Trades, tr)
	}
	rep.MeasuredMs = r.Now().Sub(r.began).Milliseconds()
	if bad > 0 {
		return rep, fmt.Errorf("%d of %d trades: %w", bad, len(r.trades), ErrMismatch)
	}
	return rep, nil
}

// paidTo is what outputs pay address.
func paidTo(outputs []escrow.PayoutOutput, address string) uint64 {
	var sum uint64
	for _, o := range outputs {
		if o.Address == address {
			sum += o.AmountAtomic
		}
	}
	return sum
}

// await polls the trades' status until done holds for each, printing
// each change of state and mining the blocks the trades wait for. A FAILED
// trade ends the wait with its reason.
func (r *run) await(ctx context.Context, what string, done func(*tradeRun) bool) error {
	var lastMined time.Time
	tick := time.NewTicker(r.Poll)
	defer tick.Stop()
	for {
		r.poll(ctx)
		all := true
		var need uint64
		for _, t := range r.trades {
			if t.status.State == escrow.TradeFailed && !done(t) {
				return fmt.Errorf("trade %s failed (%s): %s", t.id, t.status.ReasonType, t.status.Reason)
			}
			all = all && done(t)
			need = max(need, blocksNeeded(t.status, t.depositTxID != ""))
		}
		if all {
			return nil
		}
		if need > 0 && r.Now().Sub(lastMined) >= mineEvery {
			if err := r.chain.mine(ctx, need); err != nil {
				return err
			}
			lastMined = r.Now()
			r.progress("mined %d blocks", need)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for the trades to be %s (%w); they keep running in Temporal", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// poll asks every trade for its status at once and prints the changes.
func (r *run) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range r.trades {
		wg.Go(func() {
			if st, err := r.Trades.TradeStatus(ctx, t.id); err == nil {
				t.status = st
			}
		})
	}
	wg.Wait()
	for _, t := range r.trades {
		if s := t.status.State; s != "" && s != t.last {
			t.last = s
			line := string(s)
			if s == escrow.TradeAwaitingDeposit {
				line += "  multisig " + t.status.MultisigAddress
			}
			r.progress("%s  %s", t.id, line)
		}
	}
}

// blocksNeeded is how many blocks a trade waits for: a paid deposit needs
// Confirmations and to be unlocked (SpendableAge), a signed payout its
// Confirmations. The statuses lag the chain by a check, so the caller
// mines at most every mineEvery.
func blocksNeeded(st escrow.TradeStatus, depositPaid bool) uint64 {
	want := uint64(Confirmations)
	switch {
	case st.State == escrow.TradeAwaitingDeposit && depositPaid:
		want = max(want, SpendableAge)
		return want - min(want, st.Deposit.Confirmations)
	case st.Payout.TxHash != "" && !final(st.State):
		return want - min(want, st.Payout.Confirmations)
	}
	return 0
}

// xmr formats piconero as XMR with all 12 decimals.
func xmr(atomic uint64) string {
	return fmt.Sprintf("%d.%012d XMR", atomic/1_000_000_000_000, atomic%1_000_000_000_000)
}

// short abbreviates an address for progress lines.
func short(addr string) string {
	if len(addr) <= 12 {
		return addr
	}
	return addr[:12]
}

// TradeIDs returns the escrow ids of the three trades:
// <prefix>-<YYYYMMDD-HHMMSS>-<tag>-release|refund|dispute.
func TradeIDs(prefix string, now time.Time, tag string) [3]string {
	stamp := now.UTC().Format("20060102-150405")
	var ids [3]string
	for i, s := range []string{"release", "refund", "dispute"} {
		ids[i] = fmt.Sprintf("%s-%s-%s-%s", prefix, stamp, tag, s)
	}
	return ids
}
