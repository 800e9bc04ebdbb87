package uvm

import (
	"batos/internal/command"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
			return llmtest.Reply{Text: `{"intent": "x", "selector": "zap", "signature": "def zap(self)", "sub_questions": [], "tests": []}`}, nil
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
