package workflows

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// payoutX is one payout attempt in which buyer or vendor signs with its
// own wallet: the workflow relays the signers' multisig infos and the
// creator's txset (checked by a hosted wallet first) through payoutRound
// updates, and hosted signers take their steps as activities.
type payoutX struct {
	attempt           int
	creator, cosigner escrow.Role
	plan              escrow.PayoutPlan
	info              map[escrow.Role]string // the signers' exported multisig infos
	txset             string                 // the creator's set
	verified          bool                   // txset checked against the plan by a hosted wallet
	signed            *escrow.PayoutMessage  // the co-signer's SIGNED message
	txHash            string                 // the submitted payout
	accepted          map[string]bool        // role + "/" + step
	stale             string                 // a signer's STALE reason: the attempt ends NoncesSpent
	ended             error                  // why the attempt ended without a payout
}

// external reports whether role keeps its own wallet.
func (t *trade) external(role escrow.Role) bool {
	i := roleIndex(string(role))
	return i >= 0 && t.custody.external[i]
}

// submitter is the hosted role whose wallet relays the signed payout: the
// co-signer, or the arbiter when the co-signer is external.
func (t *trade) submitter(cosigner escrow.Role) escrow.Role {
	if t.external(cosigner) {
		return escrow.Arbiter
	}
	return cosigner
}

// sign has the two signers create and co-sign plan: as activities when
// both are hosted, through payoutRound messages for an external signer.
func (t *trade) sign(creator, cosigner escrow.Role, plan escrow.PayoutPlan, attempt int) (activities.SignPayoutOutput, error) {
	if !t.external(creator) && !t.external(cosigner) {
		return t.createAndSign(creator, cosigner, plan, attempt)
	}
	px := &payoutX{attempt: attempt + 1, creator: creator, cosigner: cosigner, plan: plan,
		info: map[escrow.Role]string{}, accepted: map[string]bool{}}
	t.px = px
	t.status.Payout.Creator, t.status.Payout.Cosigner, t.status.Payout.Attempt = creator, cosigner, px.attempt
	out, err := t.signWithExternal(px)
	if err != nil {
		px.ended = err
	}
	return out, err
}

// signWithExternal runs one attempt: fresh multisig infos from both
// signers (exported by a hosted one, sent by an external one) and
// imported by the hosted ones; the creator's set (created by a hosted
// creator, or sent by an external one and checked by the arbiter's
// wallet); the co-signer's signature (SignPayout, or its SIGNED message).
func (t *trade) signWithExternal(px *payoutX) (activities.SignPayoutOutput, error) {
	signers := [2]escrow.Role{px.creator, px.cosigner}
	outs, err := t.hostedStep(t.ctx, signers, a.ExportMultisig, func(int) []string { return nil })
	if err != nil {
		return activities.SignPayoutOutput{}, err
	}
	for i, role := range signers {
		if !t.external(role) {
			px.info[role] = outs[i].Info
		}
	}
	for _, role := range signers {
		if err := t.awaitSigner(role, "multisig info", func() bool { return px.info[role] != "" }); err != nil {
			return activities.SignPayoutOutput{}, err
		}
	}
	if _, err := t.hostedStep(t.ctx, signers, a.ImportMultisig, func(i int) []string { return []string{px.info[signers[1-i]]} }); err != nil {
		return activities.SignPayoutOutput{}, err
	}

	ctx := t.hostOptions(t.ctx, TradeStepOptions)
	var checked activities.VerifyPayoutOutput
	if !t.external(px.creator) {
		in := activities.CreatePayoutInput{EscrowID: t.in.EscrowID, Role: string(px.creator), Snapshot: t.snapshots[px.creator], Plan: px.plan}
		var created activities.CreatePayoutOutput
		if err := workflow.ExecuteActivity(ctx, a.CreatePayout, in).Get(ctx, &created); err != nil {
			return activities.SignPayoutOutput{}, err
		}
		t.snapshots[px.creator] = created.Snapshot
		px.txset, checked = created.TxSet, activities.VerifyPayoutOutput{FeeAtomic: created.FeeAtomic, Outputs: created.Outputs}
	} else {
		if err := t.awaitSigner(px.creator, "txset", func() bool { return px.txset != "" }); err != nil {
			return activities.SignPayoutOutput{}, err
		}
		in := activities.SignPayoutInput{EscrowID: t.in.EscrowID, Role: string(escrow.Arbiter),
			Snapshot: t.snapshots[escrow.Arbiter], TxSet: px.txset, Plan: px.plan}
		if err := workflow.ExecuteActivity(ctx, a.VerifyPayout, in).Get(ctx, &checked); err != nil {
			return activities.SignPayoutOutput{}, err
		}
	}
	px.verified = true

	if !t.external(px.cosigner) {
		in := activities.SignPayoutInput{EscrowID: t.in.EscrowID, Role: string(px.cosigner), Snapshot: t.snapshots[px.cosigner],
			TxSet: px.txset, Plan: px.plan}
		var signed activities.SignPayoutOutput
		if err := workflow.ExecuteActivity(ctx, a.SignPayout, in).Get(ctx, &signed); err != nil {
			return activities.SignPayoutOutput{}, err
		}
		t.snapshots[px.cosigner] = signed.Snapshot
		return signed, nil
	}
	if err := t.awaitSigner(px.cosigner, "signature", func() bool { return px.signed != nil }); err != nil {
		return activities.SignPayoutOutput{}, err
	}
	return activities.SignPayoutOutput{SignedTxSet: px.signed.Message, TxHashes: px.signed.TxHashes,
		FeeAtomic: checked.FeeAtomic, Outputs: checked.Outputs}, nil
}

