package uvm_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
	"batos/internal/vm"
)

// gatedBrain is auditBrain whose BRICK, when brickGate is set, says it
// was asked (brickAsked) and waits for the gate.
type gatedBrain struct {
	*auditBrain
	brickGate  chan struct{}
	brickAsked chan struct{}
	once       sync.Once
}

func (g *gatedBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	if llmtest.Persona(req) == "BRICK" && g.brickGate != nil {
		g.once.Do(func() { close(g.brickAsked) })
		select {
		case <-g.brickGate:
		case <-ctx.Done():
			return llmtest.Reply{}, ctx.Err()
		}
	}
	return g.auditBrain.respond(ctx, req)
}

// openAuditingWith is openAuditing answering from respond.
func openAuditingWith(t *testing.T, respond func(context.Context, *llm.ChatRequest) (llmtest.Reply, error), policy string, attempts int) *uvm.UVM {
	t.Helper()
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server, Cycle: &cycle.Options{MaxAttempts: attempts}})
	if _, err := u.Eval(t.Context(), `root.calc = new(None, name = "calc")
heartbeat.policy = "`+policy+`"`); err != nil {
		t.Fatal(err)
	}
	if err := setMethod(t, u, "calc", "average", averageSource); err != nil {
		t.Fatal(err)
	}
	return u
}

// startAudit runs an audit whose proposals go on in the background.
func startAudit(t *testing.T, u *uvm.UVM) *heartbeat.Audit {
	t.Helper()
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, err := u.Heartbeat().Audit(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func waitAudit(t *testing.T, u *uvm.UVM, id int64) *heartbeat.Audit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a, err := u.Heartbeat().Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for audit %d's proposals: %v (%+v)", id, err, a)
	}
	return a
}

func asked(b *auditBrain, persona string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.asked[persona]
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not happen within 20s", what)
	}
}

