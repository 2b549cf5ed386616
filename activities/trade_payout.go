package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Payout records live in the wallet dir next to the escrow's wallets. Each
// is written once, atomically (temp file, fsync, link, fsync of the dir)
// and never replaced:
//
//   - <snapshot>.create-intent: CreatePayout is about to call transfer or
//     sweep_all on the wallet of that snapshot. Found without the result,
//     it means an attempt died with an unknown outcome: the nonces of that
//     exchange may be used, so no other transaction is created from it
//     (NoncesSpent; the workflow exchanges fresh multisig info).
//   - <snapshot>.create.json: the txset created from that snapshot and the
//     snapshot committed after it; a retry returns it.
//   - <escrowId>.payout-sign-intent: the digest of the one txset this
//     escrow's co-signer is signing. Another digest is refused
//     (SecondPayout); the same one is signed again from the pre-signature
//     snapshot (the same message with the same nonces: the same signature).
//   - <escrowId>.payout-signed.json: the one signed payout of the escrow; a
//     retry with the same txset returns it.

type createRecord struct {
	PlanDigest  string                `json:"planDigest"`
	Snapshot    string                `json:"snapshot"`
	TxSet       string                `json:"txSet"`
	TxSetDigest string                `json:"txSetDigest"`
	FeeAtomic   uint64                `json:"feeAtomic"`
	Outputs     []escrow.PayoutOutput `json:"outputs"`
}

type signIntent struct {
	TxSetDigest string `json:"txSetDigest"`
}

type signedRecord struct {
	TxSetDigest string                `json:"txSetDigest"`
	Snapshot    string                `json:"snapshot"`
	SignedTxSet string                `json:"signedTxSet"`
	TxHashes    []string              `json:"txHashes"`
	FeeAtomic   uint64                `json:"feeAtomic"`
	Outputs     []escrow.PayoutOutput `json:"outputs"`
}

func (a *Activities) recordPath(name string) string { return filepath.Join(a.store.Dir(), name) }

// readRecord reads a record into v; found is false when there is none.
func (a *Activities) readRecord(name string, v any) (found bool, err error) {
	b, err := os.ReadFile(a.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("payout record %s: %w: %w", name, walletstore.ErrCorrupt, err)
	}
	return true, nil
}

