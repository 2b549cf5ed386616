// Package participant is a reference external participant of an escrow
// setup: a buyer or vendor that keeps its own Monero wallet and key.
//
// A participant runs its own monero-wallet-rpc (started by pid on a free
// loopback port, over its own wallet dir), holds its wallet password and
// its ed25519 key in its own directory (never sent anywhere), and takes
// part in the escrow's setup rounds through Temporal as a client: each
// round it computes its multisig message with its wallet, signs it (see
// escrow.SignedBytes) and sends it with the submitRound update, which
// answers with its peers' messages once every role's message is in.
//
// It survives its own restart at any point: the signed message of each
// round is written to its directory before it is sent, and sent again
// under the same update id after a restart (Temporal answers a repeated
// update id with the first one's result); a wallet step whose message was
// not yet recorded is redone from a snapshot of the wallet taken before it.
//
// A wallet app in Go calls Run; `escrowctl participant` is a command line
// for it.
package participant

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/pool"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/starter"
	"github.com/escrowflow/escrowflow/walletstore"
)

// Config configures Run.
type Config struct {
	// EscrowID and Role ("buyer" or "vendor") name the participant's place.
	EscrowID string
	Role     string
	// Dir holds the participant's key, wallet password, state and wallet
	// files; one directory per escrow and role.
	Dir string
	// Temporal is a client of the escrow's namespace, with the same data
	// converter (payload codec) as the worker.
	Temporal client.Client
	// WalletRPCBinary is the monero-wallet-rpc executable (default: looked
	// up in PATH); Network and DaemonAddress as in the worker's pool
	// (default testnet, offline).
	WalletRPCBinary string
	Network         string
	DaemonAddress   string
	// PeerKeys are the other external participants' public keys (role →
	// 64 hex digits), learned out of band (from the marketplace). With a
	// peer's key the participant accepts only messages that peer signed:
	// the service cannot substitute a wallet of its own for the peer's.
	// Without it, the participant trusts the service to relay its peers.
	PeerKeys map[string]string
	// RetryEvery is the wait before a send is retried after a transient
	// error or while the escrow has not started. Default: 1 s.
	RetryEvery time.Duration
	// BeforeRound, if set, is called before the participant computes a
	// round's message (a wallet app may ask its user here); an error
	// stops Run.
	BeforeRound func(ctx context.Context, round string) error
	Logger      *zap.Logger

	// afterStep, set by tests, runs after a round's wallet step and before
	// its message is recorded; an error stops Run there (a crash).
	afterStep func(round string) error
}

// Result is what Run returns once the setup is done.
type Result struct {
	// Address is the multisig address; the participant's own wallet and
	// both peers reported it.
	Address string
	// Wallet is the path of the participant's wallet (keys file without
	// its .keys suffix), to back up with its password file.
	Wallet string
}

// rounds are the rounds a participant sends a message in.
var rounds = []escrow.Round{escrow.RoundPrepare, escrow.RoundMake, escrow.RoundExchange1, escrow.RoundExchange2}

// runner is one Run.
type runner struct {
	cfg      Config
	log      *zap.Logger
	st       *state
	store    *walletstore.Store
	wallet   *rpcclient.Client
	name     string // the wallet's name in the store
	password string
	escrows  *starter.Client
}

// Run takes part in the setup of cfg.EscrowID as cfg.Role until the
// multisig wallet is made, and returns its address. It waits for the
// escrow to be started. A rejected message or a failed escrow ends it with
// an error wrapping the *temporal.ApplicationError (Type() says why).
func Run(ctx context.Context, cfg Config) (Result, error) {
	r, key, stop, err := open(ctx, cfg, true)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	for _, round := range rounds {
		if err := r.round(ctx, key, round); err != nil {
			return Result{}, err
		}
	}
	return r.finish(ctx)
}

