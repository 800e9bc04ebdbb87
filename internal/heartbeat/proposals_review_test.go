package heartbeat

import (
	"context"
	"sync"
	"testing"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/vm"
)

// TestResumeAdoptsTheCycleStartedBeforeACrash: a crash between starting a
// proposal's improvement cycle and recording it in the proposal leaves
// the proposal pending and the cycle running; on resume the proposal
// follows that cycle instead of starting (and paying for) another, and
// settles by it.
func TestResumeAdoptsTheCycleStartedBeforeACrash(t *testing.T) {
	const (
		avg  = "def average(self, xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t / len(xs)\n"
		plan = `{"intent": "average an empty list as 0.0", "selector": "average", "signature": "def average(self, xs)",
 "sub_questions": null, "tests": [{"name": "empty", "expr": "self.average([]) == 0.0", "fails": null}], "refuses": null}`
		fixed = `{"source": "def average(self, xs):\n    if len(xs) == 0:\n        return 0.0\n    t = 0\n    for x in xs:\n        t += x\n    return t / len(xs)\n", "tests": null, "disputes": null}`
	)
	f := newReplayFixture(t, nil)
	for _, p := range []string{"BRICK", "ROBIN"} {
		prompt := "You are " + p + "."
		if err := mind.EditPersona(t.Context(), f.db, p, mind.Edit{Create: true, SystemPrompt: &prompt}); err != nil {
			t.Fatal(err)
		}
	}
	f.eval(`root.calc = new(None, name = "calc")
heartbeat.policy = "auto"`)
	f.method("calc", "average", avg)
	f.call("calc", "average", ints())
	if err := f.call("calc", "average", ints(1, 2)); err != nil {
		t.Fatal(err)
	}
	f.flush()
	var mu sync.Mutex
	asked := map[string]int{}
	model := &llmtest.Model{Respond: func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
		persona := llmtest.Persona(req)
		mu.Lock()
		asked[persona]++
		mu.Unlock()
		if persona == "BRICK" {
			return llmtest.Reply{Text: plan}, nil
		}
		return llmtest.Reply{Text: fixed}, nil
	}}
	m := mind.New(f.db, &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: model}, nil)
	machine := cycle.New(f.db, m, vm.New(nil), &cycle.Options{Improver: f.r})
	t.Cleanup(func() { machine.Close() })

	// The state a crash leaves: the audit answered, its proposal still
	// pending, and the cycle started for it.
	owner := f.oid("calc")
	var a Audit
	if err := f.db.Update(t.Context(), func(tx *image.Tx) error {
		a = Audit{State: AuditAnswered, By: "test", Policy: PolicyAuto, Started: time.Now(), Facts: &Facts{At: time.Now()},
			Proposals: []Proposal{{N: 1, Receiver: "calc", Selector: "average", Kind: cycle.ImproveFix, Goal: "0.0 for an empty list",
				Owner: owner, Base: Version(avg), Status: ProposalPending}}}
		return createAudit(tx, &a)
	}); err != nil {
		t.Fatal(err)
	}
	started, _, err := machine.Start(t.Context(), cycle.Mission{Message: cycleMessage(owner, "average"), Brief: "0.0 for an empty list",
		Improve: &cycle.Improvement{Kind: cycle.ImproveFix, Goal: "0.0 for an empty list", Base: avg, Audit: a.ID, Proposal: 1}}, false)
	if err != nil {
		t.Fatal(err)
	}

	h := New(f.db, &Options{Replayer: f.r, Mind: func(context.Context) (cycle.Asker, *cycle.Machine, error) { return m, machine, nil }})
	defer h.Close()
	if err := h.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got, err := h.Wait(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Proposals[0]; p.Status != ProposalApplied || p.Cycle != started {
		t.Fatalf("proposal %s (%s), cycle %d; want applied by cycle %d, the one started before the crash", p.Status, p.Reason, p.Cycle, started)
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["BRICK"] != 1 || asked["ROBIN"] != 1 {
		t.Fatalf("model calls %v; want BRICK and ROBIN once: one cycle", asked)
	}
}
