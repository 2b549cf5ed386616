package activities

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"filippo.io/edwards25519"
	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/chainscan"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
)

// MoneyWallet is the part of the monero-wallet-rpc client the trade's
// wallet activities use, beyond Wallet. *rpcclient.Client implements it.
type MoneyWallet interface {
	Wallet
	Refresh(ctx context.Context, startHeight uint64) (rpcclient.RefreshResult, error)
	GetBalance(ctx context.Context, accountIndex uint32) (rpcclient.Balance, error)
	GetTransfers(ctx context.Context, p rpcclient.GetTransfersParams) (rpcclient.Transfers, error)
	CheckTxKey(ctx context.Context, txid, txKey, address string) (rpcclient.TxKeyCheck, error)
	ExportMultisigInfo(ctx context.Context) (string, error)
	ImportMultisigInfo(ctx context.Context, infos []string) (int, error)
	Transfer(ctx context.Context, p rpcclient.TransferParams) (rpcclient.TransferResult, error)
	SweepAll(ctx context.Context, p rpcclient.SweepAllParams) (rpcclient.SweepAllResult, error)
	DescribeTransfer(ctx context.Context, multisigTxset string) ([]rpcclient.TransferDescription, error)
	SignMultisig(ctx context.Context, txDataHex string) (rpcclient.SignMultisigResult, error)
	SubmitMultisig(ctx context.Context, txDataHex string) ([]string, error)
}

// The rounds of the trade's wallet steps (in snapshot names and logs).
const (
	roundExporting = "EXPORTING"
	roundImporting = "IMPORTING"
	roundPaying    = "PAYING"
	roundSigning   = "SIGNING"
	roundChecking  = "CHECKING"
	roundSubmit    = "SUBMITTING"
)

// tradeRounds are the rounds of the trade's wallet steps.
var tradeRounds = map[string]bool{roundExporting: true, roundImporting: true, roundPaying: true,
	roundSigning: true, roundChecking: true, roundSubmit: true}

// moneyWallet returns the lease's wallet as a MoneyWallet.
func moneyWallet(r *run) (MoneyWallet, error) {
	w, ok := r.w.(MoneyWallet)
	if !ok {
		return nil, errors.New("this worker's wallet client cannot move funds")
	}
	return w, nil
}

// spendableAge is how many blocks an ordinary output stays locked.
const spendableAge = chainscan.SpendableAge

// CheckDeposit reports what the multisig address has received and how
// confirmed and unlocked it is, from the daemon alone (package chainscan):
// an announced deposit is proven with its tx key as check_tx_key does, and
// a scan reads the blocks added since the escrow's last scan with the
// multisig wallet's private view key. Neither opens a wallet: only the
// first scan of an escrow leases a wallet-rpc process once, to read the
// view key from a throwaway copy of the committed snapshot (closed without
// saving and removed), and keeps it encrypted under the role's wallet
// password next to the wallets, with the scan's progress.
func (a *Activities) CheckDeposit(ctx context.Context, in DepositCheckInput) (out DepositCheckOutput, err error) {
	if err := a.validate(StepInput{EscrowID: in.EscrowID, Role: in.Role, Round: roundChecking, Snapshot: in.Wallet}, false); err != nil {
		return out, classify(err)
	}
	if err := CheckAddress(a.trade.network, "multisigAddress", in.MultisigAddress); err != nil {
		return out, classify(err)
	}
	if in.Announced == nil && !in.Scan {
		return out, classify(&escrow.InvalidInputError{Field: "scan", Value: "neither an announcement nor a scan"})
	}
	if _, err := a.daemonNettype(ctx); err != nil {
		return out, classify(err)
	}
	src, ok := a.trade.daemon.(chainscan.Source)
	if !ok {
		return out, classify(&escrow.NoDaemonError{Reason: "the worker's daemon client cannot read blocks"})
	}
	addr, err := chainscan.ParseAddress(in.MultisigAddress)
	if err != nil {
		return out, classify(&escrow.InvalidInputError{Field: "multisigAddress", Value: err.Error()})
	}
	if activity.IsActivity(ctx) {
		defer a.keepAlive(ctx)() // a first scan, or one after a long pause, reads many blocks
	}
	log := a.log.With(zap.String("escrow_id", in.EscrowID), zap.String("role", in.Role), zap.String("round", roundChecking))
	defer func() {
		if err != nil {
			err = classify(err)
		}
	}()
	if an := in.Announced; an != nil && !wellFormed(an) {
		log.Warn("announced deposit is malformed: not checked")
	} else if an != nil {
		if out, err = announcedDeposit(ctx, src, addr, an); err != nil {
			return out, err
		}
	}
	if in.Scan {
		scanned, unlocked, err := a.scanDeposit(ctx, src, addr, in, log)
		if err != nil {
			return out, err
		}
		if scanned.ReceivedAtomic >= out.Deposit.ReceivedAtomic {
			out.Deposit, out.UnlockedAtomic = scanned, unlocked
		}
	}
	log.Info("deposit checked", zap.Uint64("received", out.Deposit.ReceivedAtomic),
		zap.Uint64("confirmations", out.Deposit.Confirmations), zap.Uint64("unlocked", out.UnlockedAtomic))
	return out, nil
}

