package escrow

// The payout contract of external custody: the payoutRound update an
// external signer of an EscrowTrade sends each step of a payout with, the
// bytes it signs, and the check of a described txset against its plan that
// the worker's wallets and the participants' share.

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PayoutRoundUpdate is the name of the Temporal Update an external signer
// of a payout sends each payout step with. Its argument is a PayoutMessage,
// its answer a PayoutRoundResult.
const PayoutRoundUpdate = "payoutRound"

// DefaultPayoutDeadline is how long a payout step waits for an external
// signer's message before the trade fails with ParticipantTimeout.
const DefaultPayoutDeadline = 24 * time.Hour

// MaxPayoutMessageBytes bounds one payout message (a multisig info or a
// txset in hex).
const MaxPayoutMessageBytes = 1 << 20

// PayoutStep is one step an external signer takes in a payout attempt.
type PayoutStep string

// The payout steps, in order. Both signers send EXPORT; the creator then
// sends TXSET, the co-signer SIGNED.
const (
	// PayoutExport: Message is the signer's export_multisig_info (hex).
	// The answer carries the other signer's info and the plan; the
	// co-signer's answer also carries the creator's txset, once the
	// hosted arbiter's wallet has checked it against the plan.
	PayoutExport PayoutStep = "EXPORT"
	// PayoutTxSet: Message is the multisig_txset the creator made for the
	// plan after importing its peer's info. Answered once the arbiter's
	// wallet has checked it (a mismatch fails the trade PayoutMismatch).
	PayoutTxSet PayoutStep = "TXSET"
	// PayoutSigned: Message is sign_multisig's tx_data_hex, TxHashes its
	// tx_hash_list. Answered with the payout's hash once submitted.
	PayoutSigned PayoutStep = "SIGNED"
	// PayoutStale: Message says why (printable text, at most
	// MaxStaleReasonBytes): this signer's wallet cannot take its step
	// with the infos exchanged for the attempt (wallet-rpc says "stale
	// data", finds nothing to spend, or cannot load the checked set).
	// Nothing was created or signed. Sent instead of TXSET or SIGNED,
	// after EXPORT; answered at once. The attempt ends NoncesSpent and the
	// next one exchanges fresh infos (a bounded number of times,
	// workflows.MaxNonceRetries).
	PayoutStale PayoutStep = "STALE"
)

// MaxStaleReasonBytes bounds a STALE message.
const MaxStaleReasonBytes = 512

// PayoutRoundName is the round of step in payout attempt n (1, 2, …):
// "PAYOUT-<step>-<n>". A payout whose multisig infos must be exchanged
// again starts attempt n+1; messages of an older attempt are refused.
func PayoutRoundName(step PayoutStep, attempt int) string {
	return fmt.Sprintf("PAYOUT-%s-%d", step, attempt)
}

// ParsePayoutRound splits a round made by PayoutRoundName.
func ParsePayoutRound(round string) (PayoutStep, int, bool) {
	rest, ok := strings.CutPrefix(round, "PAYOUT-")
	if !ok {
		return "", 0, false
	}
	step, n, ok := strings.Cut(rest, "-")
	var attempt int
	if _, err := fmt.Sscanf(n, "%d", &attempt); !ok || err != nil || attempt < 1 || fmt.Sprint(attempt) != n {
		return "", 0, false
	}
	switch PayoutStep(step) {
	case PayoutExport, PayoutTxSet, PayoutSigned, PayoutStale:
		return PayoutStep(step), attempt, true
	}
	return "", 0, false
}

// PayoutMessage is the argument of the payoutRound update:
// {"role","round","message","txHashes","signature"}.
type PayoutMessage struct {
	Role    string `json:"role"`
	Round   string `json:"round"`
	Message string `json:"message"`
	// TxHashes are the payout's transaction hashes (SIGNED only).
	TxHashes []string `json:"txHashes,omitempty"`
	// Signature is the ed25519 signature of PayoutSignedBytes, 128 hex
	// digits, with the key the participant registered at start.
	Signature string `json:"signature"`
}

