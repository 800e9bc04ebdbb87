package cycle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/vm"
)

// What a test changes cannot make the original call (or another test)
// pass: each runs in a sandbox of its own.
func TestHostileTestSideEffectsIsolated(t *testing.T) {
	plan := `{"intent": "greet", "selector": "greet", "signature": "def greet(self)", "sub_questions": [],
	 "tests": [{"name": "prepares", "expr": "set_slot(self, 'greeting', 'hi') == None"},
	           {"name": "relies", "expr": "self.greeting == 'hi'"}]}`
	meth := `{"source": "def greet(self):\n    return self.greeting + '!'\n", "tests": []}`
	b := &brain{plans: []string{plan}, methods: []string{meth}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 1})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "greet"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || len(c.Failures) != 1 {
		t.Fatalf("ended %s with failures %+v; want FAILED: the method only works after a test's side effect", c.State, c.Failures)
	}
	msg := c.Failures[0].Message
	if !strings.Contains(msg, "relies") || !strings.Contains(msg, "the original call greet()") || strings.Contains(msg, "prepares") {
		t.Errorf("failure %q: want the dependent test and the original call reported, not the side-effect test", msg)
	}
	if installedMethod(t, db, g, "greet") != nil {
		t.Error("installed")
	}
}

// A brief's candidate with no test at all is never run; it is refused.
// (A plan without tests is refused when it arrives and BRICK is asked
// again, so the cycle fails in DECOMPOSING once BRICK keeps giving one.)
func TestHostileBriefWithoutTestsRefused(t *testing.T) {
	plan := `{"intent": "say hi", "selector": "hi", "signature": "def hi(self)", "sub_questions": [], "tests": []}`
	meth := `{"source": "def hi(self):\n    return 1 // 0\n", "tests": []}`
	b := &brain{plans: []string{plan, plan, plan, plan}, methods: []string{meth}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 1})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g}, Brief: "say hi"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Failed || !strings.Contains(c.Reason, `lacks "tests"`) {
		t.Errorf("ended %s: %q, want FAILED for want of tests", c.State, c.Reason)
	}
	if installedMethod(t, db, g, "hi") != nil {
		t.Error("an untested method was installed")
	}
}

// A data slot that appears between validation and install is not
// overwritten; a previous version edited into garbage is not restored.
func TestHostileInstallAndRevertGarbage(t *testing.T) {
	_, db := testMachine(t, &brain{}, nil)
	g := genesis(t, db)
	c := &Cycle{ID: 7, Mission: Mission{Message: vm.Message{Receiver: g, Selector: "name"}}, Plan: &Plan{Selector: "name"}, Code: "def name(self):\n    return 1\n"}
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(g)
		if err != nil {
			return err
		}
		err = install(tx, c, time.Now())
		if err == nil || !strings.Contains(err.Error(), "holds data") {
			t.Errorf("install over a data slot: %v", err)
		}
		prev := &image.Dict{}
		if err := prev.Set(image.String("method"), image.Int(3)); err != nil {
			return err
		}
		meta := &image.Dict{}
		if err := meta.Set(image.String("previous"), prev); err != nil {
			return err
		}
		if err := o.Set("m", &image.Method{Source: "def m(self):\n    return 2\n", Meta: meta}); err != nil {
			return err
		}
		if _, err := Revert(o, "m"); !errors.Is(err, ErrNoPrevious) {
			t.Errorf("Revert to a non-string source: %v, want ErrNoPrevious", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
