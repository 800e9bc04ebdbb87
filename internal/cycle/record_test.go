package cycle

import (
	"fmt"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/vm"
)

// edit changes slots of cycle id's object, as a REPL user can.
func edit(t *testing.T, db *image.DB, id int64, slots ...image.Slot) {
	t.Helper()
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := cycleObject(tx, id)
		if err != nil {
			return err
		}
		for _, s := range slots {
			if err := o.Set(s.Name, s.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A cycle object edited into a state it cannot run from (a plan set to
// None, plan_tries 0) fails with a reason; it used to crash the process
// with a nil dereference in the cycle's goroutine.
func TestHostileEditedCycleFailsNotPanics(t *testing.T) {
	b := &brain{}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	noPlan := seed(t, db, &Cycle{State: Delegating, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "zap"}}, MaxAttempts: 3, PlanTries: 3})
	noCode := seed(t, db, &Cycle{State: Validating, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "zop"}}, Plan: &Plan{Selector: "zop", Intent: "x"}, Attempt: 1, MaxAttempts: 3, PlanTries: 3})
	noTries := seed(t, db, &Cycle{State: Decomposing, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "zip"}}, MaxAttempts: 3})
	if n, err := m.Resume(t.Context()); n != 3 || err != nil {
		t.Fatalf("Resume: %d %v, want 3", n, err)
	}
	for id, want := range map[int64]string{noPlan: "has no plan", noCode: "has no code", noTries: "allows 0 plan tries"} {
		if c := waitDone(t, m, id); c.State != Failed || !strings.Contains(c.Reason, want) {
			t.Errorf("cycle %d ended %s: %q, want FAILED with %q", id, c.State, c.Reason, want)
		}
	}
	if b.count("BRICK") != 0 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
}

// Garbage in a cycle's slots is reported by slot name, clipped; nothing
// panics, and arguments of the wrong kind are not silently dropped.
func TestHostileGarbageDecodes(t *testing.T) {
	b := &brain{}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	cases := []struct {
		name string
		slot image.Slot
		want string
	}{
		{"huge id", image.Slot{Name: slotID, Value: image.String(strings.Repeat("x", 1<<20))}, "slot id is"},
		{"args", image.Slot{Name: slotArgs, Value: image.Int(5)}, "slot args is 5, want a list"},
		{"kwargs", image.Slot{Name: slotKwargs, Value: image.NewList(image.Int(1))}, "slot kwargs is [1], want a dict"},
		{"failed_in", image.Slot{Name: slotFailedIn, Value: image.String("BOGUS")}, `unknown state "BOGUS"`},
		{"state", image.Slot{Name: slotState, Value: image.String(strings.Repeat("Z", 1<<20))}, "unknown state"},
		{"steps", image.Slot{Name: slotSteps, Value: image.NewList(image.Int(1), image.Int(2))}, "slot steps"},
		{"deliveries", image.Slot{Name: slotDeliveries, Value: image.String("yes")}, "slot deliveries"},
		{"receiver", image.Slot{Name: slotReceiver, Value: image.None}, "slot receiver is None"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := seed(t, db, &Cycle{State: Failed, FailedIn: Synthesizing, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "s_" + strings.ReplaceAll(tc.name, " ", "_")}}})
			edit(t, db, id, tc.slot)
			_, err := m.Get(t.Context(), id)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(err.Error()) > 1000 {
				t.Errorf("Get: %.300v (%d bytes), want an error with %q under 1000 bytes", err, len(fmt.Sprint(err)), tc.want)
			}
			if err := m.Retry(t.Context(), id); err == nil {
				t.Error("Retry of an unreadable cycle succeeded")
			}
		})
	}
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := cycleObject(tx, 1)
		if err != nil {
			return err
		}
		_, err = o.Delete(slotAttempt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "slot attempt is missing") {
		t.Errorf("Get without an attempt slot: %v, want it named missing", err)
	}
}

