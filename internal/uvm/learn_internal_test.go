package uvm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// A send whose message is still not understood after its cycle completed
// (the method removed meanwhile) fails at once, instead of paying for a
// second cycle learning the same method.
func TestLearnHostileSameMethodNotLearnedTwice(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	respond := func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
		persona := llmtest.Persona(req)
		mu.Lock()
		calls[persona]++
		mu.Unlock()
		switch persona {
		case "BRICK":
			return llmtest.Reply{Text: `{"intent": "x", "selector": "zap", "signature": "def zap(self)", "sub_questions": [], "tests": [{"name": "one", "expr": "self.zap() == 1"}]}`}, nil
		case "ROBIN":
			return llmtest.Reply{Text: `{"source": "def zap(self):\n    return 1\n", "tests": []}`}, nil
		}
		return llmtest.Reply{Text: "ok"}, nil
	}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: respond}}
	u, _, err := Open(t.Context(), filepath.Join(t.TempDir(), "live_image.db"), &Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var genesis store.OID
	err = u.db.View(t.Context(), func(tx *image.Tx) (err error) {
		genesis, err = tx.Resolve("genesis")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The attempt never finds zap, as if it were reverted each time.
	attempts := 0
	_, err = u.learned(t.Context(), command.Learn{}, func() (vm.Result, error) {
		attempts++
		return vm.Result{}, &needsLearning{cycle.Mission{Message: vm.Message{Receiver: genesis, Selector: "zap"}}}
	})
	if !errors.Is(err, command.ErrLearningFailed) || !strings.Contains(err.Error(), "cycle 1 completed, yet") {
		t.Errorf("got %v, want command.ErrLearningFailed naming cycle 1", err)
	}
	if attempts != 2 || calls["BRICK"] != 1 || calls["ROBIN"] != 1 {
		t.Errorf("%d attempts, calls %v; want 2 attempts and one cycle's calls", attempts, calls)
	}
}

var missedSelector = regexp.MustCompile(`(?:Plan the method|Write the method) (\w+)`)

// A send that found a method missing, while another send's cycle
// installed it before this one could open a cycle (it read the image
// just before), sends again instead of paying for a second cycle that
// learns the same method — waiting or taking the handle.
func TestHostileStaleMissDoesNotLearnAgain(t *testing.T) {
	var mu sync.Mutex
	plans := map[string]int{}
	respond := func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
		sel := "x"
		if m := missedSelector.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); m != nil {
			sel = m[1]
		}
		switch {
		case llmtest.Persona(req) == "BRICK":
			mu.Lock()
			plans[sel]++
			mu.Unlock()
			return llmtest.Reply{Text: fmt.Sprintf(`{"intent": "x", "selector": %q, "signature": "def %s(self)", "sub_questions": [], "tests": [{"name": "one", "expr": "self.%s() == 1"}]}`, sel, sel, sel)}, nil
		case strings.HasPrefix(req.Messages[0].Content, "You are ROBIN"):
			return llmtest.Reply{Text: fmt.Sprintf(`{"source": "def %s(self):\n    return 1\n", "tests": []}`, sel)}, nil
		}
		return llmtest.Reply{Text: "ok"}, nil
	}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: respond}}
	u, _, err := Open(t.Context(), filepath.Join(t.TempDir(), "live_image.db"), &Options{Mind: server})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var genesis store.OID
	if err := u.db.View(t.Context(), func(tx *image.Tx) (err error) { genesis, err = tx.Resolve("genesis"); return err }); err != nil {
		t.Fatal(err)
	}
	for sel, how := range map[string]command.Learn{"zap": {}, "zop": {Handle: true}} {
		attempts := 0
		res, err := u.learnedFor(t.Context(), how, func() (vm.Result, error) {
			attempts++
			if attempts == 1 {
				// Another sender learns sel meanwhile; this attempt had
				// read the image before the method was installed.
				if _, err := u.Send(t.Context(), "genesis", sel, nil, nil); err != nil {
					return vm.Result{}, err
				}
				return vm.Result{}, &needsLearning{cycle.Mission{Message: vm.Message{Receiver: genesis, Selector: sel}}}
			}
			return u.send(t.Context(), "genesis", sel, nil, nil)
		}, nil)
		if err != nil || res.Repr != "1" || attempts != 2 {
			t.Errorf("%s: %q %v after %d attempts, want the installed method's answer 1 after 2", sel, res.Repr, err, attempts)
		}
		mu.Lock()
		if plans[sel] != 1 {
			t.Errorf("%s: BRICK planned it %d times, want once", sel, plans[sel])
		}
		mu.Unlock()
	}
	var cs []*cycle.Cycle
	if err := u.db.View(t.Context(), func(tx *image.Tx) (err error) { cs, err = cycle.List(tx); return err }); err != nil || len(cs) != 2 {
		t.Errorf("%d cycles (%v), want one per method", len(cs), err)
	}
}
