package cycle

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

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
