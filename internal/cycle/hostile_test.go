package cycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/vm"
)

// askerFunc is an Asker.
type askerFunc func(ctx context.Context, req mind.Request) (*mind.Answer, error)

func (f askerFunc) Ask(ctx context.Context, req mind.Request) (*mind.Answer, error) {
	return f(ctx, req)
}

// hostileMachine is testMachine with the model's answers from respond.
func hostileMachine(t *testing.T, respond func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error), opts *Options) (*Machine, *image.DB) {
	t.Helper()
	return wrappedMachine(t, respond, nil, opts)
}

// wrappedMachine is hostileMachine whose mind is seen through wrap.
func wrappedMachine(t *testing.T, respond func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error), wrap func(Asker) Asker, opts *Options) (*Machine, *image.DB) {
	t.Helper()
	db := personaImage(t)
	model := &llmtest.Model{Respond: respond}
	var asker Asker = mind.New(db, &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: model}, nil)
	if wrap != nil {
		asker = wrap(asker)
	}
	m := New(db, asker, vm.New(nil), opts)
	t.Cleanup(func() { m.Close() }) // before imagetest verifies the image
	return m, db
}

func personaOf(req *llm.ChatRequest) string {
	return llmtest.Persona(req)
}

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

// seed creates a cycle as recorded (no goroutine runs it).
func seed(t *testing.T, db *image.DB, c *Cycle) int64 {
	t.Helper()
	if err := db.Update(t.Context(), func(tx *image.Tx) error { return create(tx, c) }); err != nil {
		t.Fatal(err)
	}
	return c.ID
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

// A plan naming a persona the image does not have is refused (BRICK is
// asked again) instead of failing the cycle when the question is put.
func TestHostileUnknownPersonaRefused(t *testing.T) {
	bad := strings.Replace(goodPlan, `"BABS"`, `"MALLORY"`, 1)
	b := &brain{plans: []string{bad, goodPlan}, methods: []string{goodMethod}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete {
		t.Fatalf("ended %s: %s", c.State, c.Reason)
	}
	if r := c.Steps[0].Rejected; !strings.Contains(r, "sub-question 1") || !strings.Contains(r, "MALLORY") {
		t.Errorf("first plan rejected with %q, want the unknown persona named", r)
	}
	if b.count("BRICK") != 2 || b.count("ALFRED") != 1 {
		t.Errorf("calls %v: want BRICK twice, ALFRED once (not for the refused plan)", b.calls)
	}
}

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
func TestHostileBriefWithoutTestsRefused(t *testing.T) {
	plan := `{"intent": "say hi", "selector": "hi", "signature": "def hi(self)", "sub_questions": [], "tests": []}`
	meth := `{"source": "def hi(self):\n    return 1 // 0\n", "tests": []}`
	b := &brain{plans: []string{plan}, methods: []string{meth}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 1})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g}, Brief: "say hi"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Failed || !strings.Contains(c.Reason, "no tests") {
		t.Errorf("ended %s: %q, want FAILED for want of tests", c.State, c.Reason)
	}
	if installedMethod(t, db, g, "hi") != nil {
		t.Error("an untested method was installed")
	}
}

// Failures of megabytes (a test answering or raising them, a flood of
// audit violations) are recorded clipped, and a synthesis prompt quotes
// only the latest failures.
func TestHostileHugeFailuresClipped(t *testing.T) {
	plan := `{"intent": "greet", "selector": "greet", "signature": "def greet(self, a)", "sub_questions": [],
	 "tests": [{"name": "big", "expr": "self.greet(1)"}, {"name": "raises", "expr": "fail('z' * 3000000)"}]}`
	big := `{"source": "def greet(self, a):\n    return 'y' * 3000000\n", "tests": []}`
	src, _ := json.Marshal("def greet(self, a):\n    return 1\n" + strings.Repeat("1;", 7000) + "\n")
	flood := `{"source": ` + string(src) + `, "tests": []}`
	b := &brain{plans: []string{plan}, methods: []string{big, flood, big, big, big, big}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 6})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "greet", Args: []image.Value{image.String(strings.Repeat("a", 1<<20))}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Failed || len(c.Failures) != 6 {
		t.Fatalf("ended %s with %d failures", c.State, len(c.Failures))
	}
	for _, f := range c.Failures {
		if len(f.Message) > maxFailure+10 {
			t.Errorf("attempt %d: failure of %d bytes recorded", f.Attempt, len(f.Message))
		}
	}
	if f := c.Failures[1]; f.Kind != "audit" || !strings.Contains(f.Message, "more violations") {
		t.Errorf("flood: %s %.300s", f.Kind, f.Message)
	}
	for _, s := range c.Steps {
		if n := len(s.Prompt[0].Content); n > 64<<10 {
			t.Errorf("%s step (attempt %d): prompt of %d bytes", s.Kind, s.Attempt, n)
		}
	}
	last, _ := c.step("synthesize", 6, 0)
	if p := last.Prompt[0].Content; !strings.Contains(p, "1 earlier attempts failed too") || strings.Contains(p, "Attempt 1 failed") {
		t.Error("the sixth synthesis prompt does not quote only the latest failures")
	}
}

