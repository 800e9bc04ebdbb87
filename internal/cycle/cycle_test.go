package cycle

import (
	"strings"
	"sync"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

func TestHappyPath(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	var mu sync.Mutex
	var events []string
	m, db := testMachine(t, b, &Options{Events: func(topic string, p map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		if topic == "cycle.transition" {
			events = append(events, p["state"].(string))
		}
	}})
	g := genesis(t, db)
	id, joined, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil || joined {
		t.Fatalf("Start: %d %v %v", id, joined, err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete {
		t.Fatalf("cycle ended %s: %s", c.State, c.Reason)
	}
	if got := strings.Join(events, " "); got != "IDLE DECOMPOSING DELEGATING SYNTHESIZING VALIDATING COMPLETE" {
		t.Errorf("transitions %q", got)
	}
	if len(c.Steps) != 4 || c.Steps[0].Persona != "BRICK" || c.Steps[3].Persona != "ROBIN" || c.Steps[0].Model != "scripted" {
		t.Errorf("steps %+v", c.Steps)
	}
	meth := installedMethod(t, db, g, "display_yourself")
	if meth == nil || !strings.Contains(meth.Source, "I am %s") {
		t.Fatalf("installed %v", meth)
	}
	for _, k := range []string{"origin", "cycle", "personas", "models", "attempts", "tests", "previous"} {
		if _, ok := meth.Meta.Get(image.String(k)); !ok {
			t.Errorf("provenance lacks %s: %s", k, image.Repr(meth.Meta))
		}
	}
	if b.count("BRICK") != 1 || b.count("ROBIN") != 1 || b.count("BABS") != 1 || b.count("ALFRED") != 1 {
		t.Errorf("calls %v, want one each", b.calls)
	}
	// Revert removes the slot again (it held nothing before).
	err = db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(g)
		if err != nil {
			return err
		}
		_, err = Revert(o, "display_yourself")
		return err
	})
	if err != nil || installedMethod(t, db, g, "display_yourself") != nil {
		t.Errorf("revert: %v", err)
	}
}

func TestUnparsablePlanFails(t *testing.T) {
	b := &brain{plans: []string{"I think you should...", `{"intent": "x"`, `{"intent": ""}`}}
	m, db := testMachine(t, b, &Options{PlanTries: 3})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "frobnicate"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Failed || c.FailedIn != Decomposing || !strings.Contains(c.Reason, "no usable plan in 3 tries") {
		t.Errorf("ended %s in %s: %q", c.State, c.FailedIn, c.Reason)
	}
	if b.count("BRICK") != 3 || len(c.Steps) != 3 {
		t.Errorf("BRICK asked %d times, %d steps recorded; want 3 and 3", b.count("BRICK"), len(c.Steps))
	}
	for _, s := range c.Steps {
		if s.Rejected == "" {
			t.Errorf("step %+v not marked rejected", s)
		}
	}
	// The rejected answers were shown to BRICK on the next try.
	if !strings.Contains(c.Steps[1].Prompt[0].Content, "I think you should...") {
		t.Error("the second plan prompt does not quote the first, refused answer")
	}
	if installedMethod(t, db, genesis(t, db), "frobnicate") != nil {
		t.Error("something was installed")
	}
}

func TestAuditFailureRepaired(t *testing.T) {
	bad := `{"source": "load('os', 'system')\ndef display_yourself(self):\n    return open('/etc/passwd')\n", "tests": []}`
	b := &brain{plans: []string{goodPlan}, methods: []string{bad, goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Complete || c.Attempt != 2 || len(c.Failures) != 1 || c.Failures[0].Kind != "audit" {
		t.Fatalf("ended %s after %d attempts, failures %+v", c.State, c.Attempt, c.Failures)
	}
	f := c.Failures[0].Message
	if !strings.Contains(f, "line 1") || !strings.Contains(f, "load") || !strings.Contains(f, "open") {
		t.Errorf("audit failure does not name the lines: %q", f)
	}
	// ROBIN's second prompt carried the failure verbatim.
	second, _ := c.step("synthesize", 2, 0)
	if !strings.Contains(second.Prompt[0].Content, f) {
		t.Error("the repair prompt does not carry the audit failure verbatim")
	}
}

func TestFailingTestsEveryTime(t *testing.T) {
	wrong := `{"source": "def display_yourself(self):\n    return 'nothing here'\n", "tests": []}`
	b := &brain{plans: []string{goodPlan}, methods: []string{wrong, wrong, wrong}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 3})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || len(c.Failures) != 3 || len(c.stepsOf("synthesize")) != 3 {
		t.Fatalf("ended %s with %d failures and %d synthesis steps; want FAILED, 3, 3", c.State, len(c.Failures), len(c.stepsOf("synthesize")))
	}
	for i, f := range c.Failures {
		if f.Attempt != i+1 || f.Kind != "test" || !strings.Contains(f.Message, "names itself") || !strings.Contains(f.Message, "want True") {
			t.Errorf("failure %d: %+v", i, f)
		}
	}
	if installedMethod(t, db, g, "display_yourself") != nil {
		t.Error("a failing method was installed")
	}
}

func TestConcurrentStartsJoin(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}, gate: make(chan struct{})}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	ids := make([]int64, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	close(b.gate)
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("ids %v: want one cycle", ids)
		}
	}
	if c := waitDone(t, m, ids[0]); c.State != Complete {
		t.Fatalf("ended %s: %s", c.State, c.Reason)
	}
	if b.count("BRICK") != 1 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
	// Once complete, a new message for the same selector opens a new cycle.
	b.plans, b.methods = []string{goodPlan}, []string{goodMethod}
	id, joined, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil || joined || id == ids[0] {
		t.Errorf("after completion: id %d joined %v err %v; want a new cycle", id, joined, err)
	}
	waitDone(t, m, id)
}

