package cycle

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/vm"
)

const addPlan = `{"intent": "add two numbers", "selector": "add", "signature": "def add(self, a, b)",
 "sub_questions": [], "tests": [{"name": "adds", "expr": "self.add(2, 3) == 5"}]}`

const addMethod = `{"source": "def add(self, a, b):\n    self.adds = (self.adds if has_slot(self, 'adds') else 0) + 1\n    return a + b\n", "tests": []}`

// realDeliver sends the message for real in the recording transaction.
func realDeliver(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
	res, err := vm.New(nil).Send(ctx, tx, msg.Receiver, msg.Selector, msg.Args, msg.Kwargs)
	return res.Repr, err
}

// waitDelivered waits until cycle id has no pending delivery.
func waitDelivered(t *testing.T, m *Machine, id int64) *Cycle {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := m.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State.Terminal() && c.pendingDelivery() < 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle %d still %s with deliveries %+v", id, c.State, c.Deliveries)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func slotOf(t *testing.T, db *image.DB, name string) image.Value {
	t.Helper()
	var v image.Value
	db.View(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(genesis(t, db))
		if err == nil {
			v, _ = o.Get(name)
		}
		return err
	})
	return v
}

// Every sender that took the handle is answered, with its own arguments,
// exactly once.
func TestJoinersAreEachDelivered(t *testing.T) {
	b := &brain{plans: []string{addPlan}, methods: []string{addMethod}, gate: make(chan struct{})}
	m, db := testMachine(t, b, &Options{Deliver: realDeliver})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	id2, joined, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "add", Args: []image.Value{image.Int(30), image.Int(4)}}}, true)
	if err != nil || !joined || id2 != id {
		t.Fatalf("second start: %d joined %v %v", id2, joined, err)
	}
	// A waiting sender joins without adding a delivery.
	if _, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "add", Args: []image.Value{image.Int(5), image.Int(5)}}}, false); err != nil {
		t.Fatal(err)
	}
	close(b.gate)
	c := waitDelivered(t, m, id)
	if c.State != Complete || len(c.Deliveries) != 2 {
		t.Fatalf("ended %s with deliveries %+v", c.State, c.Deliveries)
	}
	for i, want := range []string{"3", "34"} {
		if d := c.Deliveries[i]; d.State != DeliveryAnswered || d.Answer != want {
			t.Errorf("delivery %d: %+v, want answered %s", i, d, want)
		}
	}
	if c.Answer() != "3" {
		t.Errorf("Answer %q, want the first message's", c.Answer())
	}
	// The sandbox's runs were rolled back; the two deliveries were kept.
	if got := slotOf(t, db, "adds"); !image.Equal(got, image.Int(2)) {
		t.Errorf("genesis.adds = %s, want 2 (one per delivery)", image.Repr(got))
	}
}

// A delivery interrupted before its transaction commits is sent again
// when the cycle resumes, once: its effects and its answer commit
// together.
func TestDeliveryResumesExactlyOnce(t *testing.T) {
	b := &brain{plans: []string{addPlan}, methods: []string{addMethod}}
	entered := make(chan struct{})
	var once sync.Once
	stuck := func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		answer, err := realDeliver(ctx, tx, msg) // the send's writes are in tx...
		once.Do(func() { close(entered) })
		<-ctx.Done() // ...and the machine closes before it commits
		return answer, err
	}
	m, db := testMachine(t, b, &Options{Deliver: stuck})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	m.Close()
	c, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != Complete || c.Deliveries[0].State != DeliveryPending || slotOf(t, db, "adds") != nil {
		t.Fatalf("after the interruption: %s, delivery %+v, adds %v; want COMPLETE, pending, nothing kept", c.State, c.Deliveries[0], slotOf(t, db, "adds"))
	}
	m2 := New(db, m.asker, vm.New(nil), &Options{Deliver: realDeliver})
	defer m2.Close()
	if n, err := m2.Resume(t.Context()); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v; want the complete cycle with a pending delivery", n, err)
	}
	c = waitDelivered(t, m2, id)
	if d := c.Deliveries[0]; d.State != DeliveryAnswered || d.Answer != "3" {
		t.Errorf("delivery %+v", d)
	}
	if got := slotOf(t, db, "adds"); !image.Equal(got, image.Int(1)) {
		t.Errorf("genesis.adds = %s, want 1: delivered exactly once", image.Repr(got))
	}
	if b.count("BRICK") != 1 || b.count("ROBIN") != 1 {
		t.Errorf("calls %v: resuming a delivery asks no model", b.calls)
	}
}