// TestHeartbeatDropsAnImprovementWhoseMethodChangesMidCycle: the method
// changed, replaced by data or deleted while BRICK plans: the proposal
// is dropped (no cool-down: the code it was for is gone) before ROBIN is
// paid, and what the person did stays.
func TestHeartbeatDropsAnImprovementWhoseMethodChangesMidCycle(t *testing.T) {
	const newer = "def average(self, xs):\n    return 7\n"
	cases := []struct {
		name   string
		change func(t *testing.T, u *uvm.UVM)
		check  func(t *testing.T, v image.Value, ok bool)
	}{
		{"changed", func(t *testing.T, u *uvm.UVM) {
			if err := setMethod(t, u, "calc", "average", newer); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, v image.Value, ok bool) {
			if m, isMethod := v.(*image.Method); !isMethod || m.Source != newer {
				t.Fatalf("calc.average is %v, want the newer method", v)
			}
		}},
		{"replaced by data", func(t *testing.T, u *uvm.UVM) {
			if _, err := u.Eval(t.Context(), `calc.average = 7`); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, v image.Value, ok bool) {
			if !image.Equal(v, image.Int(7)) {
				t.Fatalf("calc.average is %v, want the 7 put there", v)
			}
		}},
		{"deleted", func(t *testing.T, u *uvm.UVM) {
			if err := u.DB().Update(t.Context(), func(tx *image.Tx) error {
				oid, err := tx.Resolve("calc")
				if err != nil {
					return err
				}
				o, err := tx.Object(oid)
				if err != nil {
					return err
				}
				_, err = o.Delete("average")
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, v image.Value, ok bool) {
			if ok {
				t.Fatalf("calc.average is back: %v", v)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &gatedBrain{auditBrain: &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage, fixedAverage, fixedAverage}},
				brickGate: make(chan struct{}), brickAsked: make(chan struct{})}
			u := openAuditingWith(t, g.respond, "auto", 3)
			callAverages(t, u, append(goodCalls, badCalls...), 1)
			a := startAudit(t, u)
			waitClosed(t, g.brickAsked, "BRICK's plan")
			c.change(t, u)
			close(g.brickGate)
			a = waitAudit(t, u, a.ID)
			if p := a.Proposals[0]; p.Status != heartbeat.ProposalDropped || !strings.Contains(p.Reason, "changed") {
				t.Fatalf("proposal: %s (%s), want dropped: the method changed", p.Status, p.Reason)
			}
			if n := asked(g.auditBrain, "ROBIN"); n != 0 {
				t.Fatalf("ROBIN was asked %d times for an improvement of code that is gone", n)
			}
			var v image.Value
			var ok bool
			if err := u.DB().View(t.Context(), func(tx *image.Tx) error {
				oid, err := tx.Resolve("calc")
				if err != nil {
					return err
				}
				o, err := tx.Object(oid)
				v, ok = o.Get("average")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			c.check(t, v, ok)
		})
	}
}

// TestHeartbeatCancelledImprovementStaysSettled: a person cancelling an
// improvement cycle rejects its proposal (the method cools down, as
// after a rejection); retrying the cycle then cannot revive it: the
// retry fails at once, asks no model and installs nothing.
func TestHeartbeatCancelledImprovementStaysSettled(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage, fixedAverage}, robinGate: make(chan struct{})}
	robinAsked := make(chan struct{})
	var once sync.Once
	respond := func(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
		if llmtest.Persona(req) == "ROBIN" {
			once.Do(func() { close(robinAsked) })
		}
		return b.respond(ctx, req)
	}
	u := openAuditingWith(t, respond, "auto", 3)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := startAudit(t, u)
	waitClosed(t, robinAsked, "ROBIN's candidate")
	var cid int64
	if err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		pv, err := heartbeat.ShowProposal(tx, heartbeat.ID(a.ID, 1))
		cid = pv.Cycle
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if cid == 0 {
		t.Fatal("the proposal names no cycle while ROBIN is asked")
	}
	if err := u.Cycles().Cancel(t.Context(), cid); err != nil {
		t.Fatal(err)
	}
	a = waitAudit(t, u, a.ID)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalRejected || !strings.Contains(p.Reason, "cancelled") {
		t.Fatalf("proposal after the cancel: %s (%s), want rejected, cancelled", p.Status, p.Reason)
	}
	close(b.robinGate) // ROBIN would answer now, if asked
	robinBefore := asked(b, "ROBIN")
	if err := u.Cycles().Retry(t.Context(), cid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := u.Cycles().Wait(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != cycle.Failed || !strings.Contains(c.Reason, cycle.ErrUnwanted.Error()) {
		t.Fatalf("the retried cycle is %s (%q), want failed: its proposal was settled", c.State, c.Reason)
	}
	if n := asked(b, "ROBIN"); n != robinBefore {
		t.Fatalf("the retry asked ROBIN %d more times", n-robinBefore)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("the retried improvement of a rejected proposal was installed:\n%s", got)
	}
	// The cool-down holds: the next audit's proposal is refused.
	a2 := runAudit(t, u)
	if p := a2.Proposals[0]; p.Status != heartbeat.ProposalRefused || !strings.Contains(p.Reason, "cools down") {
		t.Fatalf("a proposal after the cancel: %s (%s), want refused while the method cools down", p.Status, p.Reason)
	}
}

// TestHeartbeatRefusesWhatNoReplayCouldPass: a proposal for a method
// nothing called, or a fix for a method none of whose calls failed, is
// refused before a cycle is paid for: the replay would refuse any
// replacement.
func TestHeartbeatRefusesWhatNoReplayCouldPass(t *testing.T) {
	for _, c := range []struct {
		name, kind string
		calls      [][]int64
	}{
		{"never called", "optimize", nil},
		{"a fix with nothing failing", "fix", goodCalls},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &auditBrain{kind: c.kind, plan: fixPlan, methods: []string{fixedAverage}}
			u := openAuditing(t, b, "auto", 1)
			callAverages(t, u, c.calls, 1)
			a := runAudit(t, u)
			if p := a.Proposals[0]; p.Status != heartbeat.ProposalRefused {
				t.Fatalf("proposal: %s (%s), want refused", p.Status, p.Reason)
			}
			if n := asked(b, "BRICK") + asked(b, "ROBIN"); n != 0 {
				t.Fatalf("%d model calls for an improvement no replay could pass", n)
			}
		})
	}
}

// TestHeartbeatProposalJoinsNoOtherCycle: a cycle opened for the method
// between the proposal's decision and its start (here one learning it)
// is not the proposal's: the proposal is refused, not tied to a cycle
// whose end says nothing of it.
func TestHeartbeatProposalJoinsNoOtherCycle(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}, robinGate: make(chan struct{})}
	u := openAuditing(t, b, "auto", 1)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	var calc store.OID
	if err := u.DB().View(t.Context(), func(tx *image.Tx) (err error) {
		calc, err = tx.Resolve("calc")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	learning, _, err := u.Cycles().Start(t.Context(), cycle.Mission{Message: vm.Message{Receiver: calc, Selector: "average", Args: []image.Value{intList(nil)}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Cycles().Cancel(context.WithoutCancel(t.Context()), learning)
	a := startAudit(t, u)
	a = waitAudit(t, u, a.ID)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalRefused || p.Cycle != 0 {
		t.Fatalf("proposal: %s (%s), cycle %d; want refused, tied to no cycle (cycle %d learns the method)", p.Status, p.Reason, p.Cycle, learning)
	}
}

// TestHeartbeatImprovementSurvivesADispute: ROBIN disputing the plan's
// test sends it back to BRICK; the revised plan's replacement passes
// the replay and is installed.
func TestHeartbeatImprovementSurvivesADispute(t *testing.T) {
	dispute := `{"source": "def average(self, xs):\n    return 0.0\n", "tests": null, "disputes": [{"test": "empty", "reason": "an empty list has no mean; 0.0 hides the mistake"}]}`
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{dispute, fixedAverage}}
	u := openAuditing(t, b, "auto", 3)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalApplied {
		t.Fatalf("proposal: %s (%s), want applied after the dispute", p.Status, p.Reason)
	}
	if n := asked(b, "BRICK"); n != 2 {
		t.Fatalf("BRICK planned %d times, want 2 (the plan, its revision)", n)
	}
}

// TestHeartbeatAcceptDropsAHeldReplacementOverChangedCode: a replacement
// held for approval, whose method was replaced by data or deleted since,
// is dropped at acceptance and never installed.
func TestHeartbeatAcceptDropsAHeldReplacementOverChangedCode(t *testing.T) {
	for _, change := range []string{`calc.average = 7`, "delete"} {
		t.Run(change, func(t *testing.T) {
			b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
			u := openAuditing(t, b, "propose", 3)
			callAverages(t, u, append(goodCalls, badCalls...), 1)
			a := runAudit(t, u)
			if change == "delete" {
				if err := u.DB().Update(t.Context(), func(tx *image.Tx) error {
					oid, _ := tx.Resolve("calc")
					o, err := tx.Object(oid)
					if err != nil {
						return err
					}
					_, err = o.Delete("average")
					return err
				}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := u.Eval(t.Context(), change); err != nil {
				t.Fatal(err)
			}
			p, err := u.Heartbeat().Accept(t.Context(), heartbeat.ID(a.ID, 1), "tester")
			if err == nil || p.Status != heartbeat.ProposalDropped {
				t.Fatalf("accept after %s: %v, status %s; want dropped", change, err, p.Status)
			}
			if m := averageSourceNow(t, u); m != nil {
				t.Fatalf("a method was installed over %s:\n%s", change, m.Source)
			}
		})
	}
}

// TestHeartbeatImprovementPlanWithoutTestsIsRefused: an improvement's
// plan still needs tests (they state the goal; the replay shows only
// that nothing else changed): BRICK's plans without any fail the cycle
// before ROBIN is asked, and nothing is installed.
func TestHeartbeatImprovementPlanWithoutTestsIsRefused(t *testing.T) {
	noTests := `{"intent": "average an empty list as 0.0", "selector": "average", "signature": "def average(self, xs)",
 "sub_questions": null, "tests": [], "refuses": null}`
	b := &auditBrain{kind: "fix", plan: noTests, methods: []string{fixedAverage}}
	u := openAuditing(t, b, "auto", 1)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalRejected || !strings.Contains(p.Reason, "tests") {
		t.Fatalf("proposal: %s (%s), want rejected for a plan without tests", p.Status, p.Reason)
	}
	if n := asked(b, "ROBIN"); n != 0 {
		t.Fatalf("ROBIN was asked %d times for a plan without tests", n)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("a replacement was installed:\n%s", got)
	}
}
