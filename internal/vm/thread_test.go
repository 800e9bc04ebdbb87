package vm_test

import (
	"context"
	"errors"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// TestThreadsStartAfresh: executions reuse Starlark threads, and each
// starts as a fresh one would: its steps counted from zero against its
// own limit, its prints its own, and never cancelled by what stopped an
// execution before it (a limit, a caller gone); a thread that took many
// steps is not kept.
func TestThreadsStartAfresh(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(&vm.Options{MaxSteps: 10_000})
	setMethod(t, db, m, "count", "def count(self, n):\n    print('counting', n)\n    t = 0\n    for i in range(n):\n        t += i\n    return t")
	want, err := sendUpdate(t, db, m, "count", image.Int(10))
	if err != nil {
		t.Fatal(err)
	}
	if want.Output != "counting 10\n" || want.Steps == 0 {
		t.Fatalf("first send: output %q, %d steps", want.Output, want.Steps)
	}
	again := func(when string) {
		t.Helper()
		for range 3 {
			res, err := sendUpdate(t, db, m, "count", image.Int(10))
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if res.Steps != want.Steps || res.Output != want.Output || !image.Equal(res.Value, want.Value) {
				t.Errorf("%s: %d steps, output %q, value %s; want %d, %q, %s", when, res.Steps, res.Output, res.Repr, want.Steps, want.Output, want.Repr)
			}
		}
	}
	again("after a send")
	if res, err := sendUpdate(t, db, m, "count", image.Int(500)); err != nil || res.Steps <= 4096 {
		t.Fatalf("a long count: %d steps, %v; want more than a pooled thread may take", res.Steps, err)
	}
	again("after a long send")
	var le *vm.LimitError
	if _, err := sendUpdate(t, db, m, "count", image.Int(100_000)); !errors.As(err, &le) || le.Limit != vm.StepLimit {
		t.Fatalf("a long count: got %v, want the step limit", err)
	}
	again("after the step limit")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = db.View(ctx, func(tx *image.Tx) error {
		_, err := m.Send(cancelled, tx, genesisOID(t, db), "count", []image.Value{image.Int(10)}, nil)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled send: got %v, want context.Canceled", err)
	}
	again("after a cancelled send")
}
