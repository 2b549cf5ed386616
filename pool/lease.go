package pool

// Leases: exclusive use of one wallet-rpc process.

import (
	"context"
	"sync"
	"time"

	"github.com/escrowflow/escrowflow/rpcclient"
)

// Lease is the exclusive use of one wallet-rpc process. Call Release or
// Discard exactly once.
type Lease struct {
	p      *Pool
	s      *slot
	gen    uint64
	key    string
	once   sync.Once
	Client *rpcclient.Client // the leased process
	Wait   time.Duration     // how long Acquire waited for a process
	Slot   int               // slot index, for logs and reports
	PID    int               // process id, 0 for external endpoints
	// State is what this key left in the process at its last Release (for
	// example the name of the open wallet), or "" when the process is fresh,
	// was restarted, or was used by another key since.
	State string
}

// Acquire waits until a process is free for key and leases it. It prefers
// the process key used last (its wallet is still open there), then an idle
// process no key is attached to, then the idle process used least recently
// (whose key will have to reopen its wallet). It returns ctx.Err() if ctx
// ends first and ErrStopped after Stop.
func (p *Pool) Acquire(ctx context.Context, key string) (*Lease, error) {
	return p.acquire(ctx, key, false, key)
}

// AcquireOwned leases the process key used last, waiting while it is busy,
// and returns (nil, nil) when key has no process (it never had one, or the
// process was restarted or lent to another key since).
func (p *Pool) AcquireOwned(ctx context.Context, key string) (*Lease, error) {
	return p.acquire(ctx, key, true, key)
}

// Transfer is AcquireOwned for key from, with the process attached to key
// to from then on: to's next lease finds it, with what from left there as
// this lease's State.
func (p *Pool) Transfer(ctx context.Context, from, to string) (*Lease, error) {
	return p.acquire(ctx, from, true, to)
}

// TryAcquireIdle leases, without waiting, an idle process no key is
// attached to, for key; it returns nil when there is none. Use it for work
// that must not take a process from anyone.
func (p *Pool) TryAcquireIdle(key string) *Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	for _, s := range p.slots {
		if s.ready && !s.busy && !s.suspect && s.owner == "" {
			s.busy, s.owner, s.state = true, key, ""
			return &Lease{p: p, s: s, gen: s.gen, key: key, Client: s.client, Slot: s.id, PID: s.pid}
		}
	}
	return nil
}

func (p *Pool) acquire(ctx context.Context, key string, ownedOnly bool, owner string) (*Lease, error) {
	start := time.Now()
	for {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil, ErrStopped
		}
		if ownedOnly && !p.ownsLocked(key) {
			p.mu.Unlock()
			return nil, nil
		}
		if s := p.pickLocked(key); s != nil {
			l := &Lease{p: p, s: s, gen: s.gen, key: owner, Client: s.client, Slot: s.id, PID: s.pid, Wait: time.Since(start)}
			if s.owner == key {
				l.State = s.state
			}
			s.busy, s.owner, s.state = true, owner, ""
			p.mu.Unlock()
			return l, nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

func (p *Pool) ownsLocked(key string) bool {
	for _, s := range p.slots {
		if s.owner == key && s.ready {
			return true
		}
	}
	return false
}

func (p *Pool) pickLocked(key string) *slot {
	var free, lru *slot
	for _, s := range p.slots {
		if s.owner == key && s.ready {
			if s.busy || s.suspect {
				return nil // our process is in use by an earlier attempt: wait for it
			}
			return s
		}
		if !s.ready || s.busy || s.suspect {
			continue
		}
		if s.owner == "" && free == nil {
			free = s
		}
		if lru == nil || s.lastUsed.Before(lru.lastUsed) {
			lru = s
		}
	}
	if free != nil {
		return free
	}
	return lru
}

// Release returns the process to the pool, remembering state for the key's
// next lease.
func (l *Lease) Release(state string) {
	l.once.Do(func() { l.p.release(l, state, false) })
}

// Discard returns the process to the pool and forgets what it holds: use it
// when the outcome of a call is unknown. The process is probed before it is
// leased again.
func (l *Lease) Discard() {
	l.once.Do(func() { l.p.release(l, "", true) })
}

func (p *Pool) release(l *Lease, state string, suspect bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := l.s
	if s.gen != l.gen {
		return // the process was restarted meanwhile
	}
	s.busy = false
	s.state = state
	s.lastUsed = time.Now()
	if suspect {
		s.owner = ""
		s.suspect = true
		go p.probe(s, s.gen)
	}
	p.broadcastLocked()
}

// Forget detaches key from its process, if it has one idle: call it when an
// escrow role is done so its process is preferred for new keys.
func (p *Pool) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.slots {
		if s.owner == key && !s.busy {
			s.owner, s.state = "", ""
		}
	}
	p.broadcastLocked()
}
