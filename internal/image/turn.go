package image

import (
	"context"
	"sync"

	"batos/internal/store"
)

// retryTurns queues, per object, this process's transactions that lost a
// write conflict on it. Optimistic commits alone starve under contention:
// with many writers on one hot object each rerun competes with every
// other, and one writer can lose MaxRetries times in a row while the
// others win. A writer that lost therefore waits for its turn on the
// object (first come, first served) and keeps it until its Update
// returns, so of this process's losers only one competes at a time, with
// its full count of retries, and the rest wait without spending theirs.
// First attempts take no turn: what a transaction writes is known only
// when it commits.
type retryTurns struct {
	mu    sync.Mutex
	turns map[store.OID]*retryTurn
}

// retryTurn is one object's queue: a token (a channel of one, whose
// blocked senders are served in order) and how many hold or await it.
type retryTurn struct {
	token chan struct{}
	refs  int
}

// take waits for the turn on oid; release gives it back. It fails only if
// ctx ends first.
func (r *retryTurns) take(ctx context.Context, oid store.OID) (release func(), err error) {
	r.mu.Lock()
	if r.turns == nil {
		r.turns = make(map[store.OID]*retryTurn)
	}
	t := r.turns[oid]
	if t == nil {
		t = &retryTurn{token: make(chan struct{}, 1)}
		r.turns[oid] = t
	}
	t.refs++
	r.mu.Unlock()
	select {
	case t.token <- struct{}{}:
		return func() {
			<-t.token
			r.drop(oid, t)
		}, nil
	case <-ctx.Done():
		r.drop(oid, t)
		return nil, ctx.Err()
	}
}

func (r *retryTurns) drop(oid store.OID, t *retryTurn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.refs--; t.refs == 0 {
		delete(r.turns, oid)
	}
}
