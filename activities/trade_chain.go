package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// Daemon is the part of monerod's RPC the trade activities use.
// *rpcclient.Daemon implements it.
type Daemon interface {
	GetInfo(ctx context.Context) (rpcclient.DaemonInfo, error)
	GetFeeEstimate(ctx context.Context) (rpcclient.FeeEstimate, error)
	GetTransactions(ctx context.Context, hashes []string) (rpcclient.TxLookup, error)
}

// SafeSigningVersion is the first monero-wallet-rpc release that stores the
// erasure of used multisig nonces before returning a signature
// (LIFECYCLE facts in docs/DESIGN.md).
const SafeSigningVersion = "0.18.5.1"

// tradeDeps are the trade activities' dependencies and their one-time
// state.
type tradeDeps struct {
	daemon   Daemon
	network  string
	version  string
	warnOnce sync.Once
	mu       sync.Mutex
	nettype  string // the daemon's, once known
}

func newTradeDeps(cfg Config) tradeDeps {
	network := cfg.Network
	if network == "" {
		network = "testnet"
	}
	return tradeDeps{daemon: cfg.Daemon, network: network, version: cfg.WalletRPCVersion}
}

// daemonNettypes maps the worker's network to the daemon's get_info nettype.
var daemonNettypes = map[string]string{"mainnet": "mainnet", "testnet": "testnet", "stagenet": "stagenet", "regtest": "fakechain"}

// daemonNettype returns the daemon's nettype, checked against the worker's
// network (NoDaemon when there is no daemon or it is on another network).
func (a *Activities) daemonNettype(ctx context.Context) (string, error) {
	t := &a.trade
	if t.daemon == nil {
		return "", &escrow.NoDaemonError{Reason: "the worker runs without --daemon-address"}
	}
	t.mu.Lock()
	known := t.nettype
	t.mu.Unlock()
	if known != "" {
		return known, nil
	}
	info, err := t.daemon.GetInfo(ctx)
	if err != nil {
		return "", err
	}
	if want := daemonNettypes[t.network]; info.Nettype != want {
		return "", &escrow.NoDaemonError{Reason: fmt.Sprintf("the daemon is on %q, the worker on %s (want %q)", info.Nettype, t.network, want)}
	}
	t.mu.Lock()
	t.nettype = info.Nettype
	t.mu.Unlock()
	return info.Nettype, nil
}

