package cycle

import (
	"context"
	"strings"
	"sync"
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
