package uvm_test

import (
	"batos/internal/command"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
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
)

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
