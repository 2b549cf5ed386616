package escrow

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPayoutRoundNames(t *testing.T) {
	for _, step := range []PayoutStep{PayoutExport, PayoutTxSet, PayoutSigned, PayoutStale} {
		got, n, ok := ParsePayoutRound(PayoutRoundName(step, 3))
		require.True(t, ok)
		assert.Equal(t, step, got)
		assert.Equal(t, 3, n)
	}
	for _, bad := range []string{"", "PAYOUT-EXPORT", "PAYOUT-EXPORT-0", "PAYOUT-EXPORT-01", "PAYOUT-EXPORT--1",
		"PAYOUT-SWEEP-1", "EXCHANGING_1", "PAYOUT-EXPORT-1x", "payout-export-1"} {
		_, _, ok := ParsePayoutRound(bad)
		assert.False(t, ok, bad)
	}
}

func TestPayoutMessageSignature(t *testing.T) {
	key := ed25519.NewKeyFromSeed([]byte(strings.Repeat("k", 32)))
	pub := key.Public().(ed25519.PublicKey)
	m := PayoutMessage{Role: "vendor", Round: PayoutRoundName(PayoutSigned, 1), Message: strings.Repeat("ab", 20),
		TxHashes: []string{strings.Repeat("cd", 32)}}
	SignPayoutMessage(key, "e1", &m)
	require.True(t, VerifyPayoutMessage(pub, "e1", m))
	for name, edit := range map[string]func(*PayoutMessage){
		"another message": func(m *PayoutMessage) { m.Message = strings.Repeat("ab", 21) },
		"another hash":    func(m *PayoutMessage) { m.TxHashes = []string{strings.Repeat("ce", 32)} },
		"no hash":         func(m *PayoutMessage) { m.TxHashes = nil },
		"another round":   func(m *PayoutMessage) { m.Round = PayoutRoundName(PayoutSigned, 2) },
		"another role":    func(m *PayoutMessage) { m.Role = "buyer" },
		"not hex":         func(m *PayoutMessage) { m.Signature = "zz" },
	} {
		c := m
		edit(&c)
		assert.False(t, VerifyPayoutMessage(pub, "e1", c), name)
	}
	assert.False(t, VerifyPayoutMessage(pub, "e2", m), "another escrow")
	// A setup round signature never verifies as a payout message.
	s := SubmitRound{Role: m.Role, Round: m.Round, Message: m.Message + "\n" + m.TxHashes[0]}
	Sign(key, "e1", &s)
	m.Signature = s.Signature
	assert.False(t, VerifyPayoutMessage(pub, "e1", m))
}

func TestCheckPayoutMessage(t *testing.T) {
	hexMsg, hash := strings.Repeat("ab", 20), strings.Repeat("cd", 32)
	require.NoError(t, CheckPayoutMessage(PayoutExport, PayoutMessage{Message: hexMsg}))
	require.NoError(t, CheckPayoutMessage(PayoutSigned, PayoutMessage{Message: hexMsg, TxHashes: []string{hash}}))
	require.NoError(t, CheckPayoutMessage(PayoutStale, PayoutMessage{Message: "sign_multisig: stale data (code -35)"}))
	for name, c := range map[string]struct {
		step PayoutStep
		m    PayoutMessage
	}{
		"short":            {PayoutExport, PayoutMessage{Message: "abab"}},
		"odd":              {PayoutExport, PayoutMessage{Message: hexMsg + "a"}},
		"upper case":       {PayoutExport, PayoutMessage{Message: strings.ToUpper(hexMsg)}},
		"not hex":          {PayoutExport, PayoutMessage{Message: "Multisig" + hexMsg}},
		"too long":         {PayoutTxSet, PayoutMessage{Message: strings.Repeat("ab", MaxPayoutMessageBytes/2+1)}},
		"hashes on export": {PayoutExport, PayoutMessage{Message: hexMsg, TxHashes: []string{hash}}},
		"no hash":          {PayoutSigned, PayoutMessage{Message: hexMsg}},
		"bad hash":         {PayoutSigned, PayoutMessage{Message: hexMsg, TxHashes: []string{hash[:62]}}},
		"empty reason":     {PayoutStale, PayoutMessage{}},
		"long reason":      {PayoutStale, PayoutMessage{Message: strings.Repeat("x", MaxStaleReasonBytes+1)}},
		"control char":     {PayoutStale, PayoutMessage{Message: "stale\ndata"}},
		"hashes on stale":  {PayoutStale, PayoutMessage{Message: "stale", TxHashes: []string{hash}}},
	} {
		assert.Error(t, CheckPayoutMessage(c.step, c.m), name)
	}
}