// open checks cfg, loads the participant's key, password and state,
// starts its wallet-rpc and opens (or creates) its wallet; rewind restores
// a wallet step of the setup whose message was not recorded. stop closes
// the wallet and stops the wallet-rpc.
func open(ctx context.Context, cfg Config, rewind bool) (r *runner, key ed25519.PrivateKey, stop func(), err error) {
	if cfg.Role != string(escrow.Buyer) && cfg.Role != string(escrow.Vendor) {
		return nil, nil, nil, fmt.Errorf("participant: role %q, want buyer or vendor", cfg.Role)
	}
	if err := escrow.ValidateEscrowID(cfg.EscrowID); err != nil {
		return nil, nil, nil, err
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if key, err = LoadOrCreateKey(cfg.Dir); err != nil {
		return nil, nil, nil, err
	}
	pw, err := loadOrCreateSecret(cfg.Dir, PasswordFile, 32)
	if err != nil {
		return nil, nil, nil, err
	}
	r = &runner{cfg: cfg, password: hex.EncodeToString(pw), name: cfg.EscrowID + "." + cfg.Role,
		escrows: starter.New(cfg.Temporal),
		log:     cfg.Logger.With(zap.String("escrow_id", cfg.EscrowID), zap.String("role", cfg.Role))}
	if r.st, err = loadState(cfg.Dir, cfg.EscrowID, cfg.Role); err != nil {
		return nil, nil, nil, err
	}
	if r.store, err = walletstore.Open(filepath.Join(cfg.Dir, WalletDir)); err != nil {
		return nil, nil, nil, err
	}
	if rewind {
		if err := r.rewind(); err != nil {
			return nil, nil, nil, err
		}
	}
	p, err := pool.Start(ctx, pool.Config{Binary: cfg.WalletRPCBinary, Size: 1, WalletDir: r.store.Dir(),
		Network: cfg.Network, DaemonAddress: cfg.DaemonAddress, Login: true, Logger: r.log})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("participant: start wallet-rpc: %w", err)
	}
	lease, err := p.Acquire(ctx, r.name)
	if err != nil {
		p.Stop(context.Background())
		return nil, nil, nil, err
	}
	r.wallet = lease.Client
	if err := r.openWallet(ctx); err != nil {
		lease.Release("")
		p.Stop(context.Background())
		return nil, nil, nil, err
	}
	return r, key, func() {
		_ = r.wallet.CloseWallet(context.Background())
		lease.Release("")
		p.Stop(context.Background())
	}, nil
}

// snapshotBefore names the wallet snapshot taken before round's wallet step.
func (r *runner) snapshotBefore(round escrow.Round) string {
	return r.name + ".before-" + strings.ToLower(string(round))
}

// rewind restores the wallet from before the first round whose message is
// not recorded, if a snapshot of it exists: the participant stopped after
// its wallet took that step but before the message was written down.
func (r *runner) rewind() error {
	for _, round := range rounds {
		if _, sent := r.st.Sent[string(round)]; sent {
			continue
		}
		snap := r.snapshotBefore(round)
		if ok, err := r.store.Exists(snap); err != nil || !ok {
			return err
		}
		if err := r.store.Remove(r.name); err != nil {
			return err
		}
		_, err := r.store.Restore(snap, r.name)
		r.log.Info("wallet restored from before a round", zap.String("round", string(round)))
		return err
	}
	return nil
}

// openWallet opens the participant's wallet, or creates it on first use.
func (r *runner) openWallet(ctx context.Context) error {
	exists, err := r.store.Exists(r.name)
	if err != nil {
		return err
	}
	if !exists {
		if len(r.st.Sent) > 0 {
			return fmt.Errorf("participant: wallet %s is missing but messages were sent from it", r.name)
		}
		return r.wallet.CreateWallet(ctx, r.name, r.password)
	}
	if err := r.wallet.OpenWallet(ctx, r.name, r.password); err != nil {
		return err
	}
	// Re-enable experimental multisig, which wallet-rpc does not keep
	// across close and open.
	if _, err := r.wallet.PrepareMultisig(ctx, true); err != nil && !rpcclient.IsCode(err, rpcclient.CodeAlreadyMultisig) {
		return err
	}
	return nil
}

