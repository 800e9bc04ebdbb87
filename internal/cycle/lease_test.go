package cycle

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/store"
	"batos/internal/vm"
)

// memLeases is a store.Leaser in memory, as a database would grant
// leases to the nodes sharing it. down makes a holder's renewals fail as
// if its connection were cut; blind makes a holder's renewals succeed in
// its own eyes even once the lease passed on (a node paused past its
// expiry, that has not noticed yet).
type memLeases struct {
	mu     sync.Mutex
	leases map[string]*memLease
	down   map[string]bool
	blind  map[string]bool
}

type memLease struct {
	holder  string
	gen     int64
	expires time.Time
}

func newMemLeases() *memLeases {
	return &memLeases{leases: map[string]*memLease{}, down: map[string]bool{}, blind: map[string]bool{}}
}

func (m *memLeases) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (store.Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if flagged(m.down, holder) {
		return store.Lease{}, false, errors.New("memLeases: connection refused")
	}
	now := time.Now()
	l := m.leases[name]
	switch {
	case l == nil:
		l = &memLease{holder: holder, gen: 1}
		m.leases[name] = l
	case l.holder == holder && l.expires.After(now):
	case l.expires.After(now):
		return store.Lease{}, false, nil
	default:
		l.holder, l.gen = holder, l.gen+1
	}
	l.expires = now.Add(ttl)
	return store.Lease{Name: name, Holder: holder, Generation: l.gen}, true, nil
}

func (m *memLeases) RenewLease(_ context.Context, held store.Lease, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if flagged(m.down, held.Holder) {
		return false, errors.New("memLeases: connection refused")
	}
	if flagged(m.blind, held.Holder) {
		return true, nil
	}
	l := m.leases[held.Name]
	if l == nil || l.holder != held.Holder || l.gen != held.Generation {
		return false, nil
	}
	l.expires = time.Now().Add(ttl)
	return true, nil
}

func (m *memLeases) ReleaseLease(_ context.Context, held store.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.leases[held.Name]; l != nil && l.holder == held.Holder && l.gen == held.Generation {
		l.holder, l.expires = "", time.Time{}
	}
	return nil
}

// flagged reports whether holder is a node's the flags name (holders are
// the node's name and a suffix: lease.Holder).
func flagged(flags map[string]bool, holder string) bool {
	node, _, _ := strings.Cut(holder, "/")
	return flags[node]
}

// expire ends lease name at once, as time passing would.
func (m *memLeases) expire(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[name].expires = time.Time{}
}

func (m *memLeases) set(flags map[string]bool, holder string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	flags[holder] = true
}

func (m *memLeases) holder(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.leases[name]; l != nil && l.expires.After(time.Now()) {
		return l.holder
	}
	return ""
}

const testLeaseTTL = 300 * time.Millisecond

func leasedOptions(leases *memLeases, node string) *Options {
	return &Options{Leases: leases, Node: node, LeaseTTL: testLeaseTTL}
}

// waitAsked waits until b's persona was asked n times.
func waitAsked(t *testing.T, b *brain, persona string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for b.count(persona) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s was asked %d times, waited for %d", persona, b.count(persona), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLeasedCycleRunsOnOneNode: two nodes share an image; the cycle runs
// on the node holding its lease while the other resumes and sweeps; a
// sender on the other node waits for it there. When the running node's
// connection to the leases is cut, it stops within a lease and the other
// node takes the cycle up from its last recorded step: nothing recorded
// is asked again.
func TestLeasedCycleRunsOnOneNode(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	a, db := testMachine(t, ba, leasedOptions(leases, "node-a"))
	bb := &brain{methods: []string{goodMethod}}
	b := newMachineOn(t, db, bb, leasedOptions(leases, "node-b"))
	g := genesis(t, db)

	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1) // A is synthesizing, held at ROBIN
	// B starts as a node does, joins the same message, and sweeps for a
	// few leases: it drives nothing.
	if n, err := b.Resume(t.Context()); err != nil || n != 1 {
		t.Fatalf("resume on B: %d %v", n, err)
	}
	joinedID, joined, err := b.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil || !joined || joinedID != id {
		t.Fatalf("a send on B: cycle %d joined %v %v, want to join %d", joinedID, joined, err, id)
	}
	waited := make(chan *Cycle, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c, _ := b.Wait(ctx, id) // B learns of the end by its poll: no Observe here
		waited <- c
	}()
	time.Sleep(3 * testLeaseTTL)
	if n := bb.count("BRICK") + bb.count("ROBIN") + bb.count("BABS") + bb.count("ALFRED"); n != 0 {
		t.Fatalf("node B asked %d times while A held the lease: %v", n, bb.calls)
	}
	c, err := a.Get(t.Context(), id)
	if err != nil || !strings.HasPrefix(c.Runner, "node-a/") {
		t.Fatalf("runner while A runs: %q %v", c.Runner, err)
	}

	// A loses the database: it cannot renew, stops within a lease, and B
	// takes the cycle up once the lease expired.
	leases.set(leases.down, "node-a")
	select {
	case c = <-waited:
	case <-time.After(30 * time.Second):
		t.Fatal("B's waiter never saw the cycle end")
	}
	if c == nil || c.State != Complete {
		t.Fatalf("the cycle ended %v", c)
	}
	if !strings.HasPrefix(c.Runner, "node-b/") {
		t.Errorf("runner at the end: %q, want node B", c.Runner)
	}
	// Everything A recorded was taken as it was: BRICK and the
	// researchers were asked once in all, by A; ROBIN's answer A never
	// recorded is asked again by B.
	if ba.count("BRICK") != 1 || bb.count("BRICK") != 0 || bb.count("BABS")+bb.count("ALFRED") != 0 {
		t.Errorf("asked: A %v, B %v; the recorded steps must be asked once", ba.calls, bb.calls)
	}
	if bb.count("ROBIN") != 1 {
		t.Errorf("B asked ROBIN %d times, want 1", bb.count("ROBIN"))
	}
	close(ba.gate)
	if installedMethod(t, db, g, "display_yourself") == nil {
		t.Error("no method installed")
	}
}