// olderVersion reports whether release version v ("0.18.0.0", maybe with a
// "-suffix") is older than want, or unknown.
func olderVersion(v, want string) bool {
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	a, b := strings.Split(v, "."), strings.Split(want, ".")
	if len(a) != 4 {
		return true
	}
	for i := range b {
		x, err := strconv.Atoi(a[i])
		if err != nil {
			return true
		}
		y, _ := strconv.Atoi(b[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// checkSigning refuses to sign with an old wallet-rpc against a mainnet
// daemon (UnsafeWalletRpc); elsewhere it logs a warning once.
func (a *Activities) checkSigning(ctx context.Context) error {
	nettype, err := a.daemonNettype(ctx)
	if err != nil {
		return err
	}
	if !olderVersion(a.trade.version, SafeSigningVersion) {
		return nil
	}
	if nettype == "mainnet" {
		return &escrow.UnsafeWalletRPCError{Version: versionName(a.trade.version)}
	}
	a.trade.warnOnce.Do(func() {
		a.log.Warn("signing multisig payouts with a wallet-rpc that does not store the erasure of used nonces; refused on mainnet",
			zap.String("wallet_rpc_version", versionName(a.trade.version)), zap.String("nettype", nettype),
			zap.String("safe_from", SafeSigningVersion))
	})
	return nil
}

func versionName(v string) string {
	if v == "" {
		return "(unknown version)"
	}
	return "v" + strings.TrimPrefix(v, "v")
}

// CheckTradeTerms checks a trade's terms on the worker that will run it:
// the addresses are valid for the worker's network (InvalidInput), the
// worker has a daemon on its network (NoDaemon), and, on mainnet, its
// wallet-rpc is safe to sign with (UnsafeWalletRpc). It changes nothing.
func (a *Activities) CheckTradeTerms(ctx context.Context, in TermsInput) (TermsOutput, error) {
	if err := escrow.ValidateEscrowID(in.EscrowID); err != nil {
		return TermsOutput{}, classify(err)
	}
	if in.AmountAtomic == 0 {
		return TermsOutput{}, classify(&escrow.InvalidInputError{Field: "amountAtomic", Value: "0"})
	}
	network := a.trade.network
	if err := CheckAddress(network, "vendorAddress", in.VendorAddress); err != nil {
		return TermsOutput{}, classify(err)
	}
	if err := CheckAddress(network, "buyerRefundAddress", in.BuyerRefundAddress); err != nil {
		return TermsOutput{}, classify(err)
	}
	nettype, err := a.daemonNettype(ctx)
	if err != nil {
		return TermsOutput{}, classify(err)
	}
	if nettype == "mainnet" && olderVersion(a.trade.version, SafeSigningVersion) {
		return TermsOutput{}, classify(&escrow.UnsafeWalletRPCError{Version: versionName(a.trade.version)})
	}
	out := TermsOutput{Network: network, Regtest: network == "regtest", WalletRPCVersion: a.trade.version}
	if out.Regtest {
		out.Network = "mainnet"
	}
	return out, nil
}

// Payout weight reckoning (see docs/DESIGN.md, "Money flow"): measured, a
// 1-input 2-output multisig payout weighs 1,507; these constants give 2,200
// for it, and grow faster per input than the measured sizes.
const (
	payoutBaseWeight   = 900
	payoutInputWeight  = 700
	payoutOutputWeight = 200
	// FeeMargin multiplies the estimate into the budget a payout may pay.
	FeeMargin = 2
)

// EstimatePayoutFee asks the daemon for the fee per byte and reckons the fee
// of a payout of the given shape: (900 + 700 per input + 200 per output,
// change included) weight units, rounded up to the daemon's quantization
// mask. The budget is FeeMargin times that.
func (a *Activities) EstimatePayoutFee(ctx context.Context, in FeeInput) (FeeOutput, error) {
	if in.Outputs < 1 || in.Outputs > 16 || in.Inputs < 1 || in.Inputs > 1000 {
		return FeeOutput{}, classify(&escrow.InvalidInputError{Field: "shape", Value: fmt.Sprintf("%d inputs, %d outputs", in.Inputs, in.Outputs)})
	}
	if _, err := a.daemonNettype(ctx); err != nil {
		return FeeOutput{}, classify(err)
	}
	fe, err := a.trade.daemon.GetFeeEstimate(ctx)
	if err != nil {
		return FeeOutput{}, classify(err)
	}
	weight := uint64(payoutBaseWeight + payoutInputWeight*in.Inputs + payoutOutputWeight*(in.Outputs+1))
	fee := weight * fe.Fee
	if m := fe.QuantizationMask; m > 1 {
		fee = (fee + m - 1) / m * m
	}
	return FeeOutput{EstimateAtomic: fee, BudgetAtomic: fee * FeeMargin}, nil
}

// CheckPayoutTx asks the daemon how confirmed a transaction is.
func (a *Activities) CheckPayoutTx(ctx context.Context, in TxCheckInput) (TxCheckOutput, error) {
	if !isHex64(in.TxHash) {
		return TxCheckOutput{}, classify(&escrow.InvalidInputError{Field: "txHash", Value: in.TxHash})
	}
	st, found, err := a.lookupTx(ctx, in.TxHash)
	if err != nil || !found {
		return TxCheckOutput{}, classify(err)
	}
	return TxCheckOutput{Found: true, InPool: st.InPool, Confirmations: st.Confirmations}, nil
}

// lookupTx finds hash in the daemon's pool or chain.
func (a *Activities) lookupTx(ctx context.Context, hash string) (rpcclient.TxStatus, bool, error) {
	if _, err := a.daemonNettype(ctx); err != nil {
		return rpcclient.TxStatus{}, false, err
	}
	r, err := a.trade.daemon.GetTransactions(ctx, []string{hash})
	if err != nil {
		return rpcclient.TxStatus{}, false, err
	}
	for _, tx := range r.Txs {
		if tx.TxHash == hash {
			return tx, true, nil
		}
	}
	return rpcclient.TxStatus{}, false, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
