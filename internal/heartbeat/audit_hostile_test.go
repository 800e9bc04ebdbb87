package heartbeat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// hostileMind answers ALFRED's audits with its answers in turn (the last
// again once they run out). Every other persona answers what no cycle
// can use, so a proposal that starts an improvement cycle ends rejected.
type hostileMind struct {
	mu      sync.Mutex
	answers []string
}

func (m *hostileMind) respond(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	text := req.Messages[len(req.Messages)-1].Content
	if llmtest.Persona(req) != "ALFRED" || !strings.Contains(text, "Audit this living image") {
		return llmtest.Reply{Text: "no"}, nil
	}
	reply := m.answers[0]
	if len(m.answers) > 1 {
		m.answers = m.answers[1:]
	}
	return llmtest.Reply{Text: reply}, nil
}

// calcAverage fails on an empty list.
const calcAverage = `def average(self, xs):
    total = 0
    for x in xs:
        total += x
    return total / len(xs)
`

// openHostile opens an image with calc.average, called with [1] and [],
// its telemetry saved, and ALFRED answering audits with answers.
func openHostile(t *testing.T, answers ...string) (*uvm.UVM, *command.Local) {
	t.Helper()
	if len(answers) == 0 {
		answers = []string{answer("all well", "[]")}
	}
	m := &hostileMind{answers: answers}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: &llmtest.Model{Respond: m.respond}}
	u := uvmtest.Open(t, &uvm.Options{Mind: server, Cycle: &cycle.Options{MaxAttempts: 1}})
	evalOK(t, u, `root.calc = new(None, name = "calc")`)
	evalOK(t, u, fmt.Sprintf("calc.average = method(%q)", calcAverage))
	callAverage(t, u, "calc", 1)
	callAverage(t, u, "calc")
	if err := u.FlushTelemetry(t.Context()); err != nil {
		t.Fatal(err)
	}
	return u, command.NewLocal(u, "tester")
}

func evalOK(t *testing.T, u *uvm.UVM, code string) image.Value {
	t.Helper()
	r, err := u.Eval(t.Context(), code)
	if err != nil {
		t.Fatalf("eval %s: %v", code, err)
	}
	return r.Value
}

// callAverage sends average(xs) to target; failing is its business.
func callAverage(t *testing.T, u *uvm.UVM, target string, xs ...int64) {
	t.Helper()
	l := &image.List{}
	for _, x := range xs {
		l.Elems = append(l.Elems, image.Int(x))
	}
	u.Send(t.Context(), target, "average", []image.Value{l}, nil)
}

// proposal is one proposal of ALFRED's answer, as JSON.
func proposal(receiver, selector, kind, goal string) string {
	return fmt.Sprintf(`{"receiver": %q, "selector": %q, "kind": %q, "goal": %q}`, receiver, selector, kind, goal)
}

// answer is ALFRED's audit, as JSON.
func answer(summary, findings string, proposals ...string) string {
	return fmt.Sprintf(`{"summary": %q, "findings": %s, "proposals": [%s]}`, summary, findings, strings.Join(proposals, ", "))
}

var retireAverage = answer("calc.average fails", "[]", proposal("calc", "average", "retire", "nothing should divide by zero"))

// runAudit runs an audit through the command and waits until its
// proposals are settled.
func runAudit(t *testing.T, u *uvm.UVM, l *command.Local) *heartbeat.Audit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	v, err := l.AuditRun(ctx)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	a, err := u.Heartbeat().Wait(ctx, v.ID)
	if err != nil {
		t.Fatalf("wait for audit %d: %v", v.ID, err)
	}
	return a
}

func slotNames(t *testing.T, u *uvm.UVM, target string) string {
	t.Helper()
	return image.Repr(evalOK(t, u, "slots("+target+")"))
}

