package vm_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
	"batos/internal/vm"
)

// settleGoroutines waits for the goroutine count to fall to at most n.
func settleGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines remain, want at most %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostileConcurrentSends: many goroutines send the same methods at
// once, some hitting the step limit, some contending for one counter;
// each execution's limit is its own, every increment that commits lands
// once (the others give up on write conflicts), and the
// watchdog goroutine ends when the VM is idle.
func TestHostileConcurrentSends(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{MaxSteps: 200_000})
	mustEval(t, db, m, "genesis.count = 0")
	setMethod(t, db, m, "bump", "def bump(self):\n    self.count += 1\n    return self.count")
	setMethod(t, db, m, "spin", "def spin(self):\n    self.count = -1\n    while True:\n        pass")
	setMethod(t, db, m, "twice", "def twice(self, x):\n    return 2 * x")
	base := runtime.NumGoroutine()
	const senders = 24
	var wg sync.WaitGroup
	var bumped atomic.Int64
	errs := make(chan error, 3*senders)
	for i := range senders {
		wg.Add(3)
		go func() {
			defer wg.Done()
			_, err := sendUpdate(t, db, m, "bump")
			switch {
			case err == nil:
				bumped.Add(1)
			case !errors.Is(err, store.ErrConflict):
				errs <- fmt.Errorf("bump: %w", err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := sendUpdate(t, db, m, "spin")
			if le := (*vm.LimitError)(nil); !errors.As(err, &le) || le.Limit != vm.StepLimit {
				errs <- fmt.Errorf("spin: got %v, want the step limit", err)
			}
		}()
		go func() {
			defer wg.Done()
			err := db.View(ctx, func(tx *image.Tx) error {
				res, err := m.Send(ctx, tx, genesisOID(t, db), "twice", []image.Value{image.Int(int64(i))}, nil)
				if err == nil && !image.Equal(res.Value, image.Int(int64(2*i))) {
					err = fmt.Errorf("twice(%d) = %s", i, res.Repr)
				}
				return err
			})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if res := mustEval(t, db, m, "genesis.count"); res.Repr != fmt.Sprint(bumped.Load()) || bumped.Load() == 0 {
		t.Errorf("count after %d committed bumps: %s", bumped.Load(), res.Repr)
	}
	settleGoroutines(t, base)
}

// TestHostileCancelManyExecutions: cancelling the ctx of many spinning
// executions stops each promptly with the ctx's error, nothing committed,
// and leaves no goroutine behind.
func TestHostileCancelManyExecutions(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{Timeout: time.Minute, MaxSteps: 1 << 62})
	setMethod(t, db, m, "spin", "def spin(self):\n    self.spun = True\n    while True:\n        pass")
	base := runtime.NumGoroutine()
	before := db.Store().LastTID()
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(cctx, func(tx *image.Tx) error {
				_, err := m.Send(cctx, tx, genesisOID(t, db), "spin", nil, nil)
				return err
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	wg.Wait()
	if took := time.Since(start); took > time.Second {
		t.Errorf("executions took %v to stop after cancel", took)
	}
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("execution %d: got %v, want context.Canceled", i, err)
		}
	}
	if db.Store().LastTID() != before {
		t.Errorf("a cancelled execution committed")
	}
	settleGoroutines(t, base)
}