// A cycle cancelled while VALIDATING and retried validates the code it
// has; ROBIN is not asked again for an attempt never judged.
func TestHostileRetryAfterCancelInValidation(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	var m *Machine
	var once sync.Once
	m, db := testMachine(t, b, &Options{Events: func(topic string, p map[string]any) {
		if topic == "cycle.transition" && p["state"] == "VALIDATING" {
			once.Do(func() {
				if err := m.Cancel(context.Background(), p["id"].(int64)); err != nil {
					t.Error(err)
				}
			})
		}
	}})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Failed || c.FailedIn != Validating {
		t.Fatalf("after cancel: %s in %s", c.State, c.FailedIn)
	}
	if err := m.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete || c.Attempt != 1 {
		t.Fatalf("retry ended %s at attempt %d: %s", c.State, c.Attempt, c.Reason)
	}
	if b.count("ROBIN") != 1 {
		t.Errorf("ROBIN asked %d times, want once", b.count("ROBIN"))
	}
}

// An answer that arrives as its cycle is cancelled is still recorded: it
// was paid for, and a retry uses it instead of asking again.
func TestHostileAnswerRecordedDespiteCancel(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	var m *Machine
	var db *image.DB
	var once sync.Once
	m, db = wrappedMachine(t, b.respond, func(a Asker) Asker {
		return askerFunc(func(ctx context.Context, req mind.Request) (*mind.Answer, error) {
			ans, err := a.Ask(ctx, req)
			if req.Persona == "ROBIN" {
				// The answer is in hand as the cancel comes.
				once.Do(func() {
					if cerr := m.Cancel(context.Background(), 1); cerr != nil {
						t.Error(cerr)
					}
				})
			}
			return ans, err
		})
	}, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || c.Reason != "cancelled" {
		t.Fatalf("ended %s: %s", c.State, c.Reason)
	}
	// The cancelled run records the answer as it winds down.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, ok := c.step("synthesize", 1, 0); ok {
			break
		}
		if c, err = m.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.step("synthesize", 1, 0); !ok {
		t.Fatalf("ROBIN's answer, in hand when the cycle was cancelled, was not recorded: %+v", c.Steps)
	}
	if err := m.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if c := waitDone(t, m, id); c.State != Complete {
		t.Fatalf("retry ended %s: %s", c.State, c.Reason)
	}
	if b.count("ROBIN") != 1 || b.count("BRICK") != 1 {
		t.Errorf("calls %v, want each persona once", b.calls)
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

// selectorBrain answers any mission: a plan and a method for the
// selector the prompt names.
type selectorBrain struct {
	mu    sync.Mutex
	calls map[string]int
	delay time.Duration
}

var promptSelector = regexp.MustCompile(`(?:Plan the method|Write the method) (\w+)`)

func (b *selectorBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	persona := personaOf(req)
	b.mu.Lock()
	if b.calls == nil {
		b.calls = map[string]int{}
	}
	b.calls[persona]++
	b.mu.Unlock()
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
		return llmtest.Reply{}, ctx.Err()
	}
	sel := "x"
	if mt := promptSelector.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); mt != nil {
		sel = mt[1]
	}
	switch persona {
	case "BRICK":
		return llmtest.Reply{Text: fmt.Sprintf(`{"intent": "answer 1", "selector": %q, "signature": "def %s(self)", "sub_questions": [{"persona": "BABS", "question": "?"}], "tests": [{"name": "one", "expr": "self.%s() == 1"}]}`, sel, sel, sel)}, nil
	case "ROBIN":
		return llmtest.Reply{Text: fmt.Sprintf(`{"source": "def %s(self):\n    return 1\n", "tests": []}`, sel)}, nil
	}
	return llmtest.Reply{Text: "fine"}, nil
}