// announcedDeposit proves an announced deposit with its tx key against
// the daemon's copy of the transaction. An unknown txid or a key that pays
// nothing to the address proves nothing (AnnouncedValid false).
func announcedDeposit(ctx context.Context, src chainscan.Source, addr chainscan.Address, an *escrow.DepositAnnouncement) (out DepositCheckOutput, err error) {
	var keys []*edwards25519.Scalar
	for k := an.TxKey; k != ""; k = k[64:] {
		s, err := chainscan.Secret(k[:64])
		if err != nil {
			return out, nil
		}
		keys = append(keys, s)
	}
	r, err := src.GetTransactionsJSON(ctx, []string{an.TxID})
	if err != nil || len(r.Txs) != 1 || r.Txs[0].TxHash != an.TxID {
		return out, err
	}
	t := r.Txs[0]
	tx, err := chainscan.ParseTx(t.AsJSON)
	if err != nil {
		return out, fmt.Errorf("tx %s: %w", an.TxID, err)
	}
	var received uint64
	for _, f := range chainscan.WithTxKey(tx, addr, keys) {
		received += f.Amount
	}
	if received == 0 {
		return out, nil
	}
	out.AnnouncedValid = true
	out.Deposit = escrow.DepositStatus{ReceivedAtomic: received, TxIDs: []string{an.TxID}}
	if !t.InPool {
		out.Deposit.Confirmations = t.Confirmations
		if t.Confirmations >= spendableAge && chainscan.Unlocked(tx.UnlockTime, t.BlockHeight+t.Confirmations) {
			out.UnlockedAtomic = received
		}
	}
	return out, nil
}

// groupOrder is l, the order of Monero's ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// wellFormed reports whether an announcement can be checked: a txid of 64
// hex digits and a tx key of one or more reduced scalars (the main key and
// any additional keys, as get_tx_key gives them). A key that is no reduced
// scalar proves nothing (wallet-rpc v0.18.0.0 crashed on check_tx_key with
// one, measured with 32 bytes of 0x11; CheckDeposit no longer calls it).
// Hex digits are made lower case in place.
func wellFormed(an *escrow.DepositAnnouncement) bool {
	an.TxID, an.TxKey = strings.ToLower(an.TxID), strings.ToLower(an.TxKey)
	if !isHex64(an.TxID) || an.TxKey == "" || len(an.TxKey)%64 != 0 {
		return false
	}
	for k := an.TxKey; k != ""; k = k[64:] {
		if !isScalar(k[:64]) {
			return false
		}
	}
	return true
}

// isScalar reports whether s is 64 lower-case hex digits encoding a
// reduced scalar (little-endian, below l), as every tx secret key is.
func isScalar(s string) bool {
	if !isHex64(s) {
		return false
	}
	b, _ := hex.DecodeString(s)
	slices.Reverse(b)
	return new(big.Int).SetBytes(b).Cmp(groupOrder) < 0
}

// moneyStep runs fn as a committing (or read-only) step of the trade on the
// role's wallet, opened from in.Snapshot by the existing step machinery.
func (a *Activities) moneyStep(ctx context.Context, escrowID, role, round, snapshot string, m stepMode,
	fn func(ctx context.Context, r *run, w MoneyWallet) error) (StepOutput, error) {
	return a.step(ctx, StepInput{EscrowID: escrowID, Role: role, Round: round, Snapshot: snapshot}, m,
		func(ctx context.Context, r *run, _ *StepOutput) error {
			w, err := moneyWallet(r)
			if err != nil {
				return err
			}
			return fn(ctx, r, w)
		})
}