// TestHostileAuditObjectEdits: an audit object a person edits from the
// REPL never crashes a command, is read by the ID its slot gives, and
// an unreadable one stops neither new audits nor the other audits'
// proposals.
func TestHostileAuditObjectEdits(t *testing.T) {
	cases := []struct {
		name, code string
		check      func(t *testing.T, u *uvm.UVM, l *command.Local)
	}{
		{"proposal numbered 99", `audits.a1.proposals[0]["n"] = 99`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			p, err := l.ProposalAccept(t.Context(), "1.1")
			if err != nil || p.Status != heartbeat.ProposalAccepted || p.N != 1 || p.ID != "1.1" {
				t.Fatalf("accept 1.1: %+v, %v", p, err)
			}
		}},
		{"proposal numbered -1", `audits.a1.proposals[0]["n"] = -1`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			if p, err := l.ProposalReject(t.Context(), "1.1", "no"); err != nil || p.Status != heartbeat.ProposalRejected {
				t.Fatalf("reject 1.1: %+v, %v", p, err)
			}
		}},
		{"id rewritten", `audits.a1.id = 5`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			a, err := l.AuditShow(t.Context(), 1)
			if err != nil || a.ID != 1 {
				t.Fatalf("audit show 1: ID %d, %v", a.ID, err)
			}
			if p, err := l.ProposalReject(t.Context(), "1.1", "no"); err != nil || p.Status != heartbeat.ProposalRejected {
				t.Fatalf("reject 1.1: %+v, %v", p, err)
			}
			as, err := l.AuditList(t.Context(), 0)
			if err != nil || len(as) != 1 || as[0].ID != 1 {
				t.Fatalf("audit list: %+v, %v", as, err)
			}
		}},
		{"proposals junk", `audits.a1.proposals = "junk"`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			_, err := l.AuditShow(t.Context(), 1)
			if err == nil || !strings.Contains(err.Error(), "audit 1") || !strings.Contains(err.Error(), "proposals") {
				t.Fatalf("audit show of an unreadable audit: %v, want an error naming audit 1 and its proposals", err)
			}
			if strings.Contains(err.Error(), "Go struct") {
				t.Errorf("the error speaks Go, not batos: %v", err)
			}
			if a := runAudit(t, u, l); a.ID != 2 || a.State != heartbeat.AuditAnswered {
				t.Fatalf("an audit after an unreadable one: %d %s %s", a.ID, a.State, a.Error)
			}
			ps, err := l.ProposalList(t.Context(), true)
			if err != nil || len(ps) != 1 || ps[0].ID != "2.1" {
				t.Fatalf("proposal list: %+v, %v", ps, err)
			}
		}},
		{"proposal owner a string", `audits.a1.proposals[0]["owner"] = "x"`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			_, err := l.ProposalAccept(t.Context(), "1.1")
			if err == nil || !strings.Contains(err.Error(), "audit 1") {
				t.Fatalf("accept of an unreadable proposal: %v", err)
			}
		}},
		{"awaiting without a cycle", `audits.a1.proposals[0]["kind"] = "fix"`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			_, err := l.ProposalAccept(t.Context(), "1.1")
			if command.KindOf(err) != command.KindBadRequest || !strings.Contains(err.Error(), "cycle") {
				t.Fatalf("accept of a fix without a cycle: %v (%s), want bad_request naming the cycle", err, command.KindOf(err))
			}
			if p, err := l.ProposalReject(t.Context(), "1.1", "no"); err != nil || p.Status != heartbeat.ProposalRejected {
				t.Fatalf("reject 1.1: %+v, %v", p, err)
			}
		}},
		{"awaiting with a missing cycle", `audits.a1.proposals[0]["kind"] = "fix"
audits.a1.proposals[0]["cycle"] = 99999`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			if p, err := l.ProposalReject(t.Context(), "1.1", "no"); err != nil || p.Status != heartbeat.ProposalRejected {
				t.Fatalf("reject 1.1 whose cycle is gone: %+v, %v", p, err)
			}
		}},
		{"next_id negative", `audits.next_id = -5`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			if a := runAudit(t, u, l); a.ID != 2 {
				t.Fatalf("audit after next_id -5: ID %d, want 2", a.ID)
			}
		}},
		{"next_id at the end", `audits.next_id = 9223372036854775807`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			a := runAudit(t, u, l)
			if a.ID != math.MaxInt64 {
				t.Fatalf("audit after next_id MaxInt64: ID %d", a.ID)
			}
			if _, err := l.ProposalShow(t.Context(), heartbeat.ID(a.ID, 1)); err != nil {
				t.Fatalf("proposal show %s: %v", heartbeat.ID(a.ID, 1), err)
			}
			if a := runAudit(t, u, l); a.ID <= 0 || a.ID == math.MaxInt64 {
				t.Fatalf("the audit after it: ID %d", a.ID)
			}
		}},
		{"next_id at the end, taken", `audits.next_id = 9223372036854775807`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			if a := runAudit(t, u, l); a.ID != math.MaxInt64 {
				t.Fatalf("audit after next_id MaxInt64: ID %d", a.ID)
			}
			evalOK(t, u, `audits.next_id = 9223372036854775807`)
			a := runAudit(t, u, l)
			if a.ID <= 0 || a.ID == math.MaxInt64 {
				t.Fatalf("an audit after next_id MaxInt64, taken: ID %d", a.ID)
			}
			if _, err := l.AuditShow(t.Context(), a.ID); err != nil {
				t.Fatalf("audit show %d: %v", a.ID, err)
			}
		}},
		{"audit slot aliased", `audits.a2 = audits.a1`, func(t *testing.T, u *uvm.UVM, l *command.Local) {
			a, err := l.AuditShow(t.Context(), 2)
			if err != nil || a.ID != 2 {
				t.Fatalf("audit show 2: %d, %v", a.ID, err)
			}
			if a := runAudit(t, u, l); a.ID != 3 {
				t.Fatalf("audit after an aliased slot: ID %d, want 3", a.ID)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, l := openHostile(t, retireAverage)
			if a := runAudit(t, u, l); a.Proposals[0].Status != heartbeat.ProposalWaiting {
				t.Fatalf("audit 1's proposal: %+v", a.Proposals[0])
			}
			evalOK(t, u, tc.code)
			tc.check(t, u, l)
		})
	}
}

