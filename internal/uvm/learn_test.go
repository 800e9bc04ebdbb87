package uvm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

// personaBrain answers the seeded personas by their system prompts: a
// plan from BRICK, research from BABS and ALFRED, a method from ROBIN.
type personaBrain struct {
	mu     sync.Mutex
	calls  map[string]int
	method string
	gate   chan struct{} // if set, BRICK waits for it
}

const learnPlan = `{"intent": "describe the receiver", "selector": "display_yourself", "signature": "def display_yourself(self)",
 "sub_questions": [{"persona": "BABS", "question": "Which slots matter?"}],
 "tests": [{"name": "names itself", "expr": "self.name in self.display_yourself()"}]}`

const learnMethod = `{"source": "def display_yourself(self):\n    return 'I am ' + self.name\n", "tests": []}`

func (b *personaBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	persona := llmtest.Persona(req)
	b.mu.Lock()
	if b.calls == nil {
		b.calls = map[string]int{}
	}
	b.calls[persona]++
	gate, meth := b.gate, b.method
	b.mu.Unlock()
	switch persona {
	case "BRICK":
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return llmtest.Reply{}, ctx.Err()
			}
		}
		plan := strings.ReplaceAll(learnPlan, "display_yourself", selectorOf(req))
		return llmtest.Reply{Text: plan}, nil
	case "ROBIN":
		if meth == "" {
			meth = learnMethod
		}
		return llmtest.Reply{Text: strings.ReplaceAll(meth, "display_yourself", selectorOf(req))}, nil
	}
	return llmtest.Reply{Text: "name and slots"}, nil
}

// selectorOf finds the missing selector the prompt is about.
func selectorOf(req *llm.ChatRequest) string {
	text := req.Messages[len(req.Messages)-1].Content
	for _, sel := range []string{"display_yourself", "introduce"} {
		if strings.Contains(text, sel) {
			return sel
		}
	}
	return "display_yourself"
}

func (b *personaBrain) count(p string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[p]
}

func openLearning(t *testing.T, b *personaBrain, events func(string, map[string]any)) *uvm.UVM {
	t.Helper()
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server, Events: events})
	return u
}

func TestSendLearnsAndAnswers(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Repr != `"I am genesis"` {
		t.Errorf("answer %s, want the new method's", res.Repr)
	}
	// Learned once: the second send runs the installed method.
	if res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); err != nil || res.Repr != `"I am genesis"` {
		t.Errorf("second send: %v %v", res.Repr, err)
	}
	if b.count("BRICK") != 1 || b.count("ROBIN") != 1 {
		t.Errorf("calls %v, want one plan and one method", b.calls)
	}
	// Eval learns too, and the method is inherited by clones.
	if got := eval(t, u, `genesis.clone(name = "g2").display_yourself()`); got != `"I am g2"` {
		t.Errorf("clone: %s", got)
	}
}

func TestConcurrentSendsShareOneCycle(t *testing.T) {
	b := &personaBrain{gate: make(chan struct{})}
	u := openLearning(t, b, nil)
	var wg sync.WaitGroup
	answers := make([]string, 6)
	errs := make([]error, 6)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
			answers[i], errs[i] = res.Repr, err
		}()
	}
	// Let every send reach the cycle before BRICK answers.
	deadline := time.Now().Add(10 * time.Second)
	for b.count("BRICK") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(b.gate)
	wg.Wait()
	for i := range answers {
		if errs[i] != nil || answers[i] != `"I am genesis"` {
			t.Errorf("send %d: %s %v", i, answers[i], errs[i])
		}
	}
	var cycles []*cycle.Cycle
	if err := u.DB().View(ctx, func(tx *image.Tx) (err error) { cycles, err = cycle.List(tx); return }); err != nil {
		t.Fatal(err)
	}
	if len(cycles) != 1 || b.count("BRICK") != 1 {
		t.Errorf("%d cycles, BRICK asked %d times; want 1 and 1", len(cycles), b.count("BRICK"))
	}
}