// balance reads the unlocked balance; multisig_import_needed is
// NoncesSpent (the workflow redoes the exchange).
func balance(ctx context.Context, r *run, w MoneyWallet) (rpcclient.Balance, error) {
	var b rpcclient.Balance
	err := r.call(ctx, "get_balance", func(ctx context.Context) (err error) {
		b, err = w.GetBalance(ctx, 0)
		return err
	})
	return b, err
}

// ExportMultisig refreshes the signer's wallet and exports its multisig
// info (fresh nonces), committing the wallet before returning the info.
func (a *Activities) ExportMultisig(ctx context.Context, in PayoutStepInput) (PayoutStepOutput, error) {
	if _, err := a.daemonNettype(ctx); err != nil {
		return PayoutStepOutput{}, classify(err)
	}
	var out PayoutStepOutput
	st, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundExporting, in.Snapshot, commit, func(ctx context.Context, r *run, w MoneyWallet) error {
		if err := refresh(ctx, r, w); err != nil {
			return err
		}
		if err := r.call(ctx, "export_multisig_info", func(ctx context.Context) (err error) {
			out.Info, err = w.ExportMultisigInfo(ctx)
			return err
		}); err != nil {
			return err
		}
		b, err := balance(ctx, r, w)
		out.UnlockedAtomic = b.UnlockedBalance
		return err
	})
	out.Snapshot, out.Attempt, out.RPCMs = st.Snapshot, st.Attempt, st.RPCMs
	if err != nil {
		return PayoutStepOutput{Attempt: st.Attempt}, err
	}
	return out, nil
}

// ImportMultisig imports the other signers' infos and commits the wallet.
// It needs at least one peer info (threshold 2). A wallet that still says
// multisig_import_needed afterwards is logged and committed: CreatePayout
// then fails NoncesSpent and the workflow exchanges again.
func (a *Activities) ImportMultisig(ctx context.Context, in PayoutStepInput) (PayoutStepOutput, error) {
	if len(in.PeerInfos) < escrow.Threshold-1 || len(in.PeerInfos) > escrow.Total-1 {
		return PayoutStepOutput{}, classify(&escrow.InvalidMultisigMessageError{Reason: "want 1 or 2 peer multisig infos"})
	}
	for _, info := range in.PeerInfos {
		if len(info) < 16 || len(info) > 1<<20 || strings.Trim(info, "0123456789abcdef") != "" {
			return PayoutStepOutput{}, classify(&escrow.InvalidMultisigMessageError{Reason: "a peer multisig info is not hex"})
		}
	}
	if _, err := a.daemonNettype(ctx); err != nil {
		return PayoutStepOutput{}, classify(err)
	}
	var out PayoutStepOutput
	st, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundImporting, in.Snapshot, commit, func(ctx context.Context, r *run, w MoneyWallet) error {
		if err := r.call(ctx, "import_multisig_info", func(ctx context.Context) (err error) {
			out.Outputs, err = w.ImportMultisigInfo(ctx, in.PeerInfos)
			return err
		}); err != nil {
			if rpcclient.IsCode(err, rpcclient.CodeBadMultisigInfo) || rpcclient.IsCode(err, rpcclient.CodeUnknown) {
				return &escrow.InvalidMultisigMessageError{Reason: "wallet-rpc refused the peer multisig info"}
			}
			return err
		}
		b, err := balance(ctx, r, w)
		out.UnlockedAtomic = b.UnlockedBalance
		if err == nil && b.MultisigImportNeeded {
			// Seen once in an end-to-end run, with a background miner. The
			// import is kept; CreatePayout checks the flag again and fails
			// NoncesSpent if it is still set, which makes the workflow
			// exchange fresh infos.
			r.log.Warn("multisig_import_needed after the import")
		}
		return err
	})
	out.Snapshot, out.Attempt, out.RPCMs = st.Snapshot, st.Attempt, st.RPCMs
	if err != nil {
		return PayoutStepOutput{Attempt: st.Attempt}, err
	}
	return out, nil
}