// round sends the participant's message of round (computing and recording
// it first unless a previous run did) and records the peers' answer.
func (r *runner) round(ctx context.Context, key ed25519.PrivateKey, round escrow.Round) error {
	if _, done := r.st.Answers[string(round)]; done {
		return nil
	}
	m, sent := r.st.Sent[string(round)]
	if !sent {
		if r.cfg.BeforeRound != nil {
			if err := r.cfg.BeforeRound(ctx, string(round)); err != nil {
				return err
			}
		}
		msg, err := r.step(ctx, round)
		if err != nil {
			return fmt.Errorf("participant: %s: %w", round, err)
		}
		if r.cfg.afterStep != nil {
			if err := r.cfg.afterStep(string(round)); err != nil {
				return err
			}
		}
		m = escrow.SubmitRound{Role: r.cfg.Role, Round: string(round), Message: msg}
		escrow.Sign(key, r.cfg.EscrowID, &m)
		r.st.Sent[string(round)] = m
		if err := r.st.save(r.cfg.Dir); err != nil {
			return err
		}
	}
	r.log.Info("round message sent", zap.String("round", string(round)), zap.Bool("resent", sent))
	res, err := r.submit(ctx, m)
	if err != nil {
		return err
	}
	if err := checkPeers(r.cfg.EscrowID, res, r.cfg.PeerKeys); err != nil {
		return err
	}
	r.st.Answers[string(round)] = res.Peers
	r.log.Info("round answered", zap.String("round", string(round)))
	return r.st.save(r.cfg.Dir)
}

// checkPeers checks an answer's messages from the peers whose keys are
// known: each must carry that peer's signature of its message.
func checkPeers(escrowID string, res escrow.SubmitRoundResult, keys map[string]string) error {
	for _, role := range escrow.Roles {
		hexKey, ok := keys[string(role)]
		if !ok {
			continue
		}
		pub, err := escrow.ParsePublicKey(hexKey)
		if err != nil {
			return fmt.Errorf("participant: the key of %s: %w", role, err)
		}
		m := escrow.SubmitRound{Role: string(role), Round: res.Round, Message: res.Peers[string(role)],
			Signature: res.Signatures[string(role)]}
		if !escrow.Verify(pub, escrowID, m) {
			return fmt.Errorf("participant: the %s message relayed as %s's does not carry %s's signature: refused",
				res.Round, role, role)
		}
	}
	return nil
}

// peers returns the peers' messages of the round before round, in role
// order.
func (r *runner) peers(round escrow.Round) []string {
	prev := rounds[0]
	for i, x := range rounds {
		if x == round && i > 0 {
			prev = rounds[i-1]
		}
	}
	var out []string
	for _, role := range escrow.Roles {
		if m, ok := r.st.Answers[string(prev)][string(role)]; ok {
			out = append(out, m)
		}
	}
	return out
}

// step runs round's wallet call and returns the message to send. A step
// that changes the wallet runs after the wallet is stored and snapshotted,
// so that a restart before its message is recorded can redo it.
func (r *runner) step(ctx context.Context, round escrow.Round) (string, error) {
	if round == escrow.RoundPrepare {
		return r.wallet.PrepareMultisig(ctx, true)
	}
	if err := r.wallet.Store(ctx); err != nil {
		return "", err
	}
	if _, err := r.store.Snapshot(r.name, r.snapshotBefore(round)); err != nil && !errors.Is(err, walletstore.ErrExists) {
		return "", err
	}
	var res rpcclient.MultisigRound
	var err error
	if round == escrow.RoundMake {
		res, err = r.wallet.MakeMultisig(ctx, r.peers(round), 2, r.password)
	} else {
		res, err = r.wallet.ExchangeMultisigKeys(ctx, r.peers(round), r.password)
	}
	if err != nil {
		return "", err
	}
	if err := r.wallet.Store(ctx); err != nil {
		return "", err
	}
	if round == escrow.RoundExchange2 {
		if res.Address == "" {
			return "", errors.New("the last exchange returned no address")
		}
		return res.Address, nil
	}
	return res.MultisigInfo, nil
}