func TestCancel(t *testing.T) {
	// ROBIN's first answer is abandoned by the cancel (never recorded), so
	// the retry asks ROBIN again.
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod, goodMethod}, gate: make(chan struct{})}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until ROBIN is being asked (blocked on the gate).
	for b.count("ROBIN") == 0 {
		c, _ := m.Get(t.Context(), id)
		if c.State.Terminal() {
			t.Fatalf("ended early: %s %s", c.State, c.Reason)
		}
	}
	if err := m.Cancel(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || c.Reason != "cancelled" || c.FailedIn != Synthesizing {
		t.Errorf("after cancel: %s in %s: %q", c.State, c.FailedIn, c.Reason)
	}
	if err := m.Cancel(t.Context(), id); err == nil {
		t.Error("cancelling a finished cycle succeeded")
	}
	if installedMethod(t, db, g, "display_yourself") != nil {
		t.Error("a cancelled cycle installed its method")
	}
	// Retry resumes from SYNTHESIZING with the recorded answers: BRICK is not asked again.
	close(b.gate)
	if err := m.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Complete {
		t.Fatalf("retry ended %s: %s", c.State, c.Reason)
	}
	if b.count("BRICK") != 1 || b.count("BABS") != 1 || b.count("ROBIN") != 2 {
		t.Errorf("calls %v: want BRICK and BABS once (recorded), ROBIN twice (the first was abandoned)", b.calls)
	}
}

func TestOversizedAnswerRefusedAndClipped(t *testing.T) {
	huge := `{"source": "` + strings.Repeat("x", 300<<10) + `", "tests": []}`
	b := &brain{plans: []string{goodPlan}, methods: []string{huge, goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete || len(c.Failures) != 1 || !strings.Contains(c.Failures[0].Message, "KiB limit") {
		t.Fatalf("ended %s, failures %+v", c.State, c.Failures)
	}
	first, _ := c.step("synthesize", 1, 0)
	if len(first.Answer) != maxAnswer || first.Rejected == "" {
		t.Errorf("oversized answer recorded as %d bytes, rejected %q", len(first.Answer), first.Rejected)
	}
}

func TestBriefMissionNamesItsMethod(t *testing.T) {
	plan := strings.Replace(goodPlan, `"selector": "display_yourself"`, `"selector": "name"`, 1)
	named := strings.ReplaceAll(goodMethod, "display_yourself", "name")
	b := &brain{plans: []string{plan}, methods: []string{named, named, named}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db)}, Brief: "describe yourself"}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	// The plan chose "name", a data slot: installing would clobber it.
	if c.State != Failed || !strings.Contains(c.Failures[0].Message, "holds data") {
		t.Fatalf("ended %s, failures %+v", c.State, c.Failures)
	}
	var name image.Value
	db.View(t.Context(), func(tx *image.Tx) error {
		o, _ := tx.Object(genesis(t, db))
		name, _ = o.Get("name")
		return nil
	})
	if !image.Equal(name, image.String("genesis")) {
		t.Errorf("genesis.name = %s", image.Repr(name))
	}
}

// Generated code may not make methods: what it installed at run time
// would never pass the guardian.
func TestGeneratedCodeMayNotMakeMethods(t *testing.T) {
	sneaky := `{"source": "def display_yourself(self):\n    set_slot(self, 'later', method('def later(self):\\n    return 1\\n'))\n    return 'I am genesis'\n", "tests": []}`
	b := &brain{plans: []string{goodPlan}, methods: []string{sneaky, goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete || len(c.Failures) != 1 || c.Failures[0].Kind != "audit" || !strings.Contains(c.Failures[0].Message, "method may not be used here") {
		t.Fatalf("ended %s, failures %+v", c.State, c.Failures)
	}
	if installedMethod(t, db, genesis(t, db), "later") != nil {
		t.Error("the sneaky method's method was installed")
	}
}
