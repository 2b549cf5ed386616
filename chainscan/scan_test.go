package chainscan

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// fakeChain serves blocks of transactions (as_json) and a pool, and counts
// the blocks whose transactions were read.
type fakeChain struct {
	blocks [][]string // per height, the transactions' JSON
	fork   int        // changes every block hash when set
	pool   []string
	read   []uint64
}

func (c *fakeChain) hash(h uint64) string { return fmt.Sprintf("%d-%d", h, c.fork) }

func (c *fakeChain) GetInfo(context.Context) (rpcclient.DaemonInfo, error) {
	return rpcclient.DaemonInfo{Height: uint64(len(c.blocks))}, nil
}

func (c *fakeChain) GetBlockHeadersRange(_ context.Context, start, end uint64) ([]rpcclient.BlockHeader, error) {
	var hs []rpcclient.BlockHeader
	for h := start; h <= end; h++ {
		hs = append(hs, rpcclient.BlockHeader{Height: h, Hash: c.hash(h), NumTxes: uint64(len(c.blocks[h]))})
	}
	return hs, nil
}

func (c *fakeChain) GetBlockTxHashes(_ context.Context, h uint64) ([]string, error) {
	c.read = append(c.read, h)
	var ids []string
	for i := range c.blocks[h] {
		ids = append(ids, fmt.Sprintf("%d/%d", h, i))
	}
	return ids, nil
}

func (c *fakeChain) GetTransactionsJSON(_ context.Context, ids []string) (rpcclient.TxLookup, error) {
	r := rpcclient.TxLookup{Status: "OK"}
	for _, id := range ids {
		var h, i int
		_, _ = fmt.Sscanf(id, "%d/%d", &h, &i)
		r.Txs = append(r.Txs, rpcclient.TxStatus{TxHash: id, BlockHeight: uint64(h), AsJSON: c.blocks[h][i]})
	}
	return r, nil
}

func (c *fakeChain) GetTransactionPool(context.Context) ([]rpcclient.PoolTx, error) {
	var p []rpcclient.PoolTx
	for i, js := range c.pool {
		p = append(p, rpcclient.PoolTx{IDHash: fmt.Sprintf("pool/%d", i), TxJSON: js})
	}
	return p, nil
}

// TestScanReadsOnlyNewBlocks: a scan reads the blocks with transactions
// added since the last one, counts the pool without keeping it, and goes
// back ReorgDepth blocks when its last block left the chain.
func TestScanReadsOnlyNewBlocks(t *testing.T) {
	view, spend := randomScalar(t), randomScalar(t)
	addr := Address{Spend: pointOf(spend), View: pointOf(view)}
	pay := func(amount uint64) string { js, _ := payment(t, view, spend, randomScalar(t), amount); return js }
	c := &fakeChain{blocks: make([][]string, 800)}
	c.blocks[50] = []string{pay(1)} // below the first scan's start (800 - 720)
	c.blocks[100] = []string{pay(2)}
	c.pool = []string{pay(4)}
	st, r, err := Scan(context.Background(), c, addr, view, State{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{100}, c.read, "only the block with transactions, from tip-720")
	assert.Equal(t, uint64(6), r.Received)
	assert.Equal(t, uint64(0), r.Confirmations, "the pool's")
	assert.Equal(t, uint64(2), r.Unlocked)
	assert.Equal(t, uint64(800), st.Next)

	c.read, c.pool = nil, nil
	c.blocks = append(c.blocks, []string{pay(4)}, nil)
	st, r, err = Scan(context.Background(), c, addr, view, st)
	require.NoError(t, err)
	assert.Equal(t, []uint64{800}, c.read, "only the new block")
	assert.Equal(t, Result{Received: 6, Confirmations: 2, TxIDs: []string{"100/0", "800/0"}, Unlocked: 2}, r)

	c.read, c.fork = nil, 1 // every hash changed: a reorganisation
	st, r, err = Scan(context.Background(), c, addr, view, st)
	require.NoError(t, err)
	assert.Equal(t, []uint64{800}, c.read, "back ReorgDepth blocks: 702..801")
	assert.Equal(t, uint64(6), r.Received, "nothing counted twice")
	assert.Len(t, st.Outputs, 2)
}
