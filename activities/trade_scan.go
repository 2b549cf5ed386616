package activities

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"filippo.io/edwards25519"
	"go.uber.org/zap"

	"github.com/escrowflow/escrowflow/chainscan"
	"github.com/escrowflow/escrowflow/escrow"
	"github.com/escrowflow/escrowflow/rpcclient"
	"github.com/escrowflow/escrowflow/walletstore"
)

// The deposit scan's files, next to the escrow's wallets and its payout
// records (named by the escrow's prefix; like the records, nothing removes
// them when the trade ends):
//
//   - <escrowId>.<role>.viewkey: the multisig wallet's private view key,
//     AES-GCM under a key derived from the role's wallet password;
//   - <escrowId>.<role>.depositscan.json: the scan's progress
//     (chainscan.State: the next height, the last block's hash, the
//     outputs found), replaced atomically after each scan.

func viewKeyName(escrowID, role string) string { return escrowPrefix(escrowID) + role + ".viewkey" }

func scanStateName(escrowID, role string) string {
	return escrowPrefix(escrowID) + role + ".depositscan.json"
}

// scanDeposit brings the escrow's deposit scan up to the chain's tip.
func (a *Activities) scanDeposit(ctx context.Context, src chainscan.Source, addr chainscan.Address, in DepositCheckInput,
	log *zap.Logger) (escrow.DepositStatus, uint64, error) {
	view, err := a.viewKey(ctx, in, addr, log)
	if err != nil {
		return escrow.DepositStatus{}, 0, err
	}
	var st chainscan.State
	name := scanStateName(in.EscrowID, in.Role)
	if _, err := a.readRecord(name, &st); err != nil {
		return escrow.DepositStatus{}, 0, err
	}
	st, res, err := chainscan.Scan(ctx, src, addr, view, st)
	if err != nil {
		return escrow.DepositStatus{}, 0, err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return escrow.DepositStatus{}, 0, err
	}
	if err := walletstore.AtomicWriteFile(a.recordPath(name), b, 0o600); err != nil {
		return escrow.DepositStatus{}, 0, err
	}
	return escrow.DepositStatus{ReceivedAtomic: res.Received, Confirmations: res.Confirmations, TxIDs: res.TxIDs}, res.Unlocked, nil
}

// viewKey returns the escrow's private view key: from its file, or, the
// first time, from a throwaway copy of the committed snapshot opened in a
// leased wallet-rpc process (query_key), closed without saving and
// removed. The key must be the multisig address's.
func (a *Activities) viewKey(ctx context.Context, in DepositCheckInput, addr chainscan.Address, log *zap.Logger) (*edwards25519.Scalar, error) {
	password, err := a.passwords.For(in.EscrowID, in.Role)
	if err != nil {
		return nil, err
	}
	aead := viewKeyCipher(password)
	path := a.recordPath(viewKeyName(in.EscrowID, in.Role))
	sealed, err := os.ReadFile(path)
	if err == nil {
		n := aead.NonceSize()
		if len(sealed) < n {
			return nil, fmt.Errorf("view key file: %w", walletstore.ErrCorrupt)
		}
		key, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(in.EscrowID))
		if err != nil {
			return nil, fmt.Errorf("view key file: %w: %w", walletstore.ErrCorrupt, err)
		}
		return viewScalar(key, addr)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	hexKey, err := a.queryViewKey(ctx, in, password, log)
	if err != nil {
		return nil, err
	}
	return a.recordViewKey(in.EscrowID, in.Role, password, hexKey, addr)
}

// RecordViewKey stores an escrow's private view key (hex) for the deposit
// scans of role's CheckDeposit, as the first scan does after reading it
// from the wallet: for a worker that learns the key another way (the
// waiting-trades measurement, which skips the setup). The key must be the
// multisig address's.
func (a *Activities) RecordViewKey(escrowID, role, multisigAddress, hexKey string) error {
	if err := escrow.ValidateEscrowID(escrowID); err != nil {
		return err
	}
	addr, err := chainscan.ParseAddress(multisigAddress)
	if err != nil {
		return &escrow.InvalidInputError{Field: "multisigAddress", Value: err.Error()}
	}
	password, err := a.passwords.For(escrowID, role)
	if err != nil {
		return err
	}
	_, err = a.recordViewKey(escrowID, role, password, hexKey, addr)
	return err
}

