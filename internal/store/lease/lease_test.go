package lease

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"batos/internal/store"
)

// fakeLeases grants one lease; renewals answer as the test sets them.
type fakeLeases struct {
	mu       sync.Mutex
	renewOK  bool
	renewErr error
	renewals int
	released bool
}

func (f *fakeLeases) AcquireLease(_ context.Context, name, holder string, _ time.Duration) (store.Lease, bool, error) {
	return store.Lease{Name: name, Holder: holder, Generation: 1}, true, nil
}

func (f *fakeLeases) RenewLease(context.Context, store.Lease, time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewals++
	return f.renewOK, f.renewErr
}

func (f *fakeLeases) ReleaseLease(context.Context, store.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = true
	return nil
}

func (f *fakeLeases) set(ok bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewOK, f.renewErr = ok, err
}

const ttl = 150 * time.Millisecond

// TestHeldWhileRenewed: renewed leases keep their context for many
// lifetimes; Release ends it and gives the lease up.
func TestHeldWhileRenewed(t *testing.T) {
	f := &fakeLeases{renewOK: true}
	h, ok, err := Take(t.Context(), f, "l", "n", ttl, nil)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	time.Sleep(5 * ttl)
	if err := h.Context().Err(); err != nil {
		t.Fatalf("a renewed lease ended: %v", err)
	}
	h.Release()
	if h.Context().Err() == nil || !f.released || context.Cause(h.Context()) == ErrLost {
		t.Fatalf("after release: ctx %v cause %v, released %v", h.Context().Err(), context.Cause(h.Context()), f.released)
	}
	h.Release() // twice is harmless
}

// TestLostWhenTaken: a renewal the store refuses ends the context at
// once, with ErrLost.
func TestLostWhenTaken(t *testing.T) {
	f := &fakeLeases{renewOK: true}
	h, _, _ := Take(t.Context(), f, "l", "n", ttl, nil)
	f.set(false, nil)
	select {
	case <-h.Context().Done():
	case <-time.After(2 * ttl):
		t.Fatal("a lease the store refused to renew is still held")
	}
	if !errors.Is(context.Cause(h.Context()), ErrLost) {
		t.Fatalf("cause %v", context.Cause(h.Context()))
	}
	h.Release()
}

// TestLostWhenUnreachable: renewals that fail keep being tried, and the
// context ends with ErrLost no later than the lease's expiry.
func TestLostWhenUnreachable(t *testing.T) {
	f := &fakeLeases{}
	f.set(false, errors.New("connection refused"))
	start := time.Now()
	h, _, _ := Take(t.Context(), f, "l", "n", ttl, nil)
	<-h.Context().Done()
	if took := time.Since(start); took > ttl+time.Second || !errors.Is(context.Cause(h.Context()), ErrLost) {
		t.Fatalf("ended after %s (lease %s), cause %v", took, ttl, context.Cause(h.Context()))
	}
	f.mu.Lock()
	tried := f.renewals
	f.mu.Unlock()
	if tried < 2 {
		t.Errorf("%d renewals tried before giving up", tried)
	}
	h.Release()
}
