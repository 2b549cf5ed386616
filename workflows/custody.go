package workflows

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/escrowflow/escrowflow/activities"
	"github.com/escrowflow/escrowflow/escrow"
)

// custodyChange names the change that reads the custody fields of the
// input. A run started with such fields before it ran all roles hosted and
// keeps doing so on replay; only runs that record this version honour them.
const custodyChange = "external-custody"

// messageRounds are the rounds in which an external participant sends a
// message, in order: the three multisig infos, then the address its last
// exchange returned. It creates its wallet and checks the result itself.
var messageRounds = []escrow.Round{escrow.RoundPrepare, escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2}

func messageRound(r escrow.Round) int {
	for i, m := range messageRounds {
		if m == r {
			return i
		}
	}
	return -1
}

func roleIndex(role string) int {
	for i, r := range escrow.Roles {
		if string(r) == role {
			return i
		}
	}
	return -1
}

// custody is the state of an escrow's external participants.
type custody struct {
	external [3]bool
	keys     [3]ed25519.PublicKey
	deadline time.Duration
	// next is the index in messageRounds of the round the escrow waits
	// for from each external role.
	next [3]int
	// msgs holds every role's message per message round: an external
	// role's when its update is accepted, a hosted role's when the round
	// ends.
	msgs    [4][3]string
	sigs    [4][3]string // the external roles' signatures of msgs
	arrived [4][3]time.Time
	seen    map[[32]byte]bool // digests of every message in msgs
	// over is set once the escrow has ended, successfully or not.
	over       bool
	overReason string
	overType   string
}

// any reports whether any role is external.
func (c *custody) any() bool { return c.external[0] || c.external[1] || c.external[2] }

// hasCustody reports whether in carries any custody field.
func hasCustody(in escrow.SetupInput) bool {
	return len(in.Custody) > 0 || len(in.Participants) > 0 || in.ParticipantDeadline != ""
}

// parseCustody checks the custody fields of in: roles buyer or vendor may
// be external, each external role with its public key; the arbiter is
// always hosted.
func parseCustody(in escrow.SetupInput) (custody, error) {
	c := custody{deadline: escrow.DefaultParticipantDeadline, seen: map[[32]byte]bool{}}
	for _, role := range sortedKeys(in.Custody) {
		mode := in.Custody[role]
		i := roleIndex(string(role))
		switch {
		case i < 0:
			return c, fmt.Errorf("custody: unknown role %q", role)
		case mode != escrow.CustodyHosted && mode != escrow.CustodyExternal:
			return c, fmt.Errorf("custody of %s is %q, want %q or %q", role, mode, escrow.CustodyHosted, escrow.CustodyExternal)
		case role == escrow.Arbiter && mode != escrow.CustodyHosted:
			return c, fmt.Errorf("custody of the arbiter is always %q", escrow.CustodyHosted)
		}
		c.external[i] = mode == escrow.CustodyExternal
	}
	for _, role := range sortedKeys(in.Participants) {
		p := in.Participants[role]
		i := roleIndex(string(role))
		if i < 0 || !c.external[i] {
			return c, fmt.Errorf("participants: %q is not an external role", role)
		}
		key, err := escrow.ParsePublicKey(p.PublicKey)
		if err != nil {
			return c, fmt.Errorf("participants.%s: %w", role, err)
		}
		c.keys[i] = key
	}
	for i, role := range escrow.Roles {
		if c.external[i] && c.keys[i] == nil {
			return c, fmt.Errorf("participants.%s.publicKey is missing for an external role", role)
		}
	}
	if in.ParticipantDeadline != "" {
		d, err := time.ParseDuration(in.ParticipantDeadline)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("participantDeadline %q is not a positive Go duration", in.ParticipantDeadline)
		}
		c.deadline = d
	}
	return c, nil
}

// sortedKeys returns m's keys in order (workflow code never depends on map
// iteration order, not even for which error it reports first).
func sortedKeys[V any](m map[escrow.Role]V) []escrow.Role {
	keys := make([]escrow.Role, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	return keys
}

// startCustody reads the custody fields of a new run (see custodyChange).
func (s *setup) startCustody(in escrow.SetupInput) error {
	s.custody = custody{seen: map[[32]byte]bool{}}
	if !hasCustody(in) || workflow.GetVersion(s.ctx, custodyChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	c, err := parseCustody(in)
	if err != nil {
		return err
	}
	s.custody = c
	return nil
}

func rejected(typ, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), typ, nil)
}

// validateRound is the submitRound validator: a message it rejects leaves
// no trace in history.
func (s *setup) validateRound(m escrow.SubmitRound) error {
	c := &s.custody
	i := roleIndex(m.Role)
	if i < 0 || !c.external[i] {
		return rejected(escrow.TypeNotExternalRole, "role %q is not an external participant of escrow %s", m.Role, s.status.EscrowID)
	}
	if ri := messageRound(escrow.Round(m.Round)); ri >= 0 && c.msgs[ri][i] != "" {
		return rejected(escrow.TypeReplayedMessage, "%s's %s message was already accepted", m.Role, m.Round)
	}
	if c.seen[sha256.Sum256([]byte(m.Message))] {
		return rejected(escrow.TypeReplayedMessage, "this message was already accepted")
	}
	switch {
	case c.over:
		return rejected(escrow.TypeWrongRound, "the escrow setup has ended (%s)", s.status.State)
	case c.next[i] >= len(messageRounds):
		return rejected(escrow.TypeWrongRound, "no further round is expected from %s", m.Role)
	case m.Round != string(messageRounds[c.next[i]]):
		return rejected(escrow.TypeWrongRound, "round %q, want %s from %s", m.Round, messageRounds[c.next[i]], m.Role)
	}
	if err := escrow.CheckRoundMessage(escrow.Round(m.Round) == escrow.RoundExchange2, m.Message); err != nil {
		return rejected(escrow.TypeMalformedMessage, "%s", err)
	}
	if !escrow.Verify(c.keys[i], s.status.EscrowID, m) {
		return rejected(escrow.TypeBadSignature, "the signature does not verify with %s's public key", m.Role)
	}
	return nil
}