func TestHandleModeDelivers(t *testing.T) {
	b := &personaBrain{}
	var mu sync.Mutex
	var states []string
	u := openLearning(t, b, func(topic string, p map[string]any) {
		if topic == "cycle.transition" {
			mu.Lock()
			states = append(states, p["state"].(string))
			mu.Unlock()
		}
	})
	res, err := u.SendWith(ctx, "genesis", "introduce", nil, nil, command.Learn{Handle: true})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := res.Value.(*image.Dict)
	if !ok {
		t.Fatalf("handle mode answered %s, want a handle", res.Repr)
	}
	idv, _ := d.Get(image.String("cycle"))
	id := int64(idv.(image.Int))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := u.Cycles().Wait(wctx, id)
	if err != nil || c.State != cycle.Complete {
		t.Fatalf("cycle %d: %v %v", id, c, err)
	}
	// The answer is delivered just after COMPLETE: wait for it.
	for c.Answer() == "" && wctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		c, _ = u.Cycles().Get(ctx, id)
	}
	if c.Answer() != `"I am genesis"` {
		t.Errorf("delivered answer %q", c.Answer())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) < 6 || states[0] != "IDLE" || states[len(states)-1] != "COMPLETE" {
		t.Errorf("events %v", states)
	}
}

func TestLearningFailureAndTimeout(t *testing.T) {
	b := &personaBrain{method: `{"source": "def display_yourself(self):\n    return 'wrong'\n", "tests": []}`}
	u := openLearning(t, b, nil)
	_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if !errors.Is(err, command.ErrLearningFailed) || !strings.Contains(err.Error(), "names itself") {
		t.Errorf("send with a method failing its tests: %v, want ErrLearningFailed naming the test", err)
	}
	b2 := &personaBrain{gate: make(chan struct{})}
	defer close(b2.gate)
	u2 := openLearning(t, b2, nil)
	_, err = u2.SendWith(ctx, "genesis", "display_yourself", nil, nil, command.Learn{Timeout: 50 * time.Millisecond})
	var le *command.LearningError
	// The error names the cycle for any client; the CLI's advice (batos
	// cycle show 1) is the CLI's to add (cmd/batos TestLearnOverTheBridge).
	if !errors.As(err, &le) || le.Cycle != 1 || !strings.Contains(err.Error(), "cycle 1") || strings.Contains(err.Error(), "batos ") {
		t.Errorf("timeout: %v, want a LearningError naming cycle 1 and no CLI command", err)
	}
}

func TestNoMindStillExplains(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if !errors.Is(err, vm.ErrNoMind) {
		t.Errorf("without a mind: %v, want ErrNoMind", err)
	}
}