// hostedStep runs activity for the hosted ones of the two signers in
// parallel, waits for all, and records their snapshots; it returns the
// first error.
func (t *trade) hostedStep(ctx workflow.Context, signers [2]escrow.Role, activity any, peers func(i int) []string) ([2]activities.PayoutStepOutput, error) {
	ctx = t.hostOptions(ctx, TradeStepOptions)
	var outs [2]activities.PayoutStepOutput
	var futures [2]workflow.Future
	for i, role := range signers {
		if !t.external(role) {
			in := activities.PayoutStepInput{EscrowID: t.in.EscrowID, Role: string(role), Snapshot: t.snapshots[role], PeerInfos: peers(i)}
			futures[i] = workflow.ExecuteActivity(ctx, activity, in)
		}
	}
	var first error
	for i, role := range signers {
		if futures[i] == nil {
			continue
		}
		if err := futures[i].Get(ctx, &outs[i]); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		t.snapshots[role] = outs[i].Snapshot
	}
	return outs, first
}

// awaitSigner waits until ready reports true, at most the payout deadline;
// then the trade fails ParticipantTimeout. A signer's STALE message ends
// the wait and the attempt: NoncesSpent, and the payout exchanges again.
func (t *trade) awaitSigner(role escrow.Role, what string, ready func() bool) error {
	px := t.px
	ok, err := workflow.AwaitWithTimeout(t.ctx, t.timing.PayoutDeadline, func() bool { return ready() || px.stale != "" })
	if err != nil {
		return err
	}
	if px.stale != "" {
		return temporal.NewNonRetryableApplicationError("the multisig infos of attempt "+fmt.Sprint(px.attempt)+
			" cannot sign: "+px.stale, escrow.TypeNoncesSpent, nil)
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("no %s from %s within %s", what, role, t.timing.PayoutDeadline),
			escrow.TypeParticipantTimeout, nil)
	}
	return nil
}

