package uvm_test

import (
	"batos/internal/command"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	if !errors.Is(err, vm.ErrNoMind) || !strings.Contains(err.Error(), "did not answer (connection refused)") {
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