// PayoutRoundResult answers a payoutRound.
type PayoutRoundResult struct {
	Round string `json:"round"`
	// Creator and Cosigner are the attempt's two signers.
	Creator  Role `json:"creator"`
	Cosigner Role `json:"cosigner"`
	// Plan is the decided payout (EXPORT answers).
	Plan PayoutPlan `json:"plan"`
	// PeerInfo is the other signer's multisig info (EXPORT answers).
	PeerInfo string `json:"peerInfo,omitempty"`
	// TxSet is the creator's txset, checked by the arbiter's wallet (the
	// co-signer's EXPORT answer).
	TxSet string `json:"txSet,omitempty"`
	// TxHash is the submitted payout (SIGNED answers).
	TxHash string `json:"txHash,omitempty"`
}

const payoutPrefix = "escrowflow-payoutRound-v1"

// PayoutSignedBytes returns the bytes a participant signs for a payout
// message: as SignedBytes, with the prefix escrowflow-payoutRound-v1 and
// the SHA-256 over the message followed by "\n" and the comma-joined
// TxHashes.
func PayoutSignedBytes(escrowID string, m PayoutMessage) []byte {
	return signedBytes(payoutPrefix, escrowID, m.Role, m.Round, m.Message+"\n"+strings.Join(m.TxHashes, ","))
}

// SignPayoutMessage fills m.Signature with key's signature for escrowID.
func SignPayoutMessage(key ed25519.PrivateKey, escrowID string, m *PayoutMessage) {
	m.Signature = hex.EncodeToString(ed25519.Sign(key, PayoutSignedBytes(escrowID, *m)))
}

// VerifyPayoutMessage reports whether m carries pub's signature for
// escrowID.
func VerifyPayoutMessage(pub ed25519.PublicKey, escrowID string, m PayoutMessage) bool {
	sig, err := hex.DecodeString(m.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, PayoutSignedBytes(escrowID, m), sig)
}

// CheckPayoutMessage checks that m's message is well formed for its step:
// lowercase hex of at most MaxPayoutMessageBytes, and for SIGNED one to
// four 64-digit transaction hashes; for STALE printable ASCII of 1 to
// MaxStaleReasonBytes bytes.
func CheckPayoutMessage(step PayoutStep, m PayoutMessage) error {
	if step == PayoutStale {
		switch {
		case len(m.Message) == 0 || len(m.Message) > MaxStaleReasonBytes:
			return fmt.Errorf("a %s reason of %d bytes, want 1 to %d", PayoutStale, len(m.Message), MaxStaleReasonBytes)
		case strings.IndexFunc(m.Message, func(r rune) bool { return r < ' ' || r > '~' }) >= 0:
			return fmt.Errorf("a %s reason is printable ASCII", PayoutStale)
		case len(m.TxHashes) > 0:
			return fmt.Errorf("txHashes belong to a %s message only", PayoutSigned)
		}
		return nil
	}
	switch {
	case len(m.Message) > MaxPayoutMessageBytes:
		return fmt.Errorf("message of %d bytes, at most %d", len(m.Message), MaxPayoutMessageBytes)
	case len(m.Message) < 16 || len(m.Message)%2 != 0 || strings.Trim(m.Message, "0123456789abcdef") != "":
		return fmt.Errorf("the message is not lowercase hex")
	case step != PayoutSigned && len(m.TxHashes) > 0:
		return fmt.Errorf("txHashes belong to a %s message only", PayoutSigned)
	case step == PayoutSigned && (len(m.TxHashes) == 0 || len(m.TxHashes) > 4):
		return fmt.Errorf("a %s message carries 1 to 4 txHashes, not %d", PayoutSigned, len(m.TxHashes))
	}
	for _, h := range m.TxHashes {
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			return fmt.Errorf("txHash %q is not 64 lowercase hex digits", h)
		}
	}
	return nil
}

// DescribedTransfer is what a wallet's describe_transfer says of one
// transaction of a txset.
type DescribedTransfer struct {
	AmountIn      uint64
	Recipients    []PayoutOutput
	ChangeAddress string
	ChangeAmount  uint64
	Fee           uint64
	UnlockTime    uint64
}