// validatePayoutRound is the payoutRound validator: a message it rejects
// leaves no trace in history.
func (t *trade) validatePayoutRound(m escrow.PayoutMessage) error {
	px, role := t.px, escrow.Role(m.Role)
	if !t.external(role) {
		return rejected(escrow.TypeNotExternalRole, "role %q is not an external participant of escrow %s", m.Role, t.in.EscrowID)
	}
	step, attempt, ok := escrow.ParsePayoutRound(m.Round)
	switch {
	case !ok:
		return rejected(escrow.TypeWrongRound, "round %q is not PAYOUT-<EXPORT|TXSET|SIGNED|STALE>-<attempt>", m.Round)
	case px == nil || px.ended != nil || t.done:
		return rejected(escrow.TypeWrongRound, "no payout waits for signatures (the trade is %s)", t.status.State)
	case px.stale != "":
		return rejected(escrow.TypeWrongRound, "payout attempt %d is ending: %s", px.attempt, px.stale)
	case attempt != px.attempt:
		return rejected(escrow.TypeWrongRound, "attempt %d, the payout is at attempt %d", attempt, px.attempt)
	case role != px.creator && role != px.cosigner:
		return rejected(escrow.TypeWrongRound, "%s does not sign this payout (%s creates, %s co-signs)", role, px.creator, px.cosigner)
	case px.accepted[m.Role+"/"+string(step)]:
		return rejected(escrow.TypeReplayedMessage, "%s's %s message was already accepted", role, m.Round)
	case step == escrow.PayoutTxSet && role != px.creator, step == escrow.PayoutSigned && role != px.cosigner:
		return rejected(escrow.TypeWrongRound, "%s sends no %s message in this payout", role, step)
	case step != escrow.PayoutExport && !px.accepted[m.Role+"/"+string(escrow.PayoutExport)]:
		return rejected(escrow.TypeWrongRound, "%s's %s message comes first", role, escrow.PayoutExport)
	case step == escrow.PayoutTxSet && px.info[px.cosigner] == "":
		return rejected(escrow.TypeWrongRound, "the co-signer's multisig info is not in yet")
	case step == escrow.PayoutSigned && !px.verified:
		return rejected(escrow.TypeWrongRound, "there is no checked txset to sign yet")
	case step == escrow.PayoutStale && (px.accepted[m.Role+"/"+string(escrow.PayoutTxSet)] || px.accepted[m.Role+"/"+string(escrow.PayoutSigned)]):
		return rejected(escrow.TypeWrongRound, "%s already took its step of attempt %d", role, px.attempt)
	}
	if err := escrow.CheckPayoutMessage(step, m); err != nil {
		return rejected(escrow.TypeMalformedMessage, "%s", err)
	}
	if step != escrow.PayoutStale && t.payoutSeen[sha256.Sum256([]byte(m.Message))] {
		return rejected(escrow.TypeReplayedMessage, "this message was already accepted")
	}
	if !escrow.VerifyPayoutMessage(t.custody.keys[roleIndex(m.Role)], t.in.EscrowID, m) {
		return rejected(escrow.TypeBadSignature, "the signature does not verify with %s's public key", role)
	}
	return nil
}

// payoutRound is the payoutRound handler: it records the message and
// answers once what the signer needs next is there (see escrow.PayoutStep).
func (t *trade) payoutRound(ctx workflow.Context, m escrow.PayoutMessage) (escrow.PayoutRoundResult, error) {
	// Two messages accepted in one workflow task both passed the validator.
	if err := t.validatePayoutRound(m); err != nil {
		return escrow.PayoutRoundResult{}, err
	}
	px, role := t.px, escrow.Role(m.Role)
	step, _, _ := escrow.ParsePayoutRound(m.Round)
	px.accepted[m.Role+"/"+string(step)] = true
	res := escrow.PayoutRoundResult{Round: m.Round, Creator: px.creator, Cosigner: px.cosigner, Plan: px.plan}
	if step == escrow.PayoutStale {
		px.stale = m.Role + ": " + m.Message
		return res, nil
	}
	t.payoutSeen[sha256.Sum256([]byte(m.Message))] = true
	switch step {
	case escrow.PayoutExport:
		px.info[role] = m.Message
	case escrow.PayoutTxSet:
		px.txset = m.Message
	case escrow.PayoutSigned:
		px.signed = &m
	}
	peer := px.cosigner
	if role == px.cosigner {
		peer = px.creator
	}
	ready := func() bool {
		switch step {
		case escrow.PayoutExport:
			return px.info[peer] != "" && (role == px.creator || px.verified)
		case escrow.PayoutTxSet:
			return px.verified
		}
		return px.txHash != ""
	}
	// A STALE from either signer ends the attempt: what is still waiting
	// gets NoncesSpent, not an answer of the dead attempt.
	if err := workflow.Await(ctx, func() bool { return ready() || px.ended != nil || t.done || px.stale != "" }); err != nil {
		return escrow.PayoutRoundResult{}, err
	}
	if !ready() || px.stale != "" {
		reason, typ := "the trade ended", escrow.TypeWrongRound
		var appErr *temporal.ApplicationError
		switch {
		case px.stale != "":
			reason, typ = "a signer cannot sign with its infos: "+px.stale, escrow.TypeNoncesSpent
		case errors.As(px.ended, &appErr):
			reason, typ = appErr.Message(), appErr.Type()
		}
		return escrow.PayoutRoundResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("payout attempt %d ended: %s", px.attempt, reason), typ, nil)
	}
	res.PeerInfo = px.info[peer]
	switch {
	case step == escrow.PayoutExport && role == px.cosigner:
		res.TxSet = px.txset
	case step == escrow.PayoutSigned:
		res.TxHash = px.txHash
	}
	return res, nil
}