func TestCheckPlanTerms(t *testing.T) {
	terms := PayoutTerms{AmountAtomic: 1000, VendorAddress: "V", BuyerRefundAddress: "B"}
	release, err := PlanPayout(PayoutRelease, terms, 1250, 0, "M", 30)
	require.NoError(t, err)
	require.NoError(t, CheckPlanTerms(release, terms, "M"))
	mismatch := func(p PayoutPlan, addr, why string) {
		t.Helper()
		var pm *PayoutMismatchError
		assert.True(t, errors.As(CheckPlanTerms(p, terms, addr), &pm), why)
	}
	mismatch(release, "M2", "another multisig address")
	thief := release
	thief.Outputs = append([]PayoutOutput(nil), release.Outputs...)
	thief.Outputs[0].Address = "T"
	mismatch(thief, "M", "an address the terms do not name")
	more := release
	more.Outputs = append([]PayoutOutput(nil), release.Outputs...)
	more.Outputs[0].AmountAtomic++
	mismatch(more, "M", "not the terms' amounts")
	refund, err := PlanPayout(PayoutRefund, terms, 1250, 0, "M", 30)
	require.NoError(t, err)
	require.NoError(t, CheckPlanTerms(refund, terms, "M"))
	sweepThief := refund
	sweepThief.SweepTo = "T"
	mismatch(sweepThief, "M", "a sweep elsewhere")
	resolve, err := PlanPayout(PayoutResolve, terms, 1250, 6000, "M", 30)
	require.NoError(t, err)
	require.NoError(t, CheckPlanTerms(resolve, terms, "M"), "a resolve's split is the arbiter's")
}

func TestCheckDescribed(t *testing.T) {
	plan := PayoutPlan{Kind: PayoutRelease, MultisigAddress: "M", TotalAtomic: 1250, FeeBudgetAtomic: 30,
		Outputs: []PayoutOutput{{Address: "V", AmountAtomic: 970}, {Address: "B", AmountAtomic: 250}}}
	good := DescribedTransfer{AmountIn: 1250, Fee: 20, ChangeAddress: "M", ChangeAmount: 10,
		Recipients: []PayoutOutput{{Address: "V", AmountAtomic: 970}, {Address: "B", AmountAtomic: 250}}}
	fee, outs, err := CheckDescribed(plan, []DescribedTransfer{good})
	require.NoError(t, err)
	assert.Equal(t, uint64(20), fee)
	assert.Equal(t, []PayoutOutput{{Address: "B", AmountAtomic: 250}, {Address: "V", AmountAtomic: 970}}, outs, "sorted by address")
	for name, edit := range map[string]func(*DescribedTransfer){
		"unlock time":      func(d *DescribedTransfer) { d.UnlockTime = 5 },
		"fee over budget":  func(d *DescribedTransfer) { d.Fee, d.ChangeAmount = 31, 0; d.AmountIn = 1251 },
		"change elsewhere": func(d *DescribedTransfer) { d.ChangeAddress = "T" },
		"inputs add up":    func(d *DescribedTransfer) { d.AmountIn = 1249 },
		"another address":  func(d *DescribedTransfer) { d.Recipients[0].Address = "T" },
		"another amount":   func(d *DescribedTransfer) { d.Recipients[0].AmountAtomic, d.ChangeAmount = 960, 20 },
		"a missing output": func(d *DescribedTransfer) { d.Recipients = d.Recipients[:1]; d.ChangeAmount = 260 },
	} {
		d := good
		d.Recipients = append([]PayoutOutput(nil), good.Recipients...)
		edit(&d)
		_, _, err := CheckDescribed(plan, []DescribedTransfer{d})
		var pm *PayoutMismatchError
		assert.True(t, errors.As(err, &pm), "%s: %v", name, err)
	}
	_, _, err = CheckDescribed(plan, []DescribedTransfer{good, good})
	assert.Error(t, err, "two transactions")
}