// CheckDescribed compares describe_transfer's view of a txset with the
// plan: one transaction, unlock_time 0, the fee within the budget, exactly
// the plan's destinations and amounts (order not assumed), change only to
// the multisig address, and inputs that add up. A sweep sends everything
// less the fee to SweepTo, with no change. It returns the fee and the
// outputs sorted by address, or a *PayoutMismatchError.
func CheckDescribed(p PayoutPlan, desc []DescribedTransfer) (fee uint64, outs []PayoutOutput, err error) {
	bad := func(format string, args ...any) error {
		return &PayoutMismatchError{Reason: fmt.Sprintf(format, args...)}
	}
	if len(desc) != 1 {
		return 0, nil, bad("%d transactions in the set, want 1", len(desc))
	}
	d := desc[0]
	got := map[string]uint64{}
	var sent uint64
	for _, r := range d.Recipients {
		got[r.Address] += r.AmountAtomic
		sent += r.AmountAtomic
		outs = append(outs, r)
	}
	switch {
	case d.UnlockTime != 0:
		return 0, nil, bad("unlock_time %d, want 0", d.UnlockTime)
	case d.Fee > p.FeeBudgetAtomic:
		return 0, nil, bad("fee %d above the budget %d", d.Fee, p.FeeBudgetAtomic)
	case d.ChangeAmount > 0 && d.ChangeAddress != p.MultisigAddress:
		return 0, nil, bad("change of %d to another address than the multisig address", d.ChangeAmount)
	case d.AmountIn != sent+d.ChangeAmount+d.Fee:
		return 0, nil, bad("inputs %d are not outputs %d + change %d + fee %d", d.AmountIn, sent, d.ChangeAmount, d.Fee)
	case d.AmountIn > p.TotalAtomic:
		return 0, nil, bad("spends %d, more than the plan's %d", d.AmountIn, p.TotalAtomic)
	}
	want := map[string]uint64{}
	if p.SweepTo != "" {
		if d.ChangeAmount != 0 || d.AmountIn != p.TotalAtomic {
			return 0, nil, bad("a sweep must spend all %d with no change (spends %d, change %d)", p.TotalAtomic, d.AmountIn, d.ChangeAmount)
		}
		want[p.SweepTo] = p.TotalAtomic - d.Fee
	}
	for _, o := range p.Outputs {
		want[o.Address] = o.AmountAtomic
	}
	for addr, amt := range got {
		w, ok := want[addr]
		switch {
		case !ok:
			return 0, nil, bad("pays %d to an address not in the plan", amt)
		case w != amt:
			return 0, nil, bad("pays %d to a plan address instead of %d", amt, w)
		}
	}
	if len(got) != len(want) {
		return 0, nil, bad("pays %d of the plan's %d destinations", len(got), len(want))
	}
	slices.SortFunc(outs, func(x, y PayoutOutput) int { return strings.Compare(x.Address, y.Address) })
	return d.Fee, outs, nil
}

// CheckPlanTerms checks a plan a signer is asked to sign against the terms
// it agreed to: the multisig address is its own wallet's, every
// destination is one of the terms' two addresses, and for a release,
// refund or expired payout the amounts are exactly what PlanPayout gives
// for the plan's total and fee budget (a resolve's split is the
// arbiter's). It returns a *PayoutMismatchError.
func CheckPlanTerms(p PayoutPlan, terms PayoutTerms, multisigAddress string) error {
	bad := func(format string, args ...any) error {
		return &PayoutMismatchError{Reason: fmt.Sprintf(format, args...)}
	}
	if p.MultisigAddress != multisigAddress {
		return bad("the plan spends from another multisig address than this wallet's")
	}
	named := func(a string) bool { return a == terms.VendorAddress || a == terms.BuyerRefundAddress }
	if p.SweepTo != "" && !named(p.SweepTo) {
		return bad("the plan sweeps to an address the terms do not name")
	}
	for _, o := range p.Outputs {
		if !named(o.Address) {
			return bad("the plan pays %d to an address the terms do not name", o.AmountAtomic)
		}
	}
	if p.Kind == PayoutResolve {
		return nil
	}
	want, err := PlanPayout(p.Kind, terms, p.TotalAtomic, 0, p.MultisigAddress, p.FeeBudgetAtomic)
	if err != nil {
		return bad("the terms allow no %s payout of %d: %v", p.Kind, p.TotalAtomic, err)
	}
	if want.SweepTo != p.SweepTo || !slices.Equal(want.Outputs, p.Outputs) {
		return bad("the plan's amounts are not the terms' %s", p.Kind)
	}
	return nil
}
