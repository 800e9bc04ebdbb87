package cycle

import (
	"context"
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

// cancellingMachine is wrappedMachine whose cycle 1 is cancelled once,
// as soon as the answer to a request when picks is in hand: the answer
// arrives as the cancel comes.
func cancellingMachine(t *testing.T, respond func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error), when func(mind.Request) bool) (*Machine, *image.DB) {
	t.Helper()
	var m *Machine
	var once sync.Once
	m, db := wrappedMachine(t, respond, func(a Asker) Asker {
		return askerFunc(func(ctx context.Context, req mind.Request) (*mind.Answer, error) {
			ans, err := a.Ask(ctx, req)
			if when(req) {
				once.Do(func() {
					if cerr := m.Cancel(context.Background(), 1); cerr != nil {
						t.Error(cerr)
					}
				})
			}
			return ans, err
		})
	}, nil)
	return m, db
}

func personaOf(req *llm.ChatRequest) string {
	return llmtest.Persona(req)
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
	m, db := cancellingMachine(t, b.respond, func(req mind.Request) bool { return req.Persona == "ROBIN" })
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
