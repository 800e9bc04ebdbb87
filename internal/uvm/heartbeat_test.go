package uvm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/command"
	"batos/internal/cycle"
	"batos/internal/heartbeat"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// averageSource fails on an empty list: the class of inputs the audit
// must find.
const averageSource = `def average(self, xs):
    total = 0
    for x in xs:
        total += x
    return total / len(xs)
`

// auditBrain scripts the loop: ALFRED's audit proposes one change to
// calc.average, BRICK plans the tests, ROBIN answers the replacements
// in order.
type auditBrain struct {
	mu        sync.Mutex
	kind      string // the proposal's kind
	plan      string
	methods   []string
	asked     map[string]int
	robinGate chan struct{} // if set, ROBIN waits for it
}

const fixPlan = `{"intent": "average an empty list as 0.0", "selector": "average", "signature": "def average(self, xs)",
 "sub_questions": null,
 "tests": [{"name": "empty", "expr": "self.average([]) == 0.0", "fails": null}], "refuses": null}`

// fixedAverage answers 0.0 for an empty list and the same as before for
// every other.
const fixedAverage = `{"source": "def average(self, xs):\n    if len(xs) == 0:\n        return 0.0\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n", "tests": null, "disputes": null}`

// skewedAverage mends the empty list and changes every other answer.
const skewedAverage = `{"source": "def average(self, xs):\n    if len(xs) == 0:\n        return 0.0\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs) + 1\n", "tests": null, "disputes": null}`

func (b *auditBrain) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	persona := llmtest.Persona(req)
	text := req.Messages[len(req.Messages)-1].Content
	b.mu.Lock()
	if b.asked == nil {
		b.asked = map[string]int{}
	}
	b.asked[persona]++
	gate := b.robinGate
	var reply string
	var err error
	switch persona {
	case "ALFRED":
		if strings.Contains(text, "Audit this living image") {
			reply = `{"summary": "calc.average fails on empty lists.",
 "findings": [{"title": "average divides by zero", "severity": "high", "evidence": ["average([]) failed"]}],
 "proposals": [{"receiver": "calc", "selector": "average", "kind": "` + b.kind + `", "goal": "answer 0.0 for an empty list instead of failing"}]}`
		} else {
			reply = "Looks fine."
		}
	case "BRICK":
		reply = b.plan
	case "ROBIN":
		if len(b.methods) == 0 {
			err = errors.New("auditBrain: ROBIN has no more methods")
		} else {
			reply, b.methods = b.methods[0], b.methods[1:]
		}
	default:
		reply = "nothing to add"
	}
	b.mu.Unlock()
	if persona == "ROBIN" && gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return llmtest.Reply{}, ctx.Err()
		}
	}
	return llmtest.Reply{Text: reply}, err
}

