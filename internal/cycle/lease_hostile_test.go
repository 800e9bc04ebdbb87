package cycle

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"batos/internal/vm"
)

// TestHostileSameNodeNameTwoMachines: two nodes started with the same
// -node name (a copied unit file, say). The lease is "already the
// caller's" for the second, with the same generation, so the runner it
// would write is the first's: nothing tells them apart. Only one of them
// may drive the cycle.
func TestHostileSameNodeNameTwoMachines(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	defer close(ba.gate)
	a, db := testMachine(t, ba, leasedOptions(leases, "node-x"))
	bb := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	defer close(bb.gate)
	b := newMachineOn(t, db, bb, leasedOptions(leases, "node-x"))
	g := genesis(t, db)
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	if _, err := b.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * testLeaseTTL)
	if n := bb.count("BRICK") + bb.count("ROBIN") + bb.count("BABS") + bb.count("ALFRED"); n != 0 {
		t.Errorf("a second node with the same name drove the cycle A drives: it asked %v (A asked %v)", bb.calls, ba.calls)
	}
	_ = id
}

// TestHostileNoSweepTransientLeaseError: a machine that never resumes
// (a one-shot command's) opens a cycle while the lease store fails for
// a moment. hold says "the next sweep tries again", but such a machine
// has no sweep: the cycle should still run once the leases answer again,
// and its sender should not wait forever.
func TestHostileNoSweepTransientLeaseError(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	a, db := testMachine(t, ba, leasedOptions(leases, "node-a"))
	g := genesis(t, db)
	leases.set(leases.down, "node-a")
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	leases.mu.Lock()
	delete(leases.down, "node-a")
	leases.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 10*testLeaseTTL)
	defer cancel()
	c, err := a.Wait(ctx, id)
	if err != nil {
		t.Errorf("cycle %d after a lease error at its launch: %v, state %v; no node will ever take it up", id, err, c.State)
	}
}

// TestHostileCancelRetryAcrossNodes: node B cancels the cycle A runs and
// retries it at once, while A's run may still be winding down holding
// the lease. The retried cycle completes on one of them.
func TestHostileCancelRetryAcrossNodes(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod, goodMethod, goodMethod}, gate: make(chan struct{})}
	a, db := testMachine(t, ba, leasedOptions(leases, "node-a"))
	bb := &brain{plans: []string{goodPlan}, methods: []string{goodMethod, goodMethod}}
	b := newMachineOn(t, db, bb, leasedOptions(leases, "node-b"))
	g := genesis(t, db)
	if _, err := a.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	if err := b.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := b.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	a.Observe(id)
	close(ba.gate)
	c := waitDone(t, b, id)
	if c.State != Complete {
		t.Fatalf("retried cycle ended %s: %s", c.State, c.Reason)
	}
	if !strings.Contains(c.Runner, "#") {
		t.Errorf("runner %q", c.Runner)
	}
}

// TestHostileTinyLeaseTTL: Options.LeaseTTL is defaulted only when not
// positive; a few nanoseconds (a caller passing a count where a Duration
// was meant) makes every quarter lease zero, and time.NewTicker panics on
// it: in Wait here, in the sweep goroutine (the whole process) after
// Resume. Such a TTL must be refused or raised.
func TestHostileTinyLeaseTTL(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	a, db := testMachine(t, ba, &Options{Leases: leases, Node: "node-a", LeaseTTL: 3})
	g := genesis(t, db)
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Wait with a LeaseTTL of 3ns panicked: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	a.Wait(ctx, id)
}

// TestHostileCloseLeavesNoGoroutines: a leased machine that resumed
// (its sweep running) and drives a cycle blocked at ROBIN, closed: the
// sweep, the drive and the lease's renewal all end, and the lease is
// given up.
func TestHostileCloseLeavesNoGoroutines(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	defer close(ba.gate)
	db := personaImage(t)
	g := genesis(t, db)
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()
	a := newMachineOn(t, db, ba, leasedOptions(leases, "node-a"))
	if _, err := a.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	time.Sleep(2 * testLeaseTTL) // a few sweeps and renewals
	a.Close()
	if h := leases.holder(leaseName(id)); h != "" {
		t.Errorf("after Close the lease is held by %q", h)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