// submitRound is the submitRound handler: it records the message, waits
// until every role's message of that round is in, and answers the peers'.
func (s *setup) submitRound(ctx workflow.Context, m escrow.SubmitRound) (escrow.SubmitRoundResult, error) {
	c := &s.custody
	i, ri := roleIndex(m.Role), messageRound(escrow.Round(m.Round))
	c.msgs[ri][i], c.sigs[ri][i] = m.Message, m.Signature
	c.arrived[ri][i] = workflow.Now(ctx)
	c.remember(escrow.Round(m.Round), m.Message)
	c.next[i] = ri + 1
	s.status.Roles[escrow.Roles[i]] = escrow.RoleStatus{Round: escrow.Round(m.Round), Step: "done", Custody: escrow.CustodyExternal}
	if err := workflow.Await(ctx, func() bool { return c.complete(ri) || c.over }); err != nil {
		return escrow.SubmitRoundResult{}, err
	}
	if !c.complete(ri) {
		return escrow.SubmitRoundResult{}, temporal.NewNonRetryableApplicationError(
			"escrow setup ended: "+c.overReason, c.overType, nil)
	}
	res := escrow.SubmitRoundResult{Round: m.Round, Peers: map[string]string{}}
	for j, role := range escrow.Roles {
		if j == i {
			continue
		}
		res.Peers[string(role)] = c.msgs[ri][j]
		if c.sigs[ri][j] != "" {
			if res.Signatures == nil {
				res.Signatures = map[string]string{}
			}
			res.Signatures[string(role)] = c.sigs[ri][j]
		}
	}
	return res, nil
}

// complete reports whether every role's message of message round ri is in.
func (c *custody) complete(ri int) bool {
	return c.msgs[ri][0] != "" && c.msgs[ri][1] != "" && c.msgs[ri][2] != ""
}

// externalsIn reports whether every external role's message of message
// round ri is in.
func (c *custody) externalsIn(ri int) bool {
	for i := range escrow.Roles {
		if c.external[i] && c.msgs[ri][i] == "" {
			return false
		}
	}
	return true
}

// missing names the external roles whose message of round ri is not in.
func (c *custody) missing(ri int) string {
	var out []string
	for i, role := range escrow.Roles {
		if c.external[i] && c.msgs[ri][i] == "" {
			out = append(out, string(role))
		}
	}
	return strings.Join(out, ", ")
}

// awaitExternal returns a future that is ready once every external role's
// message of round r is in (nil), when stop reports true (nil), or after
// the participant deadline (a ParticipantTimeout error).
func (s *setup) awaitExternal(r escrow.Round, stop func() bool) workflow.Future {
	ctx := s.ctx
	f, set := workflow.NewFuture(ctx)
	ri := messageRound(r)
	workflow.Go(ctx, func(ctx workflow.Context) {
		ok, err := workflow.AwaitWithTimeout(ctx, s.custody.deadline, func() bool {
			return s.custody.externalsIn(ri) || stop()
		})
		if err == nil && !ok {
			err = temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("no %s message from %s within %s", r, s.custody.missing(ri), s.custody.deadline),
				escrow.TypeParticipantTimeout, nil)
		}
		set.Set(nil, err)
	})
	return f
}

// externalOutput is what round r yields for external role i: its message
// as the round's multisig info or, in the last exchange, as its address.
// For VERIFYING it is the participant's report of its own wallet: a ready
// 2-of-3 wallet at the address it sent (the workflow cannot open that
// wallet; the participant checks its peers' addresses itself).
func (s *setup) externalOutput(r escrow.Round, i int) activities.StepOutput {
	c := &s.custody
	switch r {
	case escrow.RoundExchange2:
		return activities.StepOutput{Address: c.msgs[messageRound(r)][i]}
	case escrow.RoundVerify:
		return activities.StepOutput{Multisig: true, Ready: true, Threshold: escrow.Threshold,
			Total: escrow.Total, Address: c.msgs[messageRound(escrow.RoundExchange2)][i]}
	}
	if ri := messageRound(r); ri >= 0 {
		return activities.StepOutput{MultisigInfo: c.msgs[ri][i]}
	}
	return activities.StepOutput{}
}

// recordHosted puts the hosted roles' messages of round r next to the
// external ones, which completes the round for the waiting updates.
func (s *setup) recordHosted(r escrow.Round, outs [3]activities.StepOutput) {
	c := &s.custody
	ri := messageRound(r)
	if ri < 0 || !c.any() {
		return
	}
	for i := range escrow.Roles {
		if c.external[i] {
			continue
		}
		m := outs[i].MultisigInfo
		if r == escrow.RoundExchange2 {
			m = outs[i].Address
		}
		c.msgs[ri][i] = m
		c.remember(r, m)
	}
}

// remember records the digest of an accepted multisig info: no role may
// send it again. The last exchange's message, the address, is the same for
// every role by design and is not remembered.
func (c *custody) remember(r escrow.Round, message string) {
	if r != escrow.RoundExchange2 {
		c.seen[sha256.Sum256([]byte(message))] = true
	}
}

// end marks the custody exchange over and lets waiting updates answer.
func (s *setup) end(reason, reasonType string) {
	s.custody.over, s.custody.overReason, s.custody.overType = true, reason, reasonType
}
