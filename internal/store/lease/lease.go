// Package lease holds a store's leases (store.Leaser) for work that runs
// on one node at a time: it takes a lease, renews it while the work runs,
// ends the work's context when the lease is lost, and gives it up when
// the work ends.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"batos/internal/store"
)

// ErrLost is the cause of a held context's end when its lease was lost:
// another holder took it, or it could not be renewed before it expired.
var ErrLost = errors.New("lease: lost")

// Held is a lease being held.
type Held struct {
	Lease   store.Lease
	ctx     context.Context
	cancel  context.CancelCauseFunc
	renewed chan struct{}
	leases  store.Leaser
	log     *slog.Logger
}

// Take acquires lease name for holder and keeps renewing it every third
// of ttl. ok is false (and held nil) when another holder has it. log,
// if set, is told of renewals that failed and of the lease's loss.
func Take(ctx context.Context, leases store.Leaser, name, holder string, ttl time.Duration, log *slog.Logger) (held *Held, ok bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	valid := time.Now().Add(ttl) // taken before asking: the store's expiry is later
	l, ok, err := leases.AcquireLease(ctx, name, holder, ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	h := &Held{Lease: l, ctx: hctx, cancel: cancel, renewed: make(chan struct{}), leases: leases, log: log}
	go h.renew(ttl, valid)
	return h, true, nil
}

// Context ends when the lease is lost (context.Cause is ErrLost), when
// Release is called, or when Take's context ends.
func (h *Held) Context() context.Context { return h.ctx }

// Release stops renewing and gives the lease up, so another holder need
// not wait for it to expire. Safe to call twice.
func (h *Held) Release() {
	h.cancel(nil)
	<-h.renewed
	ctx, stop := context.WithTimeout(context.WithoutCancel(h.ctx), 5*time.Second)
	defer stop()
	if err := h.leases.ReleaseLease(ctx, h.Lease); err != nil {
		h.log.Warn("lease: cannot give it up; it expires", "lease", h.Lease.Name, "err", err)
	}
}

// renew keeps the lease while the context lasts, and ends it when the
// lease is lost or could not be renewed before the time it was surely
// valid until (measured from before each request, so this side gives
// up first).
func (h *Held) renew(ttl time.Duration, valid time.Time) {
	defer close(h.renewed)
	every := time.NewTicker(ttl / 3)
	defer every.Stop()
	expiry := time.NewTimer(time.Until(valid))
	defer expiry.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-expiry.C:
			h.log.Warn("lease: not renewed in time; another node may take it", "lease", h.Lease.Name)
			h.cancel(ErrLost)
			return
		case <-every.C:
		}
		asked := time.Now()
		ctx, stop := context.WithTimeout(h.ctx, ttl/3)
		ok, err := h.leases.RenewLease(ctx, h.Lease, ttl)
		stop()
		switch {
		case err == nil && ok:
			expiry.Reset(time.Until(asked.Add(ttl)))
		case err == nil:
			h.log.Warn("lease: passed to another holder", "lease", h.Lease.Name)
			h.cancel(ErrLost)
			return
		case h.ctx.Err() == nil:
			h.log.Warn("lease: cannot renew; trying again", "lease", h.Lease.Name, "err", err)
		}
	}
}