// openAuditing opens an image with a scripted mind, calc.average, and
// the heartbeat's policy set.
func openAuditing(t *testing.T, b *auditBrain, policy string, attempts int) *uvm.UVM {
	t.Helper()
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
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

// goodCalls and badCalls are the lists calc.average is called with.
var (
	goodCalls = [][]int64{{1, 2, 3}, {4}, {10, 20}}
	badCalls  = [][]int64{{}}
)

func intList(xs []int64) image.Value {
	l := &image.List{}
	for _, x := range xs {
		l.Elems = append(l.Elems, image.Int(x))
	}
	return l
}

// callAverages sends every call, times times, and counts the failures.
func callAverages(t *testing.T, u *uvm.UVM, calls [][]int64, times int) (failed int) {
	t.Helper()
	for range times {
		for _, xs := range calls {
			if _, err := u.Send(t.Context(), "calc", "average", []image.Value{intList(xs)}, nil); err != nil {
				failed++
			}
		}
	}
	return failed
}

// currentStats is the telemetry of the version calc.average holds now.
func currentStats(t *testing.T, u *uvm.UVM) heartbeat.MethodStats {
	t.Helper()
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	var out heartbeat.MethodStats
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		stats, err := heartbeat.Stats(tx, 0)
		for _, s := range stats {
			if s.Selector == "average" && s.Current {
				out = s
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runAudit(t *testing.T, u *uvm.UVM) *heartbeat.Audit {
	t.Helper()
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, err := u.Heartbeat().Audit(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != heartbeat.AuditAnswered {
		t.Fatalf("audit %d is %s: %s", a.ID, a.State, a.Error)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if a, err = u.Heartbeat().Wait(ctx, a.ID); err != nil {
		t.Fatalf("wait for audit %d's proposals: %v", a.ID, err)
	}
	return a
}

func averageSourceNow(t *testing.T, u *uvm.UVM) *image.Method {
	t.Helper()
	var m *image.Method
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		oid, err := tx.Resolve("calc")
		if err != nil {
			return err
		}
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		v, _ := o.Get("average")
		m, _ = v.(*image.Method)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHeartbeatFixesAFailingMethodAuto is the whole loop under the auto
// policy: calls with good and bad inputs, an audit that names the method
// with its failing calls as evidence, a fix that passes the replay, its
// installation, and no more errors for the same calls.
func TestHeartbeatFixesAFailingMethodAuto(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	u := openAuditing(t, b, "auto", 3)
	if failed := callAverages(t, u, append(goodCalls, badCalls...), 2); failed != 2 {
		t.Fatalf("%d calls failed before the fix, want 2 (average([]) twice)", failed)
	}
	before := currentStats(t, u)
	if before.Calls != 8 || before.Errors != 2 || before.FailedSamples != 1 || before.Samples != 4 {
		t.Fatalf("telemetry before the fix: %+v", before)
	}
	a := runAudit(t, u)
	var named bool
	for _, m := range a.Facts.Failing {
		if m.Selector == "average" && m.Receiver == "calc" {
			for _, ev := range m.Evidence {
				named = named || (strings.Contains(ev, "average([])") && strings.Contains(ev, "division by zero"))
			}
		}
	}
	if !named {
		t.Fatalf("the audit's facts do not name calc.average with its failing call: %+v", a.Facts.Failing)
	}
	p := a.Proposals[0]
	if p.Status != heartbeat.ProposalApplied {
		t.Fatalf("proposal %s: %s (%s), want applied", heartbeat.ID(a.ID, 1), p.Status, p.Reason)
	}
	m := averageSourceNow(t, u)
	if !strings.Contains(m.Source, "return 0.0") {
		t.Fatalf("the fix is not installed:\n%s", m.Source)
	}
	for k, want := range map[string]image.Value{"improves": image.String("fix"), "audit": image.Int(a.ID), "proposal": image.Int(1)} {
		if got, _ := m.Meta.Get(image.String(k)); !image.Equal(got, want) {
			t.Errorf("provenance %s = %v, want %v", k, got, want)
		}
	}
	var pv heartbeat.ProposalView
	if err := u.DB().View(t.Context(), func(tx *image.Tx) (err error) {
		pv, err = heartbeat.ShowProposal(tx, heartbeat.ID(a.ID, 1))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if pv.Replay == nil || !pv.Replay.Passed || pv.Replay.Samples != 4 || pv.Replay.Targeted != 1 {
		t.Fatalf("the replay recorded: %+v", pv.Replay)
	}
	if failed := callAverages(t, u, append(goodCalls, badCalls...), 2); failed != 0 {
		t.Fatalf("%d calls failed after the fix", failed)
	}
	after := currentStats(t, u)
	if after.Calls != 8 || after.Errors != 0 || after.Version == before.Version {
		t.Fatalf("telemetry after the fix: %+v (before: %+v)", after, before)
	}
	// method revert takes the fix back.
	err := u.DB().Update(t.Context(), func(tx *image.Tx) error {
		oid, _ := tx.Resolve("calc")
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		_, err = cycle.Revert(o, "average")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("revert left:\n%s", got)
	}
}

// TestHeartbeatProposalWaitsForAcceptance: under the propose policy the
// fix passes every gate and waits; accept installs it.
func TestHeartbeatProposalWaitsForAcceptance(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	u := openAuditing(t, b, "propose", 3)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	id := heartbeat.ID(a.ID, 1)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalWaiting {
		t.Fatalf("proposal %s: %s (%s), want awaiting approval", id, p.Status, p.Reason)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("a proposal awaiting approval was installed:\n%s", got)
	}
	p, err := u.Heartbeat().Accept(t.Context(), id, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != heartbeat.ProposalAccepted || p.DecidedBy != "tester" {
		t.Fatalf("accepted: %+v", p.Proposal)
	}
	if !strings.Contains(averageSourceNow(t, u).Source, "return 0.0") {
		t.Fatal("accept did not install the fix")
	}
	if failed := callAverages(t, u, badCalls, 3); failed != 0 {
		t.Fatalf("%d calls failed after the accepted fix", failed)
	}
	if _, err := u.Heartbeat().Accept(t.Context(), id, "tester"); !errors.Is(err, heartbeat.ErrDecided) {
		t.Fatalf("a second accept: %v, want ErrDecided", err)
	}
}

// TestHeartbeatRejectsAReplacementThatChangesResults: a replacement that
// mends the targeted call and changes the others is refused by the
// replay, with the diffs kept.
func TestHeartbeatRejectsAReplacementThatChangesResults(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{skewedAverage}}
	u := openAuditing(t, b, "auto", 1)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	p := a.Proposals[0]
	if p.Status != heartbeat.ProposalRejected {
		t.Fatalf("proposal: %s (%s), want rejected", p.Status, p.Reason)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("a rejected replacement was installed:\n%s", got)
	}
	pv := showProposal(t, u, heartbeat.ID(a.ID, 1))
	if len(pv.Failures) == 0 || pv.Failures[0].Replay == nil {
		t.Fatalf("the rejection keeps no replay: %+v", pv.Failures)
	}
	diffs := strings.Join(pv.Failures[0].Replay.Diffs, "\n")
	for _, want := range []string{"average([1, 2, 3])", "2.0", "3.0"} {
		if !strings.Contains(diffs, want) {
			t.Errorf("the diffs do not mention %q:\n%s", want, diffs)
		}
	}
	// The method cools down: the next audit's proposal is refused.
	a2 := runAudit(t, u)
	if p := a2.Proposals[0]; p.Status != heartbeat.ProposalRefused || !strings.Contains(p.Reason, "cools down") {
		t.Fatalf("a proposal during the cool-down: %s (%s)", p.Status, p.Reason)
	}
}

// TestHeartbeatRejectsASlowerOptimization: an optimization that takes
// more steps is refused with both step counts.
func TestHeartbeatRejectsASlowerOptimization(t *testing.T) {
	slower := `{"source": "def average(self, xs):\n    total = 0\n    for x in xs:\n        total += x\n    for x in xs:\n        total += 0\n    return total / len(xs)\n", "tests": null, "disputes": null}`
	plan := `{"intent": "average faster", "selector": "average", "signature": "def average(self, xs)", "sub_questions": null,
 "tests": [{"name": "two", "expr": "self.average([2, 4]) == 3.0", "fails": null}], "refuses": null}`
	b := &auditBrain{kind: "optimize", plan: plan, methods: []string{slower}}
	u := openAuditing(t, b, "auto", 1)
	callAverages(t, u, goodCalls, 1)
	a := runAudit(t, u)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalRejected {
		t.Fatalf("proposal: %s (%s), want rejected", p.Status, p.Reason)
	}
	pv := showProposal(t, u, heartbeat.ID(a.ID, 1))
	r := pv.Failures[len(pv.Failures)-1].Replay
	if r == nil || r.OldSteps == 0 || r.NewSteps <= r.OldSteps || !strings.Contains(r.Summary, "not faster") {
		t.Fatalf("the replay's refusal: %+v", r)
	}
	if got := averageSourceNow(t, u).Source; got != averageSource {
		t.Fatalf("a slower optimization was installed:\n%s", got)
	}
}

// TestHeartbeatDropsAProposalForChangedCode: a held proposal whose method
// was changed meanwhile is dropped at acceptance, never installed over
// the newer code.
func TestHeartbeatDropsAProposalForChangedCode(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	u := openAuditing(t, b, "propose", 3)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	newer := "def average(self, xs):\n    return 7\n"
	if err := setMethod(t, u, "calc", "average", newer); err != nil {
		t.Fatal(err)
	}
	p, err := u.Heartbeat().Accept(t.Context(), heartbeat.ID(a.ID, 1), "tester")
	if err == nil || p.Status != heartbeat.ProposalDropped {
		t.Fatalf("accept over newer code: %v, status %s", err, p.Status)
	}
	if got := averageSourceNow(t, u).Source; got != newer {
		t.Fatalf("the newer code was replaced:\n%s", got)
	}
}

func showProposal(t *testing.T, u *uvm.UVM, id string) heartbeat.ProposalView {
	t.Helper()
	var pv heartbeat.ProposalView
	if err := u.DB().View(t.Context(), func(tx *image.Tx) (err error) {
		pv, err = heartbeat.ShowProposal(tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return pv
}

// TestHeartbeatRetireMarksDeprecated: retiring never deletes: the method
// is marked deprecated (inspect shows it), still answers, and is still
// counted; under propose it waits for acceptance.
func TestHeartbeatRetireMarksDeprecated(t *testing.T) {
	for _, policy := range []string{"auto", "propose"} {
		t.Run(policy, func(t *testing.T) {
			b := &auditBrain{kind: "retire"}
			u := openAuditing(t, b, policy, 1)
			callAverages(t, u, goodCalls, 1)
			a := runAudit(t, u)
			id := heartbeat.ID(a.ID, 1)
			if policy == "propose" {
				if p := a.Proposals[0]; p.Status != heartbeat.ProposalWaiting {
					t.Fatalf("retire under propose: %s (%s)", p.Status, p.Reason)
				}
				if _, err := u.Heartbeat().Accept(t.Context(), id, "tester"); err != nil {
					t.Fatal(err)
				}
			} else if p := a.Proposals[0]; p.Status != heartbeat.ProposalApplied {
				t.Fatalf("retire under auto: %s (%s)", p.Status, p.Reason)
			}
			if b.asked["BRICK"] != 0 || b.asked["ROBIN"] != 0 {
				t.Fatalf("a retirement asked for a cycle: %v", b.asked)
			}
			var view command.ObjectView
			if err := u.DB().View(t.Context(), func(tx *image.Tx) error {
				oid, err := tx.Resolve("calc")
				if err != nil {
					return err
				}
				view, err = command.Inspect(tx, oid)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			marked := false
			for _, s := range view.Own {
				marked = marked || (s.Name == "average" && strings.Contains(s.Deprecated, "by audit 1, proposal 1"))
			}
			if !marked {
				t.Fatalf("inspect shows no deprecation: %+v", view.Own)
			}
			if got := averageSourceNow(t, u).Source; got != averageSource {
				t.Fatalf("retiring changed the source:\n%s", got)
			}
			if failed := callAverages(t, u, goodCalls, 1); failed != 0 {
				t.Fatalf("a deprecated method failed %d calls", failed)
			}
			if s := currentStats(t, u); !s.Deprecated || s.Calls != 6 {
				t.Fatalf("stats of the deprecated method: %+v", s)
			}
		})
	}
}

// TestHeartbeatBudgetDefersProposals: an audit whose answer spent its
// budget defers its proposals, starting no cycle.
func TestHeartbeatBudgetDefersProposals(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	u := openAuditing(t, b, "auto", 1)
	if _, err := u.Eval(t.Context(), `heartbeat.budget_per_audit = 1`); err != nil {
		t.Fatal(err)
	}
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	if a.PromptTokens+a.CompletionTokens == 0 {
		t.Fatal("the scripted audit reports no tokens: the budget cannot be tested")
	}
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalDeferred || !strings.Contains(p.Reason, "budget") {
		t.Fatalf("over budget: %s (%s), want deferred", p.Status, p.Reason)
	}
	if b.asked["BRICK"] != 0 {
		t.Fatal("a deferred proposal started a cycle")
	}
}

// TestHeartbeatRetireIgnoresSpentBudget: a retirement costs no tokens,
// so a spent budget does not defer it.
func TestHeartbeatRetireIgnoresSpentBudget(t *testing.T) {
	b := &auditBrain{kind: "retire"}
	u := openAuditing(t, b, "auto", 1)
	if _, err := u.Eval(t.Context(), `heartbeat.budget_per_audit = 0`); err != nil {
		t.Fatal(err)
	}
	callAverages(t, u, goodCalls, 1)
	a := runAudit(t, u)
	if p := a.Proposals[0]; p.Status != heartbeat.ProposalApplied {
		t.Fatalf("retire with a spent budget: %s (%s), want applied", p.Status, p.Reason)
	}
}

// TestHeartbeatDroppedProposalDoesNotCoolDown: a proposal dropped at
// acceptance because the method changed leaves the newer code free for
// the next audit's proposal.
func TestHeartbeatDroppedProposalDoesNotCoolDown(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage, fixedAverage}}
	u := openAuditing(t, b, "propose", 3)
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a := runAudit(t, u)
	newer := strings.Replace(averageSource, "total = 0", "total = 0.0", 1)
	if err := setMethod(t, u, "calc", "average", newer); err != nil {
		t.Fatal(err)
	}
	if p, err := u.Heartbeat().Accept(t.Context(), heartbeat.ID(a.ID, 1), "tester"); err == nil || p.Status != heartbeat.ProposalDropped {
		t.Fatalf("accept over newer code: %v, %s", err, p.Status)
	}
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	a2 := runAudit(t, u)
	if p := a2.Proposals[0]; p.Status != heartbeat.ProposalWaiting {
		t.Fatalf("the next audit's proposal for the newer code: %s (%s), want awaiting approval", p.Status, p.Reason)
	}
}

// TestHeartbeatProposalsEditedAwayWhileStarting: a person emptying the
// audit's proposals while its cycle opens does not crash the process;
// the cycle runs on, unfollowed.
func TestHeartbeatProposalsEditedAwayWhileStarting(t *testing.T) {
	b := &auditBrain{kind: "fix", plan: fixPlan, methods: []string{fixedAverage}}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: b.respond}}
	var u *uvm.UVM
	var once sync.Once
	edited := make(chan error, 1)
	events := func(topic string, payload map[string]any) {
		if topic == "cycle.transition" && payload["state"] == "IDLE" {
			once.Do(func() {
				go func() {
					_, err := u.Eval(context.Background(), `audits.a1.proposals = []`)
					edited <- err
				}()
			})
		}
	}
	u = uvmtest.Open(t, &uvm.Options{Mind: server, Events: events})
	if _, err := u.Eval(t.Context(), `root.calc = new(None, name = "calc")
heartbeat.policy = "auto"`); err != nil {
		t.Fatal(err)
	}
	if err := setMethod(t, u, "calc", "average", averageSource); err != nil {
		t.Fatal(err)
	}
	callAverages(t, u, append(goodCalls, badCalls...), 1)
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Heartbeat().Audit(t.Context(), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-edited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no cycle opened")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := u.Cycles().Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
}