// A delivered message that needs yet another method is forwarded to the
// cycle that learns it, which answers it when it completes.
func TestDeliveryForwardedToTheNextCycle(t *testing.T) {
	greetPlan := strings.NewReplacer("add two numbers", "greet", `"selector": "add"`, `"selector": "greet"`, "def add(self, a, b)", "def greet(self)", "self.add(2, 3) == 5", "self.greet() == 'hi'").Replace(addPlan)
	greetMethod := `{"source": "def greet(self):\n    return 'hi'\n", "tests": []}`
	b := &brain{plans: []string{addPlan, greetPlan}, methods: []string{addMethod, greetMethod}}
	var mu sync.Mutex
	first := true
	deliver := func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if first && msg.Selector == "add" {
			first = false
			return "", &UnlearnedError{Mission: Mission{Message: vm.Message{Receiver: msg.Receiver, Selector: "greet"}}}
		}
		return realDeliver(ctx, tx, msg)
	}
	m, db := testMachine(t, b, &Options{Deliver: deliver})
	add := Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}
	id, _, err := m.Start(t.Context(), add, true)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDelivered(t, m, id)
	if d := c.Deliveries[0]; d.State != DeliveryForwarded || !strings.Contains(d.Answer, "forwarded to cycle 2") {
		t.Fatalf("first cycle's delivery %+v", d)
	}
	c2 := waitDelivered(t, m, 2)
	if c2.State != Complete || c2.Mission.Selector != "greet" || len(c2.Deliveries) != 1 {
		t.Fatalf("second cycle: %s %s %+v", c2.State, c2.Mission.Selector, c2.Deliveries)
	}
	if d := c2.Deliveries[0]; d.Message.Selector != "add" || d.State != DeliveryAnswered || d.Answer != "3" {
		t.Errorf("the forwarded delivery %+v, want add answered 3", d)
	}
}

// A failed cycle's senders are told, not left pending; a retry takes
// their messages up again and answers them.
func TestFailedCycleAbandonsThenRetryDelivers(t *testing.T) {
	wrong := `{"source": "def add(self, a, b):\n    return a - b\n", "tests": []}`
	b := &brain{plans: []string{addPlan}, methods: []string{wrong}}
	m, db := testMachine(t, b, &Options{Deliver: realDeliver, MaxAttempts: 1})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || c.Deliveries[0].State != DeliveryAbandoned || !strings.Contains(c.Deliveries[0].Answer, "the cycle failed") {
		t.Fatalf("after failing: %s, delivery %+v", c.State, c.Deliveries[0])
	}
	b.mu.Lock()
	b.methods = []string{addMethod}
	b.mu.Unlock()
	if err := m.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c = waitDelivered(t, m, id)
	if c.State != Complete || c.Deliveries[0].State != DeliveryAnswered || c.Deliveries[0].Answer != "3" {
		t.Errorf("after retry: %s, delivery %+v", c.State, c.Deliveries[0])
	}
}

// A brief names no message: even with a delivery edited into its object,
// completing it calls nothing (the new method is not run for real
// unasked).
func TestHostileBriefNeverDelivers(t *testing.T) {
	plan := `{"intent": "say hi", "selector": "hi", "signature": "def hi(self)", "sub_questions": [], "tests": [{"name": "hi", "expr": "self.hi() == 'hi'"}]}`
	meth := `{"source": "def hi(self):\n    return 'hi'\n", "tests": []}`
	b := &brain{plans: []string{plan}, methods: []string{meth}}
	var delivered sync.Mutex
	calls := 0
	m, db := testMachine(t, b, &Options{Deliver: func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		delivered.Lock()
		calls++
		delivered.Unlock()
		return "ran", nil
	}})
	brief := Mission{Message: vm.Message{Receiver: genesis(t, db)}, Brief: "say hi"}
	id := seed(t, db, &Cycle{State: Idle, Mission: brief, Deliveries: []Delivery{{Message: brief, State: DeliveryPending}}, MaxAttempts: 3, PlanTries: 3})
	if _, err := m.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Complete || c.Answer() != "" {
		t.Fatalf("ended %s answering %q: %s", c.State, c.Answer(), c.Reason)
	}
	m.Close() // a delivery would come after COMPLETE, on the cycle's goroutine
	delivered.Lock()
	defer delivered.Unlock()
	if calls != 0 {
		t.Errorf("Deliver called %d times for a brief", calls)
	}
}

// needsGreet delivers add only once the receiver has greet: before, the
// message reaches a missing method and is forwarded.
func needsGreet(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
	if msg.Selector == "add" {
		o, err := tx.Object(msg.Receiver)
		if err != nil {
			return "", err
		}
		if _, ok := o.Get("greet"); !ok {
			return "", &UnlearnedError{Mission: Mission{Message: vm.Message{Receiver: msg.Receiver, Selector: "greet"}}}
		}
	}
	return realDeliver(ctx, tx, msg)
}

var greetPlan = strings.NewReplacer("add two numbers", "greet", `"selector": "add"`, `"selector": "greet"`,
	"def add(self, a, b)", "def greet(self)", "self.add(2, 3) == 5", "self.greet() == 'hi'").Replace(addPlan)

const greetMethod = `{"source": "def greet(self):\n    return 'hi'\n", "tests": []}`

