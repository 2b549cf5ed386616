package activities

import (
	"context"
	"time"

	"github.com/escrowflow/escrowflow/pool"
)

// PoolLeaser adapts a *pool.Pool to Leaser.
func PoolLeaser(p *pool.Pool) Leaser { return poolLeaser{p} }

type poolLeaser struct{ p *pool.Pool }

func (l poolLeaser) Acquire(ctx context.Context, key string) (Lease, error) {
	lease, err := l.p.Acquire(ctx, key)
	if err != nil {
		return nil, err
	}
	return poolLease{lease}, nil
}

func (l poolLeaser) AcquireOwned(ctx context.Context, key string) (Lease, error) {
	lease, err := l.p.AcquireOwned(ctx, key)
	if err != nil || lease == nil {
		return nil, err
	}
	return poolLease{lease}, nil
}

func (l poolLeaser) Transfer(ctx context.Context, from, to string) (Lease, error) {
	lease, err := l.p.Transfer(ctx, from, to)
	if err != nil || lease == nil {
		return nil, err
	}
	return poolLease{lease}, nil
}

func (l poolLeaser) TryAcquireIdle(key string) Lease {
	if lease := l.p.TryAcquireIdle(key); lease != nil {
		return poolLease{lease}
	}
	return nil
}

func (l poolLeaser) Forget(key string) { l.p.Forget(key) }

type poolLease struct{ l *pool.Lease }

func (p poolLease) Wallet() Wallet       { return p.l.Client }
func (p poolLease) Wait() time.Duration  { return p.l.Wait }
func (p poolLease) Slot() int            { return p.l.Slot }
func (p poolLease) State() string        { return p.l.State }
func (p poolLease) Release(state string) { p.l.Release(state) }
func (p poolLease) Discard()             { p.l.Discard() }