// TestHostileAuditSlotNotAnAudit: audits.a1 holding a number, before any
// audit ran, neither blocks audits nor hides what is wrong.
func TestHostileAuditSlotNotAnAudit(t *testing.T) {
	u, l := openHostile(t, retireAverage)
	evalOK(t, u, `audits.a1 = 7`)
	a := runAudit(t, u, l)
	if a.ID != 2 || a.State != heartbeat.AuditAnswered {
		t.Fatalf("audit beside audits.a1 = 7: ID %d, %s %s", a.ID, a.State, a.Error)
	}
	_, err := l.AuditShow(t.Context(), 1)
	if err == nil || !strings.Contains(err.Error(), "audits.a1") {
		t.Fatalf("audit show 1: %v, want an error naming audits.a1", err)
	}
	if as, err := l.AuditList(t.Context(), 0); err != nil || len(as) != 1 {
		t.Fatalf("audit list: %+v, %v", as, err)
	}
	if _, err := l.ProposalAccept(t.Context(), "2.1"); err != nil {
		t.Fatalf("accept 2.1: %v", err)
	}
}

// TestHostileMissingSystemObjects: a root whose audits or telemetry slot
// holds no object answers every command with an error naming it.
func TestHostileMissingSystemObjects(t *testing.T) {
	for _, tc := range []struct{ code, names string }{
		{`root.audits = None`, "audits"},
		{`root.telemetry = 3`, "telemetry"},
		{`root.heartbeat = "x"`, "heartbeat"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			u, l := openHostile(t, retireAverage)
			evalOK(t, u, tc.code)
			ctx := t.Context()
			_, err := l.AuditRun(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.names) {
				t.Errorf("audit: %v, want an error naming %s", err, tc.names)
			}
			errs := map[string]error{}
			_, errs["method stats"] = l.MethodStats(ctx, "calc")
			_, errs["audit list"] = l.AuditList(ctx, 0)
			_, errs["proposal list"] = l.ProposalList(ctx, true)
			_, errs["proposal accept"] = l.ProposalAccept(ctx, "1.1")
			_, errs["proposal reject"] = l.ProposalReject(ctx, "1.1", "")
			for what, err := range errs {
				if err != nil && !strings.Contains(err.Error(), tc.names) && !errors.Is(err, heartbeat.ErrNoProposal) {
					t.Errorf("%s: %v", what, err)
				}
			}
			if tc.names == "telemetry" {
				// Counted in memory, it cannot be saved: the close says so
				// (uvmtest fails on any close error), so put it back.
				evalOK(t, u, `root.telemetry = new(None, name = "telemetry")`)
			}
		})
	}
}

