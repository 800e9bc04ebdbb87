package image

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRetryTurns: a turn on an object is held by one writer at a time,
// the others wait for it in order; turns on other objects are free; a
// waiter whose ctx ends leaves the queue; nothing stays behind.
func TestRetryTurns(t *testing.T) {
	var r retryTurns
	ctx := context.Background()
	release, err := r.take(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	otherRelease, err := r.take(ctx, 8)
	if err != nil {
		t.Fatalf("the turn on another object: %v", err)
	}
	otherRelease()

	order := make(chan int, 2)
	for i := range 2 {
		go func() {
			rel, err := r.take(ctx, 7)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			rel()
		}()
		waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.turns[7].refs == i+2 })
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.take(cancelled, 7); !errors.Is(err, context.Canceled) {
		t.Errorf("take with a cancelled ctx while the turn is held: got %v, want context.Canceled", err)
	}
	select {
	case i := <-order:
		t.Fatalf("waiter %d got the turn while it was held", i)
	case <-time.After(20 * time.Millisecond):
	}
	release()
	if first, second := <-order, <-order; first != 0 || second != 1 {
		t.Errorf("waiters served %d then %d, want 0 then 1", first, second)
	}
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.turns) == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