// Many cycles through one running slot, with starts, joins, cancels,
// retries and waits racing, then Close with all of it in flight: no
// deadlock, no race (go test -race), and every cycle readable after.
func TestHostileConcurrentLifecycle(t *testing.T) {
	sb := &selectorBrain{delay: time.Millisecond}
	m, db := hostileMachine(t, sb.respond, &Options{MaxRunning: 1})
	g := genesis(t, db)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sel := fmt.Sprintf("s%d", i%6) // pairs join
			id, _, err := m.Start(ctx, Mission{Message: vm.Message{Receiver: g, Selector: sel}}, i%3 == 0)
			if err != nil {
				t.Error(err)
				return
			}
			switch i % 4 {
			case 1:
				m.Cancel(ctx, id) // may find it finished
				m.Retry(ctx, id)  // may find it running again
			case 2:
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Millisecond)
				m.Wait(wctx, id)
				wcancel()
			}
			if _, err := m.Wait(ctx, id); err != nil {
				t.Errorf("wait %d: %v", id, err)
			}
		}()
	}
	wg.Wait()
	// Now with Close racing everything.
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := m.Start(ctx, Mission{Message: vm.Message{Receiver: g, Selector: fmt.Sprintf("late%d", i)}}, false)
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			m.Cancel(ctx, id)
			m.Retry(ctx, id)
			if _, err := m.Wait(ctx, id); err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("wait %d: %v", id, err)
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	done := make(chan struct{})
	go func() { m.Close(); m.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	wg.Wait()
	if _, _, err := m.Start(ctx, Mission{Message: vm.Message{Receiver: g, Selector: "after"}}, false); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	err := db.View(ctx, func(tx *image.Tx) error {
		cs, err := List(tx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.State == Complete && installedMethod(t, db, g, c.Mission.Selector) == nil {
				t.Errorf("cycle %d is COMPLETE but %s is not installed", c.ID, c.Mission.Selector)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An argument of megabytes is clipped in the prompts.
func TestHostileHugeArgumentClippedInPrompts(t *testing.T) {
	if got := callText(Mission{Message: vm.Message{Selector: "f", Args: []image.Value{image.String(strings.Repeat("a", 1<<20))}, Kwargs: []image.Slot{{Name: "k", Value: image.String(strings.Repeat("b", 1<<20))}}}}); len(got) > 2*maxSlotRepr+40 {
		t.Errorf("callText is %d bytes", len(got))
	}
}

// A mission no plan can serve (a selector that is no method name, or
// neither selector nor brief) is refused by Start before any model is
// paid; it used to cost PlanTries plans, or with an empty selector a
// cycle per learning round.
func TestHostileStartRefusesBadMissions(t *testing.T) {
	b := &brain{}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	for _, ms := range []Mission{
		{Message: vm.Message{Receiver: g, Selector: "foo bar"}},
		{Message: vm.Message{Receiver: g, Selector: "ünï"}},
		{Message: vm.Message{Receiver: g, Selector: "parent*"}},
		{Message: vm.Message{Receiver: g, Selector: "lambda"}},
		{Message: vm.Message{Receiver: g, Selector: "if"}},
		{Message: vm.Message{Receiver: g, Selector: strings.Repeat("a", 65)}},
		{Message: vm.Message{Receiver: g}},
		{Message: vm.Message{Receiver: g}, Brief: "  "},
	} {
		if _, _, err := m.Start(t.Context(), ms, false); !errors.Is(err, ErrMission) {
			t.Errorf("Start(%q, brief %q): %v, want ErrMission", clip(ms.Selector, 10), ms.Brief, err)
		}
	}
	err := db.View(t.Context(), func(tx *image.Tx) error {
		cs, err := List(tx)
		if len(cs) != 0 {
			t.Errorf("%d cycles opened", len(cs))
		}
		return err
	})
	if err != nil || b.count("BRICK") != 0 {
		t.Errorf("%v; BRICK asked %d times", err, b.count("BRICK"))
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
