// Package lease holds a store's leases (store.Leaser) for work that runs
// on one node at a time: it takes a lease, renews it while the work runs,
// ends the work's context when the lease is lost, and gives it up when
// the work ends.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

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

// MinTTL is the shortest lease Take holds: it renews every third.
const MinTTL = 30 * time.Millisecond

// Holder makes a holder of node's name that no other holder shares,
// even one of a process given the same name by mistake: a lease taken
// again by its own holder is renewed, not refused, so two processes
// holding under one name would both run the work.
func Holder(node string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on the systems Go supports
	}
	return node + "/" + hex.EncodeToString(b[:])
}

// CheckName refuses what no store can key a lease by: empty, longer than
// 256 bytes, not UTF-8, or holding control characters.
func CheckName(what, s string) error {
	switch {
	case s == "" || len(s) > 256:
		return fmt.Errorf("lease %s %q: want 1 to 256 bytes", what, s)
	case !utf8.ValidString(s):
		return fmt.Errorf("lease %s %q: not UTF-8", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("lease %s %q: a control character", what, s)
		}
	}
	return nil
}

// Take acquires lease name for holder and keeps renewing it every third
// of ttl. ok is false (and held nil) when another holder has it. log,
// if set, is told of renewals that failed and of the lease's loss.
func Take(ctx context.Context, leases store.Leaser, name, holder string, ttl time.Duration, log *slog.Logger) (held *Held, ok bool, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ttl < MinTTL {
		return nil, false, fmt.Errorf("lease %s: a time to live of %s is under the %s a lease needs", name, ttl, MinTTL)
	}
	if err := CheckName("name", name); err != nil {
		return nil, false, err
	}
	if err := CheckName("holder", holder); err != nil {
		return nil, false, err
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