// createRecord writes a record that must not exist yet (walletstore.ErrExists
// otherwise).
func (a *Activities) createRecord(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return walletstore.AtomicCreateFile(a.recordPath(name), b, 0o600)
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func planDigest(p escrow.PayoutPlan) string {
	b, _ := json.Marshal(p)
	return digestOf(string(b))
}

// checkPlanInput checks a plan before any wallet is touched.
func (a *Activities) checkPlanInput(p escrow.PayoutPlan) error {
	bad := func(reason string) error { return &escrow.InvalidInputError{Field: "plan", Value: reason} }
	switch p.Kind {
	case escrow.PayoutRelease, escrow.PayoutRefund, escrow.PayoutResolve, escrow.PayoutExpired:
	default:
		return bad("unknown kind " + string(p.Kind))
	}
	net := a.trade.network
	if err := CheckAddress(net, "plan.multisigAddress", p.MultisigAddress); err != nil {
		return err
	}
	if p.TotalAtomic == 0 || p.FeeBudgetAtomic == 0 {
		return bad("totalAtomic and feeBudgetAtomic must be positive")
	}
	if (p.SweepTo == "") == (len(p.Outputs) == 0) {
		return bad("exactly one of sweepTo and outputs")
	}
	if p.SweepTo != "" {
		if p.SweepTo == p.MultisigAddress {
			return bad("a sweep to the multisig address")
		}
		return CheckAddress(net, "plan.sweepTo", p.SweepTo)
	}
	seen := map[string]bool{}
	var sum uint64
	for _, o := range p.Outputs {
		if err := CheckAddress(net, "plan.outputs.address", o.Address); err != nil {
			return err
		}
		if o.Address == p.MultisigAddress || seen[o.Address] || o.AmountAtomic == 0 {
			return bad("outputs must be positive amounts to distinct addresses other than the multisig address")
		}
		seen[o.Address] = true
		sum += o.AmountAtomic
	}
	if sum > p.TotalAtomic {
		return bad("outputs exceed totalAtomic")
	}
	return nil
}

// checkPayout checks describe_transfer's view of a txset against the plan
// (escrow.CheckDescribed, shared with the participants).
func checkPayout(p escrow.PayoutPlan, desc []rpcclient.TransferDescription) (fee uint64, outs []escrow.PayoutOutput, err error) {
	return escrow.CheckDescribed(p, described(desc))
}

// described converts wallet-rpc's descriptions for escrow.CheckDescribed.
func described(desc []rpcclient.TransferDescription) []escrow.DescribedTransfer {
	out := make([]escrow.DescribedTransfer, len(desc))
	for i, d := range desc {
		out[i] = escrow.DescribedTransfer{AmountIn: d.AmountIn, ChangeAddress: d.ChangeAddress,
			ChangeAmount: d.ChangeAmount, Fee: d.Fee, UnlockTime: d.UnlockTime}
		for _, r := range d.Recipients {
			out[i].Recipients = append(out[i].Recipients, escrow.PayoutOutput{Address: r.Address, AmountAtomic: r.Amount})
		}
	}
	return out
}

// describe runs describe_transfer and checkPayout on the open wallet, after
// checking that the wallet is the plan's multisig wallet.
func describe(ctx context.Context, r *run, w MoneyWallet, p escrow.PayoutPlan, txset string) (uint64, []escrow.PayoutOutput, error) {
	var addr string
	if err := r.call(ctx, "get_address", func(ctx context.Context) (err error) {
		addr, err = w.GetAddress(ctx)
		return err
	}); err != nil {
		return 0, nil, err
	}
	if addr != p.MultisigAddress {
		return 0, nil, &escrow.PayoutMismatchError{Reason: "the plan's multisig address is not this escrow's"}
	}
	var desc []rpcclient.TransferDescription
	err := r.call(ctx, "describe_transfer", func(ctx context.Context) (err error) {
		desc, err = w.DescribeTransfer(ctx, txset)
		return err
	})
	if rpcclient.IsUnloadableTxSet(err) {
		// Nothing is signed. A txset this wallet cannot load was seen from
		// our own creator under load (wallet-rpc 0.18.0.0, cause unknown):
		// the workflow exchanges fresh multisig info and creates the payout
		// again, a bounded number of times. A txset that loads but pays
		// anything else is a PayoutMismatch below.
		return 0, nil, &escrow.NoncesSpentError{Reason: "this wallet cannot load the txset: " + err.Error()}
	}
	if err != nil {
		return 0, nil, err
	}
	return checkPayout(p, desc)
}

func (a *Activities) payoutPreamble(ctx context.Context, escrowID, role, snapshot string, p escrow.PayoutPlan) error {
	if err := a.validate(StepInput{EscrowID: escrowID, Role: role, Round: roundPaying, Snapshot: snapshot}, false); err != nil {
		return err
	}
	if err := walletstore.ValidateName(snapshot); err != nil {
		return err
	}
	if err := a.checkPlanInput(p); err != nil {
		return err
	}
	return a.checkSigning(ctx)
}

// CreatePayout creates the payout transaction of Plan on the creating
// signer's wallet (transfer for Outputs, sweep_all for SweepTo) and stores
// the wallet and commits a snapshot before the txset leaves. It runs at
// most once per input snapshot: a retry returns the stored txset (the same
// plan) or fails SecondPayout (another plan); an attempt whose outcome is
// unknown fails NoncesSpent, as does a wallet that needs fresh multisig
// info once refreshed. Against a mainnet daemon an old wallet-rpc fails UnsafeWalletRpc.
func (a *Activities) CreatePayout(ctx context.Context, in CreatePayoutInput) (CreatePayoutOutput, error) {
	if err := a.payoutPreamble(ctx, in.EscrowID, in.Role, in.Snapshot, in.Plan); err != nil {
		return CreatePayoutOutput{}, classify(err)
	}
	recName, intentName := in.Snapshot+".create.json", in.Snapshot+".create-intent"
	pd := planDigest(in.Plan)
	var rec createRecord
	if found, err := a.readRecord(recName, &rec); err != nil || found {
		if err == nil && rec.PlanDigest != pd {
			err = &escrow.SecondPayoutError{Reason: "a payout with another plan was created from this snapshot"}
		}
		if err != nil {
			return CreatePayoutOutput{}, classify(err)
		}
		return CreatePayoutOutput{Snapshot: rec.Snapshot, TxSet: rec.TxSet, TxSetDigest: rec.TxSetDigest,
			FeeAtomic: rec.FeeAtomic, Outputs: rec.Outputs}, nil
	}
	if _, err := os.Stat(a.recordPath(intentName)); err == nil {
		return CreatePayoutOutput{}, classify(&escrow.NoncesSpentError{Reason: "an earlier attempt may have created a payout from this snapshot"})
	}
	st, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundPaying, in.Snapshot, commit, func(ctx context.Context, r *run, w MoneyWallet) error {
		// The infos may be older than the chain (an exchange at FUNDED):
		// outputs they do not cover make the wallet say import needed.
		if err := refresh(ctx, r, w); err != nil {
			return err
		}
		b, err := balance(ctx, r, w)
		if err != nil {
			return err
		}
		if b.MultisigImportNeeded {
			return &escrow.NoncesSpentError{Reason: "multisig_import_needed"}
		}
		if err := a.createRecord(intentName, struct{}{}); err != nil {
			if errors.Is(err, walletstore.ErrExists) {
				return &escrow.NoncesSpentError{Reason: "another attempt is creating a payout from this snapshot"}
			}
			return err
		}
		err = r.call(ctx, "transfer", func(ctx context.Context) error {
			if in.Plan.SweepTo != "" {
				res, err := w.SweepAll(ctx, rpcclient.SweepAllParams{Address: in.Plan.SweepTo})
				rec.TxSet = res.MultisigTxset
				return err
			}
			dests := make([]rpcclient.Destination, len(in.Plan.Outputs))
			for i, o := range in.Plan.Outputs {
				dests[i] = rpcclient.Destination{Address: o.Address, Amount: o.AmountAtomic}
			}
			res, err := w.Transfer(ctx, rpcclient.TransferParams{Destinations: dests})
			rec.TxSet = res.MultisigTxset
			return err
		})
		var rpcErr *rpcclient.RPCError
		if errors.As(err, &rpcErr) {
			// wallet-rpc refused: no transaction was made, the nonces are
			// unused.
			if rerr := os.Remove(a.recordPath(intentName)); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		if rpcclient.IsNothingToSpend(err) {
			return &escrow.NoncesSpentError{Reason: "wallet-rpc finds too little to spend: " + rpcErr.Message}
		}
		if err != nil {
			return err
		}
		if rec.TxSet == "" {
			return &escrow.PayoutMismatchError{Reason: "wallet-rpc returned no multisig txset (not a multisig wallet?)"}
		}
		rec.FeeAtomic, rec.Outputs, err = describe(ctx, r, w, in.Plan, rec.TxSet)
		return err
	})
	if err != nil {
		return CreatePayoutOutput{Attempt: st.Attempt}, err
	}
	rec.PlanDigest, rec.Snapshot, rec.TxSetDigest = pd, st.Snapshot, digestOf(rec.TxSet)
	if err := a.createRecord(recName, rec); err != nil {
		return CreatePayoutOutput{Attempt: st.Attempt}, classify(err)
	}
	a.log.Info("payout created", zap.String("escrow_id", in.EscrowID), zap.String("role", in.Role),
		zap.String("kind", string(in.Plan.Kind)), zap.Uint64("fee", rec.FeeAtomic), zap.String("txset_sha256", rec.TxSetDigest))
	return CreatePayoutOutput{Snapshot: st.Snapshot, TxSet: rec.TxSet, TxSetDigest: rec.TxSetDigest,
		FeeAtomic: rec.FeeAtomic, Outputs: rec.Outputs, Attempt: st.Attempt, RPCMs: st.RPCMs}, nil
}

// SignPayout checks TxSet against Plan with describe_transfer
// (PayoutMismatch, nothing signed, if it differs), signs it and stores the
// wallet and commits a snapshot before the signature leaves. One signed
// payout per escrow: a retry with the same txset returns the stored result;
// a different txset fails SecondPayout. "Stale data" from wallet-rpc fails
// NoncesSpent (nothing signed; the workflow exchanges fresh infos).
func (a *Activities) SignPayout(ctx context.Context, in SignPayoutInput) (SignPayoutOutput, error) {
	if err := a.payoutPreamble(ctx, in.EscrowID, in.Role, in.Snapshot, in.Plan); err != nil {
		return SignPayoutOutput{}, classify(err)
	}
	if in.TxSet == "" {
		return SignPayoutOutput{}, classify(&escrow.InvalidInputError{Field: "txSet", Value: ""})
	}
	digest := digestOf(in.TxSet)
	recName, intentName := escrowPrefix(in.EscrowID)+"payout-signed.json", escrowPrefix(in.EscrowID)+"payout-sign-intent"
	var rec signedRecord
	if found, err := a.readRecord(recName, &rec); err != nil || found {
		if err == nil && rec.TxSetDigest != digest {
			err = &escrow.SecondPayoutError{Reason: "the escrow already has a signed payout, with another txset"}
		}
		if err != nil {
			return SignPayoutOutput{}, classify(err)
		}
		return SignPayoutOutput{Snapshot: rec.Snapshot, SignedTxSet: rec.SignedTxSet, TxHashes: rec.TxHashes,
			FeeAtomic: rec.FeeAtomic, Outputs: rec.Outputs}, nil
	}
	var intent signIntent
	if found, err := a.readRecord(intentName, &intent); err != nil || (found && intent.TxSetDigest != digest) {
		if err == nil {
			err = &escrow.SecondPayoutError{Reason: "the escrow's co-signer is signing another txset"}
		}
		return SignPayoutOutput{}, classify(err)
	}
	st, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundSigning, in.Snapshot, commit, func(ctx context.Context, r *run, w MoneyWallet) error {
		var err error
		if rec.FeeAtomic, rec.Outputs, err = describe(ctx, r, w, in.Plan, in.TxSet); err != nil {
			return err
		}
		created := false
		switch err := a.createRecord(intentName, signIntent{TxSetDigest: digest}); {
		case err == nil:
			created = true
		case errors.Is(err, walletstore.ErrExists):
			var other signIntent
			if _, err := a.readRecord(intentName, &other); err != nil {
				return err
			}
			if other.TxSetDigest != digest {
				return &escrow.SecondPayoutError{Reason: "the escrow's co-signer is signing another txset"}
			}
		default:
			return err
		}
		var res rpcclient.SignMultisigResult
		err = r.call(ctx, "sign_multisig", func(ctx context.Context) (err error) {
			res, err = w.SignMultisig(ctx, in.TxSet)
			return err
		})
		var rpcErr *rpcclient.RPCError
		if errors.As(err, &rpcErr) && created {
			// Refused: nothing signed, the intent goes.
			if rerr := os.Remove(a.recordPath(intentName)); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		switch {
		case rpcclient.IsStaleMultisig(err):
			return &escrow.NoncesSpentError{Reason: "wallet-rpc: " + rpcErr.Message}
		case err != nil:
			return err
		case len(res.TxHashList) == 0:
			return &escrow.PayoutMismatchError{Reason: "the txset is not complete after this signature (not signed by its creator?)"}
		}
		rec.SignedTxSet, rec.TxHashes = res.TxDataHex, res.TxHashList
		return nil
	})
	if err != nil {
		return SignPayoutOutput{Attempt: st.Attempt}, err
	}
	rec.TxSetDigest, rec.Snapshot = digest, st.Snapshot
	if err := a.createRecord(recName, rec); err != nil {
		return SignPayoutOutput{Attempt: st.Attempt}, classify(err)
	}
	a.log.Info("payout signed", zap.String("escrow_id", in.EscrowID), zap.String("role", in.Role),
		zap.Strings("tx_hashes", rec.TxHashes), zap.String("txset_sha256", digest))
	return SignPayoutOutput{Snapshot: st.Snapshot, SignedTxSet: rec.SignedTxSet, TxHashes: rec.TxHashes,
		FeeAtomic: rec.FeeAtomic, Outputs: rec.Outputs, Attempt: st.Attempt, RPCMs: st.RPCMs}, nil
}

// VerifyPayout checks TxSet against Plan with describe_transfer on Role's
// wallet without signing (the hosted arbiter's check of sets that external
// participants created). A mismatch fails PayoutMismatch.
func (a *Activities) VerifyPayout(ctx context.Context, in SignPayoutInput) (VerifyPayoutOutput, error) {
	if err := a.validate(StepInput{EscrowID: in.EscrowID, Role: in.Role, Round: roundChecking, Snapshot: in.Snapshot}, false); err != nil {
		return VerifyPayoutOutput{}, classify(err)
	}
	if err := a.checkPlanInput(in.Plan); err != nil {
		return VerifyPayoutOutput{}, classify(err)
	}
	var out VerifyPayoutOutput
	_, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundChecking, in.Snapshot, readOnly, func(ctx context.Context, r *run, w MoneyWallet) (err error) {
		// The checker may never have exported: it must know the outputs the
		// set spends before wallet-rpc can load the set.
		if err := refresh(ctx, r, w); err != nil {
			return err
		}
		out.FeeAtomic, out.Outputs, err = describe(ctx, r, w, in.Plan, in.TxSet)
		return err
	})
	if err != nil {
		return VerifyPayoutOutput{}, err
	}
	return out, nil
}