func (a *Activities) recordViewKey(escrowID, role, password, hexKey string, addr chainscan.Address) (*edwards25519.Scalar, error) {
	key, err := hex.DecodeString(hexKey)
	if err != nil {
		return nil, errors.New("a view key that is not hex")
	}
	view, err := viewScalar(key, addr)
	if err != nil {
		return nil, err
	}
	aead := viewKeyCipher(password)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	path := a.recordPath(viewKeyName(escrowID, role))
	if err := walletstore.AtomicWriteFile(path, aead.Seal(nonce, nonce, key, []byte(escrowID)), 0o600); err != nil {
		return nil, err
	}
	return view, nil
}

// viewScalar checks that key is the private view key of addr.
func viewScalar(key []byte, addr chainscan.Address) (*edwards25519.Scalar, error) {
	s, err := edwards25519.NewScalar().SetCanonicalBytes(key)
	if err != nil || new(edwards25519.Point).ScalarBaseMult(s).Equal(addr.View) != 1 {
		return nil, &escrow.InvalidInputError{Field: "wallet", Value: "its view key is not the multisig address's"}
	}
	return s, nil
}

func viewKeyCipher(password string) cipher.AEAD {
	k := sha256.Sum256([]byte("escrowflow deposit view key\x00" + password))
	block, _ := aes.NewCipher(k[:])
	aead, _ := cipher.NewGCM(block)
	return aead
}

// viewKeyReader is the wallet call that reads the view key.
type viewKeyReader interface {
	QueryViewKey(ctx context.Context) (string, error)
}

// queryViewKey opens a throwaway copy of the committed snapshot and reads
// its private view key.
func (a *Activities) queryViewKey(ctx context.Context, in DepositCheckInput, password string, log *zap.Logger) (key string, err error) {
	lk := leaseKey(in.EscrowID, in.Role) + "/check"
	lease, err := a.leases.Acquire(ctx, lk)
	if err != nil {
		return "", err
	}
	r := &run{a: a, in: StepInput{EscrowID: in.EscrowID, Role: in.Role}, w: lease.Wallet(), password: password, log: log}
	working := workName(in.EscrowID, in.Role, "check-"+attemptTag(ctx))
	opened := false
	defer func() {
		if opened {
			if cerr := r.w.DropWallet(context.WithoutCancel(ctx)); cerr != nil {
				log.Warn("close wallet failed", zap.Error(cerr))
				lease.Discard()
				lease = nil
			}
		}
		if lease != nil {
			lease.Release("")
		}
		a.leases.Forget(lk)
		if rerr := a.store.Remove(working); rerr != nil {
			log.Warn("throwaway wallet not removed", zap.String("wallet", working), zap.Error(rerr))
		}
		if err != nil {
			err = a.diskFault(err)
		}
	}()
	w, ok := r.w.(viewKeyReader)
	if !ok {
		return "", errors.New("this worker's wallet client cannot read a view key")
	}
	if lease.State() == "" {
		// Whatever another key left open there is closed without saving
		// (see step).
		if err := r.call(ctx, "close_wallet", r.w.DropWallet); err != nil && !rpcclient.IsCode(err, rpcclient.CodeNotOpen) {
			return "", err
		}
	}
	if _, err := a.store.Restore(in.Wallet, working); err != nil {
		return "", err
	}
	if err := r.call(ctx, "open_wallet", func(ctx context.Context) error { return r.w.OpenWallet(ctx, working, password) }); err != nil {
		return "", err
	}
	opened = true
	err = r.call(ctx, "query_key", func(ctx context.Context) (err error) {
		key, err = w.QueryViewKey(ctx)
		return err
	})
	return key, err
}