// In handle mode the cycle answers the sender's own message, re-sent from
// the top, not the missing message it reached deeper down.
func TestHandleModeDeliversTheOriginalSend(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	eval(t, u, `genesis.outer = method("def outer(self, x):\n    return 'outer %s: ' % x + self.display_yourself()")`)
	res, err := u.SendWith(ctx, "genesis", "outer", []image.Value{image.Int(7)}, nil, command.Learn{Handle: true})
	if err != nil {
		t.Fatal(err)
	}
	idv, _ := res.Value.(*image.Dict).Get(image.String("cycle"))
	id := int64(idv.(image.Int))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for wctx.Err() == nil {
		c, err := u.Cycles().Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State.Terminal() && len(c.Deliveries) == 1 && c.Deliveries[0].State != cycle.DeliveryPending {
			if c.Mission.Selector != "display_yourself" || c.Deliveries[0].Message.Selector != "outer" || c.Deliveries[0].Answer != `"outer 7: I am genesis"` {
				t.Errorf("cycle for %s delivered %+v", c.Mission.Selector, c.Deliveries[0])
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the delivery never came")
}

// An on-demand mind is reached only by a message nothing understands; a
// server that does not answer is named in the error, and asked again by
// the next such message.
func TestMindOnDemand(t *testing.T) {
	u, _ := open(t, filepath.Join(t.TempDir(), "live_image.db"))
	b := &personaBrain{}
	var connects int
	down := true
	u.EnableMindOnDemand(func(ctx context.Context) (*mind.Server, error) {
		connects++
		if down {
			return nil, errors.New("connection refused")
		}
		return &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}, nil
	}, nil)
	eval(t, u, `genesis.describe()`)
	if connects != 0 || u.Cycles() != nil {
		t.Fatalf("understood messages connected %d times", connects)
	}
	_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if !errors.Is(err, vm.ErrNoMind) || !strings.Contains(err.Error(), "no mind: no inference server has answered yet (connection refused)") {
		t.Errorf("with the server down: %v", err)
	}
	down = false
	res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	if err != nil || res.Repr != `"I am genesis"` || connects != 2 {
		t.Errorf("with the server up: %s %v after %d connects", res.Repr, err, connects)
	}
}

// TestEnableMindWhileSending: a mind enabled while sends run, as batos
// run enables one whose server answered late, is safe: a send answers
// no_mind before it and learns after it; once the image is closing,
// EnableMind refuses rather than start cycles on it.
func TestEnableMindWhileSending(t *testing.T) {
	u := uvmtest.Open(t, nil)
	b := &personaBrain{}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var before, after int
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
				mu.Lock()
				switch {
				case errors.Is(err, vm.ErrNoMind):
					before++
				case err == nil && res.Repr == `"I am genesis"`:
					after++
				default:
					t.Errorf("send while the mind arrives: %s %v", res.Repr, err)
				}
				mu.Unlock()
				if err != nil && !errors.Is(err, vm.ErrNoMind) {
					return
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := before
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
	}
	if err := u.EnableMind(ctx, server, nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
	close(stop)
	wg.Wait()
	if err != nil || res.Repr != `"I am genesis"` {
		t.Errorf("send after EnableMind: %s %v, want the learned answer", res.Repr, err)
	}
	if before == 0 || b.count("BRICK") != 1 {
		t.Errorf("%d sends answered no_mind before the mind, %d learned after; BRICK planned %d times, want 1", before, after, b.count("BRICK"))
	}

	closing := uvmtest.Open(t, nil)
	closing.Close()
	if err := closing.EnableMind(ctx, server, nil, nil); !errors.Is(err, uvm.ErrShutdown) || closing.Cycles() != nil {
		t.Errorf("EnableMind after Close: %v, want ErrShutdown and no cycles", err)
	}
}

// A message nothing understands, sent to (or with) an object the same
// send created, cannot be learned: the send is undone first. The error
// says so, instead of "start cycle: reference to a missing object".
func TestLearnHostileObjectOfTheSameSend(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	for _, code := range []string{`new(name = "n").display_yourself()`, `genesis.display_yourself(new(x = 1))`} {
		_, err := u.Eval(ctx, code)
		if !errors.Is(err, image.ErrDangling) || !strings.Contains(err.Error(), "create the object in a send of its own") {
			t.Errorf("%s: %v, want an explanation wrapping ErrDangling", code, err)
		}
	}
	if b.count("BRICK") != 0 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
}

// A cycle object edited into garbage does not keep the image from
// opening with a mind (it used to fail Open with "resume cycles"); it is
// logged, and the other cycles still resume.
func TestLearnHostileOpenWithUnreadableCycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live_image.db")
	b := &personaBrain{}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Eval(ctx, `set_slot(cycles.c1, "id", "garbage")`); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	u, _, err = uvm.Open(ctx, path, &uvm.Options{Mind: server, MindOptions: &mind.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
	if err != nil {
		t.Fatalf("reopen with an unreadable cycle: %v", err)
	}
	defer u.Close()
	if !strings.Contains(logs.String(), `slot id is \"garbage\"`) {
		t.Errorf("log %q does not report the unreadable cycle", logs.String())
	}
	// Learning still works.
	if res, err := u.Send(ctx, "traits", "display_yourself", nil, nil); err != nil || !strings.HasPrefix(res.Repr, `"I am `) {
		t.Errorf("send after reopening: %s %v", res.Repr, err)
	}
}

// Shutdown while a send waits for its cycle: the send returns at once
// with a LearningError, and the shutdown completes.
func TestLearnHostileShutdownWhileWaiting(t *testing.T) {
	b := &personaBrain{gate: make(chan struct{})}
	defer close(b.gate)
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	errs := make(chan error, 1)
	go func() {
		_, err := u.Send(ctx, "genesis", "display_yourself", nil, nil)
		errs <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); b.count("BRICK") == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var le *command.LearningError
	if err := <-errs; !errors.As(err, &le) {
		t.Errorf("waiting send: %v, want a LearningError", err)
	}
	if _, err := u.Send(ctx, "genesis", "display_yourself", nil, nil); !errors.Is(err, uvm.ErrShutdown) {
		t.Errorf("send after Shutdown: %v, want ErrShutdown", err)
	}
}

// A message whose selector no method can have is refused before any
// model is asked.
func TestLearnHostileBadSelectorRefused(t *testing.T) {
	b := &personaBrain{}
	u := openLearning(t, b, nil)
	for _, code := range []string{`send(genesis, "foo bar")`, `send(genesis, "ünï")`} {
		if _, err := u.Eval(ctx, code); !errors.Is(err, cycle.ErrMission) {
			t.Errorf("%s: %v, want cycle.ErrMission", code, err)
		}
	}
	if b.count("BRICK") != 0 {
		t.Errorf("BRICK asked %d times", b.count("BRICK"))
	}
}

var (
	planFor  = regexp.MustCompile(`Plan the method (\w+) that answers it`)
	writeFor = regexp.MustCompile(`Write the method (\w+) for`)
)

// anyBrain learns any selector: a method answering its own name.
type anyBrain struct {
	mu    sync.Mutex
	calls map[string]int
}

func (b *anyBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	persona := llmtest.Persona(req)
	prompt := req.Messages[len(req.Messages)-1].Content
	b.mu.Lock()
	if b.calls == nil {
		b.calls = map[string]int{}
	}
	b.calls[persona]++
	b.mu.Unlock()
	switch persona {
	case "BRICK":
		m := planFor.FindStringSubmatch(prompt)
		if m == nil {
			return llmtest.Reply{}, fmt.Errorf("no selector in %q", prompt)
		}
		plan, _ := json.Marshal(map[string]any{"intent": "answer " + m[1], "selector": m[1], "signature": "def " + m[1] + "(self)",
			"sub_questions": []any{}, "tests": []any{map[string]any{"name": "named", "expr": "self." + m[1] + "() == '" + m[1] + "'"}}})
		return llmtest.Reply{Text: string(plan)}, nil
	case "ROBIN":
		m := writeFor.FindStringSubmatch(prompt)
		if m == nil {
			return llmtest.Reply{}, fmt.Errorf("no selector in %q", prompt)
		}
		src, _ := json.Marshal(map[string]any{"source": "def " + m[1] + "(self):\n    return '" + m[1] + "'\n", "tests": []any{}})
		return llmtest.Reply{Text: string(src)}, nil
	}
	return llmtest.Reply{Text: "ok"}, nil
}

// Two senders take the handle of a message that needs two missing
// methods, one after the other: each is answered exactly once, with its
// own argument, by the cycle that learned the second method.
func TestHostileHandleSendersNeedingTwoMethods(t *testing.T) {
	b := &anyBrain{}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	eval(t, u, `genesis.outer = method("def outer(self, x):\n    self.count = (self.count if has_slot(self, 'count') else 0) + 1\n    return '%s %s %s' % (x, self.first(), self.second())")`)
	for _, x := range []int64{5, 6} {
		if _, err := u.SendWith(ctx, "genesis", "outer", []image.Value{image.Int(x)}, nil, command.Learn{Handle: true}); err != nil {
			t.Fatal(err)
		}
	}
	var cs []*cycle.Cycle
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if err := u.DB().View(ctx, func(tx *image.Tx) (err error) { cs, err = cycle.List(tx); return }); err != nil {
			t.Fatal(err)
		}
		done := len(cs) > 0
		for _, c := range cs {
			done = done && c.State.Terminal()
			for _, d := range c.Deliveries {
				done = done && d.State != cycle.DeliveryPending
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries never settled: %+v", cs)
		}
	}
	answers := map[string]int{}
	for _, c := range cs {
		for _, d := range c.Deliveries {
			if d.State == cycle.DeliveryAnswered {
				answers[d.Answer]++
			}
		}
	}
	if len(cs) != 2 || answers[`"5 first second"`] != 1 || answers[`"6 first second"`] != 1 || len(answers) != 2 {
		t.Errorf("%d cycles, answers %v; want 2 cycles answering each sender once", len(cs), answers)
	}
	if got := eval(t, u, "genesis.count"); got != "2" {
		t.Errorf("genesis.count = %s, want 2: each message sent for real once", got)
	}
}

// A send waiting for its cycle when the server shuts down is told the
// server is stopping (shutting_down, with the cycle), not that the cycle
// is still learning: it does not go on here.
func TestHostileShutdownWhileWaitingIsShuttingDown(t *testing.T) {
	b := &personaBrain{gate: make(chan struct{})}
	defer close(b.gate)
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server})
	svc := command.NewLocal(u, "")
	errs := make(chan error, 1)
	go func() {
		_, err := svc.Send(ctx, command.SendRequest{Target: "genesis", Selector: "display_yourself"})
		errs <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); b.count("BRICK") == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	err := <-errs
	if command.KindOf(err) != command.KindShuttingDown || errors.Is(err, command.ErrStillLearning) || command.CycleOf(err) != 1 {
		t.Errorf("send waiting at shutdown: %v, want shutting_down about cycle 1", err)
	}
	if err != nil && strings.Contains(err.Error(), "still learning") {
		t.Errorf("message %q", err)
	}
}
