package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/participant"
)

// External configures the demo's trade with external custody: its buyer
// and vendor are reference participants (package participant) run by the
// demo, each with its own directory, key and monero-wallet-rpc; the worker
// holds only the arbiter's wallet.
type External struct {
	// ID is the trade's escrow id.
	ID string
	// Dir holds the participants' directories, Dir/<id>/<role>.
	Dir string
	// Temporal is a client with the worker's data converter.
	Temporal client.Client
	// WalletRPCBinary is the participants' monero-wallet-rpc.
	WalletRPCBinary string
	Logger          *zap.Logger
}

const externalDecision = "release (buyer and vendor external)"

// ExternalID returns the escrow id of the external trade:
// <prefix>-<YYYYMMDD-HHMMSS>-<tag>-external.
func ExternalID(prefix string, now time.Time, tag string) string {
	return fmt.Sprintf("%s-%s-%s-external", prefix, now.UTC().Format("20060102-150405"), tag)
}

type partResult struct {
	role escrow.Role
	err  error
}

func (r *run) participantDir(role escrow.Role) string {
	return filepath.Join(r.External.Dir, r.External.ID, string(role))
}

// externalCustody makes buyer and vendor of in external, with the public
// keys of their participants (created in their directories).
func (r *run) externalCustody(in *escrow.TradeInput) error {
	in.Custody, in.Participants = map[escrow.Role]escrow.Custody{}, map[escrow.Role]escrow.Participant{}
	for _, role := range []escrow.Role{escrow.Buyer, escrow.Vendor} {
		pub, err := participant.PublicKey(r.participantDir(role))
		if err != nil {
			return err
		}
		in.Custody[role] = escrow.CustodyExternal
		in.Participants[role] = escrow.Participant{PublicKey: pub}
	}
	return nil
}

// startParticipants runs the buyer's and the vendor's participant in the
// background: the setup rounds, then the trade's payout, each checked
// against the terms they agreed to.
func (r *run) startParticipants(ctx context.Context, t *tradeRun) {
	log := r.External.Logger
	if log == nil {
		log = zap.NewNop()
	}
	terms := escrow.PayoutTerms{AmountAtomic: r.AmountAtomic, VendorAddress: t.vendor.address, BuyerRefundAddress: t.buyer.address}
	for _, role := range []escrow.Role{escrow.Buyer, escrow.Vendor} {
		ch := make(chan partResult, 1)
		r.parts = append(r.parts, ch)
		cfg := participant.Config{EscrowID: t.id, Role: string(role), Dir: r.participantDir(role), Temporal: r.External.Temporal,
			WalletRPCBinary: r.External.WalletRPCBinary, Network: "regtest", DaemonAddress: r.DaemonAddress,
			Logger: log.With(zap.String("participant", string(role)))}
		go func() {
			res, err := participant.Run(ctx, cfg)
			if err == nil {
				r.progress("%s  %s's own wallet (participant) is ready: %s…", t.id, role, short(res.Address))
				_, err = participant.Trade(ctx, participant.TradeConfig{Config: cfg, Terms: terms, PollEvery: r.Poll})
			}
			ch <- partResult{role, err}
		}()
	}
	r.progress("%s  started the buyer's and the vendor's participants (own keys, own wallet-rpc, dirs under %s)", t.id, r.External.Dir)
}

// participantsDone waits for the participants and returns the first error.
func (r *run) participantsDone(ctx context.Context) error {
	for _, ch := range r.parts {
		select {
		case p := <-ch:
			if p.err != nil {
				return fmt.Errorf("the %s participant: %w", p.role, p.err)
			}
			r.progress("%s participant: done", p.role)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("a participant did not end within 5 minutes of the payout")
		}
	}
	r.parts = nil
	return nil
}