// A crash right after a delivery is forwarded (the next cycle holds the
// message) must not leave it pending in the first cycle as well: on
// resume it would be answered twice, once by each cycle.
func TestHostileForwardThenCrashDeliversOnce(t *testing.T) {
	b := &brain{plans: []string{addPlan, greetPlan}, methods: []string{addMethod, greetMethod}}
	var crash atomic.Bool
	crash.Store(true)
	crashed := make(chan struct{})
	events := func(topic string, payload map[string]any) {
		// The process dies as the next cycle is announced.
		if topic == "cycle.transition" && payload["id"] == int64(2) && payload["state"] == "IDLE" && crash.CompareAndSwap(true, false) {
			close(crashed)
			runtime.Goexit()
		}
	}
	m, db := testMachine(t, b, &Options{Deliver: needsGreet, Events: events})
	g := genesis(t, db)
	if _, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true); err != nil {
		t.Fatal(err)
	}
	<-crashed
	m.Close()

	m2 := New(db, m.asker, vm.New(nil), &Options{Deliver: needsGreet})
	defer m2.Close()
	if _, err := m2.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	c1, c2 := waitDelivered(t, m2, 1), waitDelivered(t, m2, 2)
	answered := 0
	for _, c := range []*Cycle{c1, c2} {
		for _, d := range c.Deliveries {
			if d.Message.Selector == "add" && d.State == DeliveryAnswered {
				answered++
			}
		}
	}
	if got := slotOf(t, db, "adds"); answered != 1 || !image.Equal(got, image.Int(1)) {
		t.Errorf("add answered %d times, genesis.adds = %s; want once\ncycle 1: %+v\ncycle 2: %+v", answered, image.Repr(got), c1.Deliveries, c2.Deliveries)
	}
}

// A delivery forwarded while the machine closes stays pending (it is
// forwarded when the cycle resumes), rather than failing for good with
// "no cycle could learn it: machine closed".
func TestHostileForwardWhileClosingStaysPending(t *testing.T) {
	b := &brain{plans: []string{addPlan, greetPlan}, methods: []string{addMethod, greetMethod}}
	var m *Machine
	closing := func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		// Close begins as the send finds greet missing: the machine is
		// closed before its context ends.
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		return needsGreet(ctx, tx, msg)
	}
	m, db := testMachine(t, b, &Options{Deliver: closing})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDelivered(t, m, id)
	if d := c.Deliveries[0]; d.State == DeliveryFailed {
		t.Errorf("delivery %+v: a shutdown failed it for good", d)
	}
}

// A delivery that still lacks the very method its cycle installed (it
// was removed meanwhile: reverted, say) fails, rather than open a cycle
// that pays to learn it again and undoes the removal.
func TestHostileDeliveryLackingItsOwnMethodFails(t *testing.T) {
	b := &brain{plans: []string{addPlan, addPlan}, methods: []string{addMethod, addMethod}}
	removed := func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		return "", &UnlearnedError{Mission: Mission{Message: vm.Message{Receiver: msg.Receiver, Selector: msg.Selector}}}
	}
	m, db := testMachine(t, b, &Options{Deliver: removed})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDelivered(t, m, id)
	if d := c.Deliveries[0]; d.State != DeliveryFailed || !strings.Contains(d.Answer, "removed meanwhile") {
		t.Errorf("delivery %+v, want failed saying the method was removed", d)
	}
	if b.count("BRICK") != 1 {
		t.Errorf("BRICK asked %d times: add was learned again", b.count("BRICK"))
	}
}

// A delivery that found a method missing which a cycle installed before
// the delivery could be forwarded is sent again, not forwarded to a new
// cycle that pays to learn the method a second time.
func TestHostileStaleMissInDeliveryIsSentAgain(t *testing.T) {
	b := &brain{plans: []string{addPlan}, methods: []string{addMethod}}
	var calls atomic.Int32
	stale := func(ctx context.Context, tx *image.Tx, msg Mission) (string, error) {
		if calls.Add(1) == 1 {
			// As if this send had read the image before greet was installed.
			return "", &UnlearnedError{Mission: Mission{Message: vm.Message{Receiver: msg.Receiver, Selector: "greet"}}}
		}
		return realDeliver(ctx, tx, msg)
	}
	m, db := testMachine(t, b, &Options{Deliver: stale})
	g := genesis(t, db)
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(g)
		if err != nil {
			return err
		}
		return o.Set("greet", &image.Method{Source: "def greet(self):\n    return 'hi'\n"})
	})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "add", Args: []image.Value{image.Int(1), image.Int(2)}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDelivered(t, m, id)
	if d := c.Deliveries[0]; d.State != DeliveryAnswered || d.Answer != "3" {
		t.Errorf("delivery %+v, want answered 3", d)
	}
	if _, err := m.Get(t.Context(), id+1); err == nil || b.count("BRICK") != 1 {
		t.Errorf("a second cycle was opened (BRICK asked %d times)", b.count("BRICK"))
	}
}
