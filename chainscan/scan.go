package chainscan

import (
	"context"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// Source is the part of monerod a scan reads. *rpcclient.Daemon implements
// it.
type Source interface {
	GetInfo(ctx context.Context) (rpcclient.DaemonInfo, error)
	GetBlockHeadersRange(ctx context.Context, start, end uint64) ([]rpcclient.BlockHeader, error)
	GetBlockTxHashes(ctx context.Context, height uint64) ([]string, error)
	GetTransactionsJSON(ctx context.Context, hashes []string) (rpcclient.TxLookup, error)
	GetTransactionPool(ctx context.Context) ([]rpcclient.PoolTx, error)
}

const (
	// SpendableAge is how many blocks an ordinary output stays locked.
	SpendableAge = 10
	// ReorgDepth is how many blocks a scan goes back when the last block
	// it scanned is no longer on the chain.
	ReorgDepth = 100
	// FirstScanDepth is how far before the chain's height the first scan
	// of an address starts (a day of mainnet blocks). The scan starts
	// right after the escrow's setup made the address, so no deposit can
	// be older.
	FirstScanDepth = 720
	headersPerCall = 1000
	txsPerCall     = 100
	// maxUnlockBlock: unlock times below it are block heights, above it
	// Unix times (CRYPTONOTE_MAX_BLOCK_NUMBER).
	maxUnlockBlock = 500_000_000
)

// Output is one output found in a block.
type Output struct {
	TxID       string `json:"txid"`
	Index      int    `json:"index"`
	Amount     uint64 `json:"amount"`
	Height     uint64 `json:"height"`
	UnlockTime uint64 `json:"unlockTime,omitempty"`
}

// State is what an address's scan has seen so far; the caller keeps it
// between scans (the zero State starts a first scan).
type State struct {
	// Next is the first height not scanned yet; LastHash is the hash of
	// block Next-1, to notice a reorganisation.
	Next     uint64   `json:"next"`
	LastHash string   `json:"lastHash"`
	Outputs  []Output `json:"outputs"`
}

// Result is what the address has received now.
type Result struct {
	// Received counts the chain's outputs and the pool's (without a seen
	// double spend); Confirmations is the least among them (0 for the
	// pool's); TxIDs in the order found.
	Received      uint64
	Confirmations uint64
	TxIDs         []string
	// Unlocked is the part spendable now: at least SpendableAge blocks
	// deep and no unlock time in the future.
	Unlocked uint64
}

// Scan brings st up to the chain's tip for the address (view key view)
// and adds the pool's outputs to the result. It reads only the blocks
// that have transactions beyond their coinbase.
func Scan(ctx context.Context, src Source, addr Address, view *edwards25519.Scalar, st State) (State, Result, error) {
	info, err := src.GetInfo(ctx)
	if err != nil {
		return st, Result{}, err
	}
	tip := info.Height // blocks 0..tip-1
	if st.Next == 0 && st.LastHash == "" {
		st.Next = tip - min(tip, FirstScanDepth)
	}
	st.Next = min(st.Next, tip)
	from := st.Next
	var headers []rpcclient.BlockHeader
	if from > 0 {
		headers, err = headersRange(ctx, src, from-1, tip-1)
		if err != nil {
			return st, Result{}, err
		}
		if st.LastHash != "" && (len(headers) == 0 || headers[0].Hash != st.LastHash) {
			from -= min(from, ReorgDepth)
			st.Outputs = below(st.Outputs, from)
			if headers, err = headersRange(ctx, src, from, tip-1); err != nil {
				return st, Result{}, err
			}
		} else {
			headers = headers[1:]
		}
	} else if tip > 0 {
		if headers, err = headersRange(ctx, src, 0, tip-1); err != nil {
			return st, Result{}, err
		}
	}
	var hashes []string
	for _, h := range headers {
		if h.NumTxes == 0 {
			continue
		}
		txs, err := src.GetBlockTxHashes(ctx, h.Height)
		if err != nil {
			return st, Result{}, err
		}
		hashes = append(hashes, txs...)
	}
	for len(hashes) > 0 {
		n := min(len(hashes), txsPerCall)
		r, err := src.GetTransactionsJSON(ctx, hashes[:n])
		if err != nil {
			return st, Result{}, err
		}
		hashes = hashes[n:]
		for _, t := range r.Txs {
			if t.InPool {
				continue
			}
			tx, err := ParseTx(t.AsJSON)
			if err != nil {
				return st, Result{}, fmt.Errorf("tx %s: %w", t.TxHash, err)
			}
			for _, f := range WithViewKey(tx, addr, view) {
				st.Outputs = append(st.Outputs, Output{TxID: t.TxHash, Index: f.Index, Amount: f.Amount,
					Height: t.BlockHeight, UnlockTime: tx.UnlockTime})
			}
		}
	}
	if len(headers) > 0 {
		last := headers[len(headers)-1]
		st.Next, st.LastHash = last.Height+1, last.Hash
	}
	pool, err := src.GetTransactionPool(ctx)
	if err != nil {
		return st, Result{}, err
	}
	all := append([]Output(nil), st.Outputs...)
	for _, p := range pool {
		if p.DoubleSpendSeen {
			continue
		}
		tx, err := ParseTx(p.TxJSON)
		if err != nil {
			return st, Result{}, fmt.Errorf("pool tx %s: %w", p.IDHash, err)
		}
		for _, f := range WithViewKey(tx, addr, view) {
			all = append(all, Output{TxID: p.IDHash, Index: f.Index, Amount: f.Amount, UnlockTime: tx.UnlockTime})
		}
	}
	return st, Summarize(all, st.Next), nil
}

// Summarize sums outputs (Height 0: in the pool) at chain height tip.
func Summarize(outs []Output, tip uint64) Result {
	r := Result{TxIDs: []string{}}
	seen := map[string]bool{}
	for i, o := range outs {
		r.Received += o.Amount
		conf := uint64(0)
		if o.Height > 0 && tip > o.Height {
			conf = tip - o.Height
		}
		if i == 0 || conf < r.Confirmations {
			r.Confirmations = conf
		}
		if !seen[o.TxID] {
			seen[o.TxID] = true
			r.TxIDs = append(r.TxIDs, o.TxID)
		}
		if o.Height > 0 && conf >= SpendableAge && Unlocked(o.UnlockTime, tip) {
			r.Unlocked += o.Amount
		}
	}
	return r
}

// Unlocked reports whether an unlock time lets an output be spent at chain
// height tip (a Unix time counts as locked).
func Unlocked(unlockTime, tip uint64) bool {
	return unlockTime == 0 || (unlockTime < maxUnlockBlock && unlockTime <= tip)
}

func below(outs []Output, height uint64) []Output {
	var kept []Output
	for _, o := range outs {
		if o.Height < height {
			kept = append(kept, o)
		}
	}
	return kept
}

// headersRange reads the headers start..end in calls of at most
// headersPerCall.
func headersRange(ctx context.Context, src Source, start, end uint64) ([]rpcclient.BlockHeader, error) {
	var all []rpcclient.BlockHeader
	for s := start; s <= end; s += headersPerCall {
		h, err := src.GetBlockHeadersRange(ctx, s, min(end, s+headersPerCall-1))
		if err != nil {
			return nil, err
		}
		all = append(all, h...)
	}
	return all, nil
}
