package cycle

import (
	"encoding/json"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

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

// An argument of megabytes is clipped in the prompts.
func TestHostileHugeArgumentClippedInPrompts(t *testing.T) {
	if got := callText(Mission{Message: vm.Message{Selector: "f", Args: []image.Value{image.String(strings.Repeat("a", 1<<20))}, Kwargs: []image.Slot{{Name: "k", Value: image.String(strings.Repeat("b", 1<<20))}}}}); len(got) > 2*maxSlotRepr+40 {
		t.Errorf("callText is %d bytes", len(got))
	}
}