// big is a 10 MB text, for answers that would bloat the image.
var big = strings.Repeat("x", 10<<20)

// TestHostileAlfredAnswers: whatever ALFRED answers, the audit keeps a
// bounded record of it, and each proposal is acted on only if it names a
// method — otherwise it is refused (or the audit failed) saying why.
func TestHostileAlfredAnswers(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = proposal("calc", "average", "fix", "g")
	}
	cases := []struct {
		name, answer string
		// failed is what the audit's error says if it fails; refused
		// what its first proposal's reason says if it is refused.
		failed, refused string
	}{
		{name: "not JSON", answer: "All is well, sir.", failed: "not the JSON"},
		{name: "1000 proposals", answer: answer("s", "[]", many...), failed: "1000 proposals"},
		{name: "a data slot", answer: answer("s", "[]", proposal("calc", "name", "fix", "g")), refused: "is data"},
		{name: "a primitive slot", answer: answer("s", "[]", proposal("knowledge_catalog", "search", "fix", "g")), refused: "primitive"},
		{name: "a dotted selector", answer: answer("s", "[]", proposal("root", "knowledge_catalog.search", "fix", "g")), refused: "not a method name"},
		{name: "root", answer: answer("s", "[]", proposal("root", "average", "fix", "g")), refused: "has no method average"},
		{name: "a missing OID", answer: answer("s", "[]", proposal("oid:999999", "average", "fix", "g")), refused: "no object"},
		{name: "an unclosed name", answer: answer("s", "[]", proposal("oid:1 (x", "average", "fix", "g")), refused: "has no method average"},
		{name: "an empty receiver", answer: answer("s", "[]", proposal("", "average", "fix", "g")), failed: "names no receiver"},
		{name: "a selector with spaces", answer: answer("s", "[]", proposal("calc", "aver age", "fix", "g")), refused: "not a method name"},
		{name: "a keyword selector", answer: answer("s", "[]", proposal("calc", "def", "fix", "g")), refused: "not a method name"},
		{name: "kind delete", answer: answer("s", "[]", proposal("calc", "average", "delete", "g")), failed: `kind "delete"`},
		{name: "a 10 MB goal", answer: answer("s", "[]", proposal("calc", "average", "retire", big))},
		{name: "a 10 MB summary", answer: answer(big, "[]")},
		{name: "a 10 MB receiver", answer: answer("s", "[]", proposal(big, "average", "retire", "g")), refused: "no object"},
		{name: "a 10 MB selector", answer: answer("s", "[]", proposal("calc", big, "retire", "g")), refused: "not a method name"},
		{name: "10 MB findings", answer: answer("s", fmt.Sprintf(`[{"title": %q, "severity": "high", "evidence": [%q, %q]}]`, big, big, big))},
		{name: "a thousand pieces of evidence", answer: answer("s", `[{"title": "t", "severity": "low", "evidence": [`+strings.Repeat(`"e", `, 999)+`"e"]}]`)},
		{name: "a capitalized severity", answer: answer("s", `[{"title": "t", "severity": " High", "evidence": []}]`)},
		{name: "an unknown severity", answer: answer("s", `[{"title": "t", "severity": "apocalyptic", "evidence": []}]`), failed: `severity "apocalyptic"`},
		{name: "evidence not strings", answer: answer("s", `[{"title": "t", "severity": "high", "evidence": [1, {"a": 2}]}]`), failed: "not the JSON"},
		{name: "an extra field", answer: `{"summary": "s", "findings": [], "proposals": [], "extra": {"deep": [1]}}`, failed: "unknown field"},
		{name: "a nested extra field", answer: `{"summary": "s", "findings": [{"title": "t", "severity": "low", "evidence": [], "more": {"x": 1}}], "proposals": []}`, failed: "unknown field"},
		{name: "nulls", answer: `{"summary": null, "findings": null, "proposals": null}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, l := openHostile(t, tc.answer)
			a := runAudit(t, u, l)
			switch {
			case tc.failed != "":
				if a.State != heartbeat.AuditFailed || !strings.Contains(a.Error, tc.failed) {
					t.Fatalf("audit: %s %q, want failed saying %q", a.State, a.Error, tc.failed)
				}
			case a.State != heartbeat.AuditAnswered:
				t.Fatalf("audit: %s %q, want answered", a.State, a.Error)
			case tc.refused != "":
				if p := a.Proposals[0]; p.Status != heartbeat.ProposalRefused || !strings.Contains(p.Reason, tc.refused) {
					t.Fatalf("proposal: %s %q, want refused saying %q", p.Status, clipText(p.Reason), tc.refused)
				}
			}
			for _, f := range a.Findings {
				if f.Severity != "low" && f.Severity != "medium" && f.Severity != "high" {
					t.Errorf("a finding of severity %q", f.Severity)
				}
			}
			checkAuditBounded(t, u, a)
			if got := slotNames(t, u, "calc"); got != `["name", "average"]` {
				t.Errorf("calc's slots: %s", got)
			}
		})
	}
}

// checkAuditBounded fails t if audit a keeps more than a few hundred KiB
// of what ALFRED said.
func checkAuditBounded(t *testing.T, u *uvm.UVM, a *heartbeat.Audit) {
	t.Helper()
	var size int
	err := u.DB().View(t.Context(), func(tx *image.Tx) error {
		o, err := tx.Object(a.OID)
		if err != nil {
			return err
		}
		for _, s := range o.Slots() {
			size += len(image.Repr(s.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size > 512<<10 {
		t.Errorf("audit %d keeps %d bytes (summary %d, proposals %d, findings %d)", a.ID, size, len(a.Summary), len(a.Proposals), len(a.Findings))
	}
	for _, p := range a.Proposals {
		if len(p.Receiver) > 1000 || len(p.Selector) > 1000 || len(p.Goal) > 1100 || len(p.Reason) > 2000 {
			t.Errorf("proposal %d keeps receiver %d, selector %d, goal %d, reason %d bytes", p.N, len(p.Receiver), len(p.Selector), len(p.Goal), len(p.Reason))
		}
	}
}

func clipText(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestHostileSameMethodProposedTwice: one method proposed twice in an
// audit, or again while a proposal for it awaits a decision, gets one
// proposal acted on; the others are refused, naming the one that is.
func TestHostileSameMethodProposedTwice(t *testing.T) {
	twice := answer("s", "[]", proposal("calc", "average", "retire", "g1"), proposal("oid:0 (calc)", "average", "retire", "g2"),
		proposal("calc", "average", "document", "g3"))
	u, l := openHostile(t, twice, retireAverage)
	// "oid:0 (calc)" names no object: the second is refused for that.
	a := runAudit(t, u, l)
	if got := []string{a.Proposals[0].Status, a.Proposals[1].Status, a.Proposals[2].Status}; got[0] != heartbeat.ProposalWaiting ||
		got[1] != heartbeat.ProposalRefused || got[2] != heartbeat.ProposalRefused {
		t.Fatalf("statuses: %v", got)
	}
	if r := a.Proposals[2].Reason; !strings.Contains(r, "1.1") {
		t.Fatalf("the repeated proposal's reason: %q, want it to name 1.1", r)
	}
	a2 := runAudit(t, u, l)
	if p := a2.Proposals[0]; p.Status != heartbeat.ProposalRefused || !strings.Contains(p.Reason, "1.1") {
		t.Fatalf("a proposal for a method whose proposal awaits a decision: %s %q", p.Status, p.Reason)
	}
	if _, err := l.ProposalReject(t.Context(), "1.1", "not now"); err != nil {
		t.Fatal(err)
	}
	// Rejected: the method now cools down, which a third audit says.
	a3 := runAudit(t, u, l)
	if p := a3.Proposals[0]; p.Status != heartbeat.ProposalRefused || !strings.Contains(p.Reason, "cools down") {
		t.Fatalf("a proposal after the rejection: %s %q", p.Status, p.Reason)
	}
}

// TestHostileRetireActsOnTheOwner: a proposal naming a receiver that
// inherits the method acts on the object whose slot holds it.
func TestHostileRetireActsOnTheOwner(t *testing.T) {
	u, l := openHostile(t, answer("s", "[]", proposal("genesis", "describe", "retire", "g"), proposal("calc2", "average", "retire", "g")))
	evalOK(t, u, `root.calc2 = new(calc, name = "calc2")`)
	a := runAudit(t, u, l)
	var traits, calc store.OID
	if err := u.DB().View(t.Context(), func(tx *image.Tx) (err error) {
		if traits, err = tx.Resolve("traits"); err != nil {
			return err
		}
		calc, err = tx.Resolve("calc")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if p := a.Proposals[0]; p.Owner != traits || p.Status != heartbeat.ProposalWaiting {
		t.Fatalf("genesis.describe: owner %s, %s %q; want traits (%s), awaiting approval", p.Owner, p.Status, p.Reason, traits)
	}
	if p := a.Proposals[1]; p.Owner != calc || p.Status != heartbeat.ProposalWaiting {
		t.Fatalf("calc2.average: owner %s, %s %q; want calc (%s)", p.Owner, p.Status, p.Reason, calc)
	}
	for _, id := range []string{"1.1", "1.2"} {
		if _, err := l.ProposalAccept(t.Context(), id); err != nil {
			t.Fatalf("accept %s: %v", id, err)
		}
	}
	for _, tc := range []struct{ owner, heir, selector string }{{"traits", "genesis", "describe"}, {"calc", "calc2", "average"}} {
		if got := evalOK(t, u, fmt.Sprintf("has_slot(%s, %q)", tc.owner, tc.selector)); got != image.Bool(true) {
			t.Errorf("%s.%s is gone", tc.owner, tc.selector)
		}
		if got := slotNames(t, u, tc.heir); strings.Contains(got, tc.selector) {
			t.Errorf("%s got a slot of its own: %s", tc.heir, got)
		}
		v, err := l.Inspect(t.Context(), tc.owner)
		if err != nil {
			t.Fatal(err)
		}
		marked := false
		for _, s := range v.Own {
			marked = marked || (s.Name == tc.selector && s.Deprecated != "")
		}
		if !marked {
			t.Errorf("%s.%s is not marked deprecated: %+v", tc.owner, tc.selector, v.Own)
		}
	}
}

// TestHostileFactsNameResolvableReceivers: a method of an object the
// root does not name, whose name slot is a root name (a clone of calc),
// is named in the facts by its OID, so a proposal that names it as the
// facts do acts on it, not on calc.
func TestHostileFactsNameResolvableReceivers(t *testing.T) {
	u, l := openHostile(t)
	evalOK(t, u, `root.box = [clone_object(calc)]`)
	clone := evalOK(t, u, `oid(root.box[0])`).(image.String)
	callAverage(t, u, string(clone))
	callAverage(t, u, string(clone), 2)
	a := runAudit(t, u, l)
	var receivers []string
	for _, m := range a.Facts.Failing {
		receivers = append(receivers, m.Receiver)
	}
	if len(receivers) != 2 || receivers[0] == receivers[1] {
		t.Fatalf("the failing methods are named %q: two methods, one name", receivers)
	}
	for _, r := range receivers {
		if r != "calc" && !strings.HasPrefix(r, string(clone)+" ") {
			t.Errorf("the clone is named %q, want %s and its name", r, clone)
		}
	}
}

// TestHostileAuditJSON: the command's audit view marshals (what -json
// and the bridge print) whatever the answer held.
func TestHostileAuditJSON(t *testing.T) {
	u, l := openHostile(t, `{"summary": "s\u0000\u001b[2J`+"\xff\xfe"+`", "findings": [{"title": "\u001b[31mred", "severity": "low",
 "evidence": ["\ud800"]}], "proposals": [{"receiver": "calc", "selector": "average", "kind": "retire", "goal": "g\u2028"}]}`)
	a := runAudit(t, u, l)
	v, err := l.AuditShow(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back command.AuditView
	if err := json.Unmarshal(raw, &back); err != nil || back.ID != a.ID || back.State != heartbeat.AuditAnswered || len(back.Proposals) != 1 {
		t.Fatalf("the audit's JSON does not read back: %v\n%s", err, raw)
	}
}