func refresh(ctx context.Context, r *run, w MoneyWallet) error {
	return r.call(ctx, "refresh", func(ctx context.Context) error { _, err := w.Refresh(ctx, 0); return err })
}

// SubmitPayout relays the signed payout (submit_multisig). When the daemon
// already knows every hash (pool or chain), as after a lost completion, it
// succeeds without submitting again.
func (a *Activities) SubmitPayout(ctx context.Context, in SubmitPayoutInput) (SubmitPayoutOutput, error) {
	if err := a.validate(StepInput{EscrowID: in.EscrowID, Role: in.Role, Round: roundSubmit, Snapshot: in.Snapshot}, false); err != nil {
		return SubmitPayoutOutput{}, classify(err)
	}
	if len(in.TxHashes) == 0 || in.SignedTxSet == "" {
		return SubmitPayoutOutput{}, classify(&escrow.InvalidInputError{Field: "txHashes", Value: strings.Join(in.TxHashes, ",")})
	}
	for _, h := range in.TxHashes {
		if !isHex64(h) {
			return SubmitPayoutOutput{}, classify(&escrow.InvalidInputError{Field: "txHashes", Value: h})
		}
	}
	known := func() (bool, error) {
		for _, h := range in.TxHashes {
			_, found, err := a.lookupTx(ctx, h)
			if err != nil || !found {
				return false, err
			}
		}
		return true, nil
	}
	log := a.log.With(zap.String("escrow_id", in.EscrowID), zap.Strings("tx_hashes", in.TxHashes))
	if ok, err := known(); err != nil || ok {
		if ok {
			log.Info("payout already relayed")
			return SubmitPayoutOutput{TxHash: in.TxHashes[0]}, nil
		}
		return SubmitPayoutOutput{}, classify(err)
	}
	_, err := a.moneyStep(ctx, in.EscrowID, in.Role, roundSubmit, in.Snapshot, readOnly, func(ctx context.Context, r *run, w MoneyWallet) error {
		// A submitter that never exported (the arbiter relaying an external
		// co-signer's set) must know the spent outputs to load the set.
		if err := refresh(ctx, r, w); err != nil {
			return err
		}
		var hashes []string
		err := r.call(ctx, "submit_multisig", func(ctx context.Context) (err error) {
			hashes, err = w.SubmitMultisig(ctx, in.SignedTxSet)
			return err
		})
		if err == nil && !slices.Equal(hashes, in.TxHashes) {
			return &escrow.PayoutMismatchError{Reason: "submit_multisig relayed other transactions than the signed ones"}
		}
		return err
	})
	if err != nil {
		if ok, kerr := known(); kerr == nil && ok {
			log.Info("payout relayed by an earlier attempt", zap.Error(err))
			return SubmitPayoutOutput{TxHash: in.TxHashes[0]}, nil
		}
		return SubmitPayoutOutput{}, err
	}
	log.Info("payout submitted")
	return SubmitPayoutOutput{TxHash: in.TxHashes[0]}, nil
}