// updateID is the same for the same message, so a resend after a restart
// is answered with the first send's result instead of being validated again.
func updateID(m escrow.SubmitRound) string {
	sum := sha256.Sum256([]byte(m.Message))
	return fmt.Sprintf("%s-%s-%s", m.Role, strings.ToLower(m.Round), hex.EncodeToString(sum[:8]))
}

// submit sends m and waits for its answer, retrying while the escrow has
// not started and after transient errors.
func (r *runner) submit(ctx context.Context, m escrow.SubmitRound) (escrow.SubmitRoundResult, error) {
	var res escrow.SubmitRoundResult
	for {
		h, err := r.cfg.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			UpdateID:     updateID(m),
			WorkflowID:   escrow.WorkflowID(r.cfg.EscrowID),
			UpdateName:   escrow.SubmitRoundUpdate,
			Args:         []any{m},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			if err = h.Get(ctx, &res); err == nil {
				return res, nil
			}
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return res, fmt.Errorf("participant: %s message of %s: %w", m.Round, r.cfg.EscrowID, err)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			if done, res, err := r.closed(ctx, m); done {
				return res, err
			}
		} else {
			r.log.Warn("round message not delivered, retrying", zap.String("round", m.Round), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(r.cfg.RetryEvery):
		}
	}
}

// closed handles an update the server could not deliver: the escrow has
// not started (done is false: wait), has failed, or has completed while
// this participant was away (its last answer is then in the result).
func (r *runner) closed(ctx context.Context, m escrow.SubmitRound) (done bool, res escrow.SubmitRoundResult, err error) {
	st, err := r.escrows.Status(ctx, r.cfg.EscrowID)
	switch {
	case errors.Is(err, starter.ErrEscrowNotFound):
		return false, res, nil
	case err != nil:
		return false, res, nil
	case st.State == escrow.StateFailed:
		return true, res, fmt.Errorf("participant: escrow %s failed: %s: %w", r.cfg.EscrowID, st.Reason,
			temporal.NewNonRetryableApplicationError(st.Reason, st.ReasonType, nil))
	case st.State == escrow.StateCompleted && m.Round == string(escrow.RoundExchange2) && len(r.cfg.PeerKeys) > 0:
		// The result carries no signatures to check the peers' addresses by.
		return true, res, fmt.Errorf("participant: escrow %s completed without this participant's last answer; "+
			"compare its multisig address with the peers' yourself", r.cfg.EscrowID)
	case st.State == escrow.StateCompleted && m.Round == string(escrow.RoundExchange2):
		out, err := r.escrows.Result(ctx, r.cfg.EscrowID)
		if err != nil {
			return true, res, err
		}
		res = escrow.SubmitRoundResult{Round: m.Round, Peers: map[string]string{}}
		for _, role := range escrow.Roles {
			if string(role) != r.cfg.Role {
				res.Peers[string(role)] = out.Wallets[role].Address
			}
		}
		return true, res, nil
	}
	return false, res, nil
}

// finish checks the result: the participant's wallet is a ready 2-of-3
// multisig wallet, and both peers reported its address.
func (r *runner) finish(ctx context.Context) (Result, error) {
	own := r.st.Sent[string(escrow.RoundExchange2)].Message
	for role, addr := range r.st.Answers[string(escrow.RoundExchange2)] {
		if addr != own {
			return Result{}, fmt.Errorf("participant: %s reports multisig address %s, this wallet %s", role, addr, own)
		}
	}
	st, err := r.wallet.IsMultisig(ctx)
	if err != nil {
		return Result{}, err
	}
	if !st.Multisig || !st.Ready || st.Threshold != 2 || st.Total != 3 {
		return Result{}, fmt.Errorf("participant: wallet is not a ready 2-of-3 multisig wallet: %+v", st)
	}
	addr, err := r.wallet.GetAddress(ctx)
	if err != nil {
		return Result{}, err
	}
	if addr != own {
		return Result{}, fmt.Errorf("participant: wallet reports %s, the exchange returned %s", addr, own)
	}
	r.log.Info("multisig wallet ready")
	return Result{Address: addr, Wallet: filepath.Join(r.store.Dir(), r.name)}, nil
}