// One unreadable cycle does not keep the others from resuming, nor
// makes Resume fail (which failed opening the image with a mind).
func TestHostileResumeSkipsUnreadable(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	bad := seed(t, db, &Cycle{State: Idle, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "broken"}}})
	edit(t, db, bad, image.Slot{Name: slotSteps, Value: image.String("garbage")})
	good := seed(t, db, &Cycle{State: Idle, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, MaxAttempts: 3, PlanTries: 3})
	// A slot of the cycles object that is not a cycle's is not listed.
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		cs, err := cyclesObject(tx)
		if err != nil {
			return err
		}
		return cs.Set("cat", image.Ref(g))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.Resume(t.Context()); n != 1 || err != nil {
		t.Fatalf("Resume: %d %v, want 1 and no error", n, err)
	}
	if c := waitDone(t, m, good); c.State != Complete {
		t.Errorf("the readable cycle ended %s: %s", c.State, c.Reason)
	}
	err = db.View(t.Context(), func(tx *image.Tx) error {
		_, err := List(tx)
		return err
	})
	if err == nil || strings.Contains(err.Error(), "cat") || !strings.Contains(err.Error(), "c1") {
		t.Errorf("List: %v, want c1 reported and cat not", err)
	}
}

// An open index edited to name a finished or missing cycle is not
// joined; a next_id set back never overwrites a cycle; a failed_in that
// no cycle runs from cannot be retried.
func TestHostileEditedIndex(t *testing.T) {
	b := &brain{plans: []string{goodPlan, goodPlan}, methods: []string{goodMethod, goodMethod}}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	first, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitDone(t, m, first)
	key := Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}.Key()
	err = db.Update(t.Context(), func(tx *image.Tx) error {
		cs, err := cyclesObject(tx)
		if err != nil {
			return err
		}
		idx := &image.Dict{}
		if err := idx.Set(image.String(key), image.Int(first)); err != nil {
			return err
		}
		if err := idx.Set(image.String(Mission{Message: vm.Message{Receiver: g, Selector: "other"}}.Key()), image.Int(99)); err != nil {
			return err
		}
		if err := cs.Set("open", idx); err != nil {
			return err
		}
		return cs.Set("next_id", image.Int(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	second, joined, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil || joined || second == first {
		t.Fatalf("Start: %d joined %v %v; want a new cycle", second, joined, err)
	}
	if c := waitDone(t, m, second); c.State != Complete {
		t.Errorf("second cycle ended %s: %s", c.State, c.Reason)
	}
	if c, err := m.Get(t.Context(), first); err != nil || c.State != Complete {
		t.Errorf("first cycle after next_id was set back: %v %v", c, err)
	}
	edit(t, db, first, image.Slot{Name: slotState, Value: image.String("FAILED")}, image.Slot{Name: slotFailedIn, Value: image.String("COMPLETE")})
	if err := m.Retry(t.Context(), first); err == nil || !strings.Contains(err.Error(), "failed in COMPLETE") {
		t.Errorf("Retry of a cycle failed in COMPLETE: %v", err)
	}
}

// promptValue is what plainValue makes of a prompt, faster.
func TestPromptValue(t *testing.T) {
	for name, prompt := range map[string][]llm.Message{
		"nil":     nil,
		"empty":   {},
		"two":     {{Role: "system", Content: "You are BRICK."}, {Role: "user", Content: "x < y && \"q\"\n\t\u2028 é 日本"}},
		"no role": {{Content: "?"}},
		"bad":     {{Role: "user", Content: "a\xffb\xfe\xfd"}},
	} {
		want, err := plainValue(prompt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := promptValue(prompt)
		if err != nil {
			t.Fatal(err)
		}
		g, err := image.EncodeState([]image.Slot{{Name: "messages", Value: got}})
		if err != nil {
			t.Fatal(err)
		}
		w, err := image.EncodeState([]image.Slot{{Name: "messages", Value: want}})
		if err != nil {
			t.Fatal(err)
		}
		if string(g) != string(w) {
			t.Errorf("%s: got %s, want %s", name, image.Repr(got), image.Repr(want))
		}
	}
}
