package cycle

import (
	"context"
	"strings"
	"sync"
	"testing"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/mind"
	"batos/internal/vm"
)

// TestPromptShrinksToFit: a prompt the model's context cannot take is
// asked again with the receiver shown compactly (similar and inherited
// methods left out), and the cycle goes on; one that cannot fit even so
// fails the step saying so, and nothing is sent beyond the window.
func TestPromptShrinksToFit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int // prompt bytes the model takes
		done   State
	}{
		{"fits compact", 0, Complete}, // set below: between the two sizes
		{"never fits", 200, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
			var mu sync.Mutex
			var sizes []int
			window := tc.window
			m, db := wrappedMachine(t, b.respond, func(inner Asker) Asker {
				return askerFunc(func(ctx context.Context, req mind.Request) (*mind.Answer, error) {
					n := 0
					for _, msg := range req.Messages {
						n += len(msg.Content)
					}
					mu.Lock()
					sizes = append(sizes, n)
					limit := window
					if limit == 0 && req.Persona == "BRICK" && len(sizes) == 1 {
						limit = n - 1 // the full prompt does not fit; the compact one will
					}
					mu.Unlock()
					if limit > 0 && n > limit {
						return nil, &llm.PromptTooLongError{Model: "scripted", Prompt: n / 3, Answer: 1024, Context: limit / 3}
					}
					return inner.Ask(ctx, req)
				})
			}, nil)
			// Methods of its own whose source the compact view leaves out.
			g := genesis(t, db)
			body := strings.Repeat("    n = n + 1\n", 40)
			err := db.Update(t.Context(), func(tx *image.Tx) error {
				o, err := tx.Object(g)
				if err != nil {
					return err
				}
				for _, name := range []string{"count_up", "count_more"} {
					src := "def " + name + "(self):\n    \"\"\"Count.\"\"\"\n    n = 0\n" + body + "    return n\n"
					if err := o.Set(name, &image.Method{Source: src}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			c := waitDone(t, m, id)
			if c.State != tc.done {
				t.Fatalf("cycle %s: %s", c.State, c.Reason)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sizes) < 2 || sizes[1] >= sizes[0] {
				t.Errorf("prompt sizes %v: want the second, compact, smaller than the first", sizes)
			}
			if tc.done == Failed && !strings.Contains(c.Reason, "does not fit the model's context even with the receiver shown compactly") {
				t.Errorf("reason %q", c.Reason)
			}
		})
	}
}