// TestFenceStopsAFormerRunner: a node that lost its lease without
// noticing (it was paused past its expiry) records nothing once another
// node took the cycle up: its late answer is dropped, the new runner's
// is the one recorded and installed.
func TestFenceStopsAFormerRunner(t *testing.T) {
	leases := newMemLeases()
	stale := strings.Replace(goodMethod, "I am %s", "STALE %s", 1)
	ba := &brain{plans: []string{goodPlan}, methods: []string{stale}, gate: make(chan struct{})}
	a, db := testMachine(t, ba, leasedOptions(leases, "node-a"))
	g := genesis(t, db)
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	leases.set(leases.blind, "node-a")
	leases.expire(leaseName(id))

	bb := &brain{methods: []string{goodMethod}}
	b := newMachineOn(t, db, bb, leasedOptions(leases, "node-b"))
	if _, err := b.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, b, id)
	if c.State != Complete || !strings.HasPrefix(c.Runner, "node-b/") {
		t.Fatalf("ended %s (%s), runner %q", c.State, c.Reason, c.Runner)
	}
	// A's answer arrives now: it must not be recorded.
	close(ba.gate)
	time.Sleep(3 * testLeaseTTL)
	c, err = b.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	synth := 0
	for _, s := range c.Steps {
		if s.Kind == StepSynthesize {
			synth++
			if strings.Contains(s.Answer, "STALE") {
				t.Errorf("the former runner's answer was recorded: %+v", s)
			}
		}
	}
	if synth != 1 || c.State != Complete {
		t.Errorf("%d synthesis steps, state %s; want 1, COMPLETE", synth, c.State)
	}
	if m := installedMethod(t, db, g, "display_yourself"); m == nil || strings.Contains(m.Source, "STALE") {
		t.Errorf("installed: %v", m)
	}
}

// TestReleasedOnClose: a node that stops gracefully gives its leases up
// at once: another node takes the cycle up without waiting for expiry.
func TestReleasedOnClose(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	a, db := testMachine(t, ba, &Options{Leases: leases, Node: "node-a", LeaseTTL: time.Hour})
	g := genesis(t, db)
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	a.Close()
	if h := leases.holder(leaseName(id)); h != "" {
		t.Fatalf("after close the lease is still held by %q", h)
	}
	bb := &brain{methods: []string{goodMethod}}
	b := newMachineOn(t, db, bb, &Options{Leases: leases, Node: "node-b", LeaseTTL: time.Hour})
	if _, err := b.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, b, id); c.State != Complete {
		t.Fatalf("ended %s: %s", c.State, c.Reason)
	}
}

// TestCancelOnAnotherNode: a cycle cancelled through another node stops
// on the node running it once that node hears of the commit (Observe):
// the model call in flight is abandoned, nothing more is recorded.
func TestCancelOnAnotherNode(t *testing.T) {
	leases := newMemLeases()
	ba := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	defer close(ba.gate)
	a, db := testMachine(t, ba, leasedOptions(leases, "node-a"))
	b := newMachineOn(t, db, &brain{}, leasedOptions(leases, "node-b"))
	g := genesis(t, db)
	id, _, err := a.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitAsked(t, ba, "ROBIN", 1)
	if err := b.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	a.Observe(id) // as the notice of B's commit reaches A
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		_, running := a.runs[id]
		a.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cycle still runs on A 10 s after it was cancelled on B")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := a.Get(t.Context(), id)
	if err != nil || c.State != Failed || c.Reason != "cancelled" {
		t.Fatalf("after the cancel: %v %v", c, err)
	}
	if h := leases.holder(leaseName(id)); h != "" {
		t.Errorf("the lease is still held by %q", h)
	}
}
