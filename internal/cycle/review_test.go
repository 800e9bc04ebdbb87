package cycle

import (
	"context"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/vm"
)

const (
	wrongMethod = `{"source": "def display_yourself(self):\n    return 'nothing here'\n", "tests": []}`
	findings    = "Line 2 returns a constant: return 'I am %s' % self.name instead."
)

// reviewingBrain is brain, with ALFRED answering a review with findings.
func reviewingBrain(b *brain) func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	return func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
		r, err := b.respond(ctx, req)
		if llmtest.Persona(req) == reviewer && strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "Review the candidate") {
			r.Text = findings
		}
		return r, err
	}
}

// A candidate that fails validation is reviewed by ALFRED, with the
// receiver, the candidate, the failure and the dialect in view; the
// review is recorded as a step, and ROBIN's next prompt carries it
// verbatim after the failure.
func TestReviewReachesRobin(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{wrongMethod, goodMethod}}
	m, db := hostileMachine(t, reviewingBrain(b), nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Complete || c.Attempt != 2 {
		t.Fatalf("ended %s after %d attempts: %s", c.State, c.Attempt, c.Reason)
	}
	var order []string
	for _, s := range c.Steps {
		order = append(order, s.Persona)
	}
	if got, want := strings.Join(order, " "), "BRICK BABS ALFRED ROBIN ALFRED ROBIN"; got != want && got != "BRICK ALFRED BABS ROBIN ALFRED ROBIN" {
		t.Errorf("steps by %s, want %s", got, want)
	}
	r, ok := c.review(1)
	if !ok || r.Persona != reviewer || r.Kind != StepDelegate || r.Attempt != 1 || r.Index != -2 || r.Answer != findings {
		t.Fatalf("review of attempt 1: %+v (found %v)", r, ok)
	}
	prompt := r.Prompt[0].Content
	for _, want := range []string{"return 'nothing here'", "The receiver's slots", "name = \"genesis\"", "Validation refused it (test)",
		c.Failures[0].Message, "Method code is Starlark", "'genesis' in self.display_yourself()"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("the review prompt lacks %q:\n%s", want, prompt)
		}
	}
	second, _ := c.step(StepSynthesize, 2, 0)
	if want := c.Failures[0].Message + "\n\nALFRED reviewed that attempt's method:\n" + findings; !strings.Contains(second.Prompt[0].Content, want) {
		t.Errorf("ROBIN's second prompt lacks the failure and the review:\n%s", second.Prompt[0].Content)
	}
	if _, ok := c.review(2); ok {
		t.Error("a candidate that passed was reviewed")
	}
}

// Reviews are bounded: none for the last attempt (no attempt would read
// it), none for a passing candidate, none in an image without ALFRED.
func TestReviewsBounded(t *testing.T) {
	t.Run("last attempt", func(t *testing.T) {
		b := &brain{plans: []string{goodPlan}, methods: []string{wrongMethod, wrongMethod, wrongMethod}}
		m, db := hostileMachine(t, reviewingBrain(b), nil)
		id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		c := waitDone(t, m, id)
		if c.State != Failed || len(c.Failures) != 3 {
			t.Fatalf("ended %s with %d failures", c.State, len(c.Failures))
		}
		_, one := c.review(1)
		_, two := c.review(2)
		_, three := c.review(3)
		if !one || !two || three || b.count(reviewer) != 3 {
			t.Errorf("reviews of attempts 1, 2, 3: %v %v %v, ALFRED asked %d times; want true true false, 3 (one sub-question)", one, two, three, b.count(reviewer))
		}
	})
	t.Run("no ALFRED", func(t *testing.T) {
		plan := strings.Replace(goodPlan, `"ALFRED"`, `"BABS"`, 1)
		b := &brain{plans: []string{plan}, methods: []string{wrongMethod, goodMethod}}
		m, db := hostileMachine(t, reviewingBrain(b), nil)
		err := db.Update(t.Context(), func(tx *image.Tx) error {
			root, err := tx.Root()
			if err != nil {
				return err
			}
			v, _ := root.Get("personas")
			ps, err := tx.Deref(v)
			if err != nil {
				return err
			}
			_, err = ps.Delete(reviewer)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if c := waitDone(t, m, id); c.State != Complete || c.Attempt != 2 || b.count(reviewer) != 0 {
			t.Errorf("ended %s after %d attempts, ALFRED asked %d times; want COMPLETE after 2, no review", c.State, c.Attempt, b.count(reviewer))
		}
	})
}

// A review in hand when the cycle is cancelled is recorded all the same,
// and the retry takes it up: ALFRED is not asked again for the attempt.
func TestReviewKeptAcrossRetry(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{wrongMethod, goodMethod}}
	m, db := cancellingMachine(t, reviewingBrain(b), func(req mind.Request) bool {
		return req.Persona == reviewer && strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "Review")
	})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Failed || c.FailedIn != Validating {
		t.Fatalf("ended %s in %s: %s", c.State, c.FailedIn, c.Reason)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, ok := c.review(1); ok {
			break
		}
		if c, err = m.Get(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := c.review(1); !ok || len(c.Failures) != 0 {
		t.Fatalf("the review in hand was not recorded (or the attempt was refused while cancelled): %+v", c.Steps)
	}
	if err := m.Retry(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c = withPrompts(t, db, waitDone(t, m, id))
	if c.State != Complete || b.count(reviewer) != 2 || b.count("ROBIN") != 2 {
		t.Fatalf("retry ended %s (%s); ALFRED asked %d times, ROBIN %d; want COMPLETE, 2 and 2", c.State, c.Reason, b.count(reviewer), b.count("ROBIN"))
	}
	if second, _ := c.step(StepSynthesize, 2, 0); !strings.Contains(second.Prompt[0].Content, findings) {
		t.Error("ROBIN's prompt after the retry lacks the recorded review")
	}
}
