package cycle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/vm"
)

// brain scripts the personas: BRICK answers plans in order, ROBIN
// methods in order, the others a fixed research note. It counts calls
// per persona.
type brain struct {
	mu      sync.Mutex
	plans   []string
	methods []string
	calls   map[string]int
	gate    chan struct{} // if set, ROBIN waits for it
}

func (b *brain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	persona := llmtest.Persona(req)
	b.mu.Lock()
	if b.calls == nil {
		b.calls = map[string]int{}
	}
	b.calls[persona]++
	var text string
	var err error
	switch persona {
	case "BRICK":
		if len(b.plans) == 0 {
			err = errors.New("brain: BRICK has no more plans")
		} else {
			text, b.plans = b.plans[0], b.plans[1:]
		}
	case "ROBIN":
		if len(b.methods) == 0 {
			err = errors.New("brain: ROBIN has no more methods")
		} else {
			text, b.methods = b.methods[0], b.methods[1:]
		}
	default:
		text = persona + " says: describe the object by its name and slots."
	}
	gate := b.gate
	b.mu.Unlock()
	if persona == "ROBIN" && gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return llmtest.Reply{}, ctx.Err()
		}
	}
	return llmtest.Reply{Text: text}, err
}

func (b *brain) count(persona string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[persona]
}

const goodPlan = `{"intent": "describe genesis in one line", "selector": "display_yourself",
 "signature": "def display_yourself(self)",
 "sub_questions": [{"persona": "BABS", "question": "What slots does genesis have?"},
                   {"persona": "ALFRED", "question": "Anything to avoid?"}],
 "tests": [{"name": "names itself", "expr": "'genesis' in self.display_yourself()"}]}`

const goodMethod = `{"source": "def display_yourself(self):\n    \"\"\"One line naming me.\"\"\"\n    return 'I am %s, with slots %s' % (self.name, ', '.join(slots(self)))\n",
 "tests": [{"name": "a string", "expr": "type(self.display_yourself()) == 'string'"}]}`

// testMachine opens an image with genesis and the four personas and a
// machine whose mind answers from b.
func testMachine(t *testing.T, b *brain, opts *Options) (*Machine, *image.DB) {
	t.Helper()
	db := personaImage(t)
	return newMachineOn(t, db, b, opts), db
}

// newMachineOn is testMachine on an image the test prepared.
func newMachineOn(t *testing.T, db *image.DB, b *brain, opts *Options) *Machine {
	t.Helper()
	model := &llmtest.Model{Respond: b.respond}
	m := mind.New(db, &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: model}, nil)
	machine := New(db, m, vm.New(nil), opts)
	t.Cleanup(func() { machine.Close() }) // before imagetest verifies the image
	return machine
}

// personaImage opens an image with genesis and the four personas; it is
// verified when the test ends.
func personaImage(t *testing.T) *image.DB {
	t.Helper()
	db := imagetest.Open(t, &imagetest.Options{Name: "cycle.db", Image: &image.Options{MaxRetries: 64}})
	for _, p := range []string{"BRICK", "ROBIN", "BABS", "ALFRED"} {
		prompt := "You are " + p + "."
		if err := mind.EditPersona(t.Context(), db, p, mind.Edit{Create: true, SystemPrompt: &prompt}); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func genesis(t *testing.T, db *image.DB) store.OID {
	t.Helper()
	var oid store.OID
	err := db.View(t.Context(), func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		v, _ := root.Get("genesis")
		oid = store.OID(v.(image.Ref))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

func waitDone(t *testing.T, m *Machine, id int64) *Cycle {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := m.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for cycle %d: %v (state %v)", id, err, c)
	}
	return c
}

// method reads slot name of oid as a method.
func installedMethod(t *testing.T, db *image.DB, oid store.OID, name string) *image.Method {
	t.Helper()
	var m *image.Method
	err := db.View(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		v, _ := o.Get(name)
		m, _ = v.(*image.Method)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// withPrompts reads c's step prompts.
func withPrompts(t *testing.T, db *image.DB, c *Cycle) *Cycle {
	t.Helper()
	if err := db.View(t.Context(), func(tx *image.Tx) error { return LoadPrompts(tx, c) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// seed creates a cycle as recorded (no goroutine runs it).
func seed(t *testing.T, db *image.DB, c *Cycle) int64 {
	t.Helper()
	if err := db.Update(t.Context(), func(tx *image.Tx) error { return create(tx, c) }); err != nil {
		t.Fatal(err)
	}
	return c.ID
}
