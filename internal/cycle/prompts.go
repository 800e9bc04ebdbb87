package cycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/vm"
)

// dialect states the rules method code must follow; every prompt that
// asks for code or tests carries it. Its built-ins are the VM's own table
// (vm.Builtins), less those generated code may not use.
var dialect = `Method code is Starlark, a small dialect of Python:
- The method is exactly ONE function, def SELECTOR(self, ...), named like the message, whose first
  parameter is self. Beside it only a docstring may stand: no other top-level code, no load, no import.
- No classes, no exceptions (no try/except/raise: call fail("message") to fail), no f-strings (use
  "%s" % x or "{}".format(x)), no set literals; strings are not iterable (use s.elems()); while loops
  and recursion are allowed but every execution has step, time and memory limits.
- Read a slot as self.name (inherited slots through parent* slots too) and write one as
  self.name = value; has_slot(obj, "name") tests for a slot; slots(obj) lists its own slot names.
` + builtinRules() + `
- There is no file, network or process access.
Tests are Starlark EXPRESSIONS that must evaluate to True, with self bound to the receiver and the new
method installed, e.g. "type(self.greet('ada')) == 'string'" or "self.add(2, 3) == 5": the expression
alone, no assert, no statements. Each test runs alone and is rolled back: no test sees what another test
(or the original call) changed, so a test of a change makes it and checks it in one expression, e.g.
"self.push(1) == 1 and self.items == [1]".`

// pythonMissing are Python built-ins models reach for that the dialect
// lacks, with what to write instead (neighbours with the same advice are
// given it once); none may be in the VM's table.
var pythonMissing = []struct{ name, instead string }{
	{"sum", "a loop or a comprehension"},
	{"map", "a loop or a comprehension"},
	{"filter", "a loop or a comprehension"},
	{"isinstance", `type(x) == "int"`},
	{"round", "math.round"},
}

// builtinRules lists the built-ins method code has, from the VM's table.
func builtinRules() string {
	var ours, universal, forbidden, missing []string
	for _, b := range vm.Builtins() {
		switch _, no := generatedForbids[b.Name]; {
		case no:
			forbidden = append(forbidden, b.Name+"()")
		case b.Universal:
			universal = append(universal, b.Usage)
		default:
			ours = append(ours, b.Usage)
		}
	}
	for i, m := range pythonMissing {
		if i+1 < len(pythonMissing) && pythonMissing[i+1].instead == m.instead {
			missing = append(missing, m.name) // said once for the group
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (use %s)", m.name, m.instead))
	}
	return fmt.Sprintf("- Built-ins: %s.\n- Starlark's own: %s.\n- Not available: %s; Python's %s.",
		strings.Join(ours, "; "), strings.Join(universal, ", "), strings.Join(forbidden, ", "), strings.Join(missing, ", "))
}

// planSchema is the JSON schema of BRICK's plan. Every schema here is
// what strict structured-output servers accept: each object lists all
// its properties as required and no others, and an optional one is
// nullable (null reads as absent).
var planSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "intent": {"type": "string"},
    "selector": {"type": "string"},
    "signature": {"type": "string"},
    "sub_questions": {"type": ["array", "null"], "items": {"type": "object",
      "properties": {"persona": {"type": "string", "enum": ["BABS", "ROBIN", "ALFRED"]}, "question": {"type": "string"}},
      "required": ["persona", "question"], "additionalProperties": false}},
    "tests": {"type": "array", "items": ` + testSchema + `},
    "refuses": {"type": ["string", "null"]}
  },
  "required": ["intent", "selector", "signature", "sub_questions", "tests", "refuses"],
  "additionalProperties": false
}`)

// methodSchema is the JSON schema of ROBIN's method.
var methodSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "source": {"type": "string"},
    "tests": {"type": ["array", "null"], "items": ` + testSchema + `},
    "disputes": {"type": ["array", "null"], "items": {"type": "object",
      "properties": {"test": {"type": "string"}, "reason": {"type": "string"}},
      "required": ["test", "reason"], "additionalProperties": false}}
  },
  "required": ["source", "tests", "disputes"],
  "additionalProperties": false
}`)

// testSchema is a test's schema, in a plan or a method.
const testSchema = `{"type": "object",
      "properties": {"name": {"type": ["string", "null"]}, "expr": {"type": "string"}, "fails": {"type": ["string", "null"]}},
      "required": ["name", "expr", "fails"], "additionalProperties": false}`

// Bounds on what a plan may ask for.
const (
	maxSubQuestions = 6
	maxTests        = 12
	maxExprBytes    = 2000
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// parsePlan reads BRICK's answer, refusing what cannot be used: what
// the schema requires missing or null, a test that is not one
// expression. It returns what was repaired to read it, if anything.
func parsePlan(answer string, selector string) (*Plan, string, error) {
	p, repaired, err := decodeAnswer[Plan](answer)
	if err != nil {
		return nil, "", fmt.Errorf("the plan is not the JSON the schema asks for: %w", err)
	}
	if err := required("the plan", map[string]bool{
		"intent": blank(p.Intent), "selector": blank(p.Selector), "signature": blank(p.Signature), "tests": len(p.Tests) == 0,
	}); err != nil {
		return nil, "", err
	}
	if selector != "" {
		p.Selector = selector
	}
	if !identifier.MatchString(p.Selector) || !vm.IsSelector(p.Selector) {
		return nil, "", fmt.Errorf("the plan's selector %q is not a method name", p.Selector)
	}
	if len(p.SubQuestions) > maxSubQuestions {
		return nil, "", fmt.Errorf("the plan has %d sub-questions (at most %d)", len(p.SubQuestions), maxSubQuestions)
	}
	for i, q := range p.SubQuestions {
		if q.Persona == "" || strings.TrimSpace(q.Question) == "" {
			return nil, "", fmt.Errorf("sub-question %d has no persona or no question", i+1)
		}
	}
	if err := checkTests(p.Tests); err != nil {
		return nil, "", fmt.Errorf("the plan's tests: %w", err)
	}
	return p, repaired, nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// required refuses an answer whose fields named true are missing,
// null or empty, naming them.
func required(what string, missing map[string]bool) error {
	var names []string
	for name, gone := range missing {
		if gone {
			names = append(names, strconv.Quote(name))
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return fmt.Errorf("%s lacks %s, which the schema requires (missing, null or empty)", what, strings.Join(names, ", "))
}

// method is ROBIN's answer.
type method struct {
	Source string `json:"source"`
	Tests  []Test `json:"tests"`
	// Disputes are plan tests ROBIN holds wrong, each with why: the plan
	// is then revised (once) rather than the method bent to them.
	Disputes []Dispute `json:"disputes"`
}

// Dispute is ROBIN's objection to one of the plan's tests.
type Dispute struct {
	Test   string `json:"test"` // the test's name or expression
	Reason string `json:"reason"`
}

// maxPlanRevisions bounds how many times disputes send a plan back to
// BRICK: once; a revised plan disputed again was contradictory.
const maxPlanRevisions = 1

// disputePrefix begins what a plan step records when ROBIN disputed it.
const disputePrefix = "ROBIN disputes the plan's tests, so the plan goes back to you to revise: "

// disputeText says what ROBIN disputed and why.
func disputeText(ds []Dispute) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("test %s: %s", clip(d.Test, 300), clip(d.Reason, 600))
	}
	return strings.Join(parts, "; ") + ". Fix the tests that are wrong; keep those that are right."
}

// parseMethod reads ROBIN's answer, and says what was repaired to read
// it, if anything.
func parseMethod(answer string) (*method, string, error) {
	m, repaired, err := decodeAnswer[method](answer)
	if err != nil {
		return nil, "", fmt.Errorf("the answer is not the JSON the schema asks for: %w", err)
	}
	if err := required("the answer", map[string]bool{"source": blank(m.Source)}); err != nil {
		return nil, "", err
	}
	for i, d := range m.Disputes {
		if blank(d.Test) || blank(d.Reason) {
			return nil, "", fmt.Errorf("dispute %d names no test or gives no reason", i+1)
		}
	}
	if err := checkTests(m.Tests); err != nil {
		return nil, "", fmt.Errorf("the answer's tests: %w", err)
	}
	return m, repaired, nil
}

// checkTests bounds tests and checks that each is one expression,
// trimming them.
func checkTests(tests []Test) error {
	if len(tests) > maxTests {
		return fmt.Errorf("%d tests (at most %d)", len(tests), maxTests)
	}
	for i := range tests {
		t := &tests[i]
		t.Expr = strings.TrimSpace(t.Expr)
		if t.Expr == "" || len(t.Expr) > maxExprBytes {
			return fmt.Errorf("test %d: \"expr\" is empty or over %d bytes", i+1, maxExprBytes)
		}
		if err := checkExpr(t.Expr); err != nil {
			return fmt.Errorf("test %d: %w", i+1, err)
		}
	}
	return nil
}

// assertPrefix matches a test written as Python's assert statement.
var assertPrefix = regexp.MustCompile(`^assert\b`)

// checkExpr says why expr is not a test expression, in terms a model
// can act on.
func checkExpr(expr string) error {
	err := vm.CheckExpr(expr)
	switch {
	case assertPrefix.MatchString(expr):
		// assert(x) parses, as a call of a function nothing defines.
		alone := strings.TrimSpace(strings.TrimPrefix(expr, "assert"))
		return fmt.Errorf("a test is the expression alone: write `%s`, not `%s`", clip(alone, 200), clip(expr, 200))
	case err == nil:
		return nil
	case errors.Is(err, vm.ErrNotExpression):
		return fmt.Errorf("`%s` is a statement; a test is one expression that must be True, such as `self.count() == 1`", clip(expr, 200))
	}
	return fmt.Errorf("`%s` does not parse: %w", clip(expr, 200), err)
}

// mergeTests is the plan's tests and then ROBIN's, each expression once
// (ROBIN is asked to repeat the plan's; running one twice tells nothing
// new).
func mergeTests(plan, own []Test) []Test {
	seen := map[string]bool{}
	var out []Test
	for _, t := range slices.Concat(plan, own) {
		if e := strings.TrimSpace(t.Expr) + "\x00" + strings.ToLower(strings.TrimSpace(t.Fails)); !seen[e] {
			seen[e] = true
			out = append(out, t)
		}
	}
	return out
}

// maxFailure bounds a recorded failure's message, and maxFailuresShown
// how many failures a synthesis prompt quotes.
const (
	maxFailure       = 8 << 10
	maxFailuresShown = 4
)

// callText is the mission's call as Starlark, each argument clipped: an
// argument of megabytes must not make every prompt as large.
func callText(m Mission) string {
	var parts []string
	for _, a := range m.Args {
		parts = append(parts, clip(image.Repr(a), maxSlotRepr))
	}
	for _, kw := range m.Kwargs {
		parts = append(parts, kw.Name+" = "+clip(image.Repr(kw.Value), maxSlotRepr))
	}
	return fmt.Sprintf("%s(%s)", m.Selector, strings.Join(parts, ", "))
}

func section(b *strings.Builder, title string, items []string) {
	fmt.Fprintf(b, "\n%s:\n", title)
	if len(items) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, it := range items {
		b.WriteString("  " + strings.ReplaceAll(it, "\n", "\n  ") + "\n")
	}
}

// planPrompt is BRICK's mission.
func planPrompt(c *Cycle, v *receiverView, rejected []Step) []llm.Message {
	var b strings.Builder
	if c.Mission.Improve != nil {
		fmt.Fprintf(&b, "Mission for the object %s: %s", v.desc, improvementText(c))
		fmt.Fprintf(&b, "Plan the replacement of %s: keep its name and parameters; the tests show what it must do.\n", c.Mission.Selector)
	} else if c.Mission.Selector != "" {
		fmt.Fprintf(&b, "Mission: the object %s received the message %s, and nothing in its delegation chain understands %q.\n",
			v.desc, callText(c.Mission), c.Mission.Selector)
		fmt.Fprintf(&b, "Plan the method %s that answers it.\n", c.Mission.Selector)
	} else {
		fmt.Fprintf(&b, "Mission for the object %s: %s\nPlan one method for it, and name it in \"selector\".\n", v.desc, c.Mission.Brief)
	}
	viewSections(&b, v, true)
	name := c.Mission.Selector
	if name == "" {
		name = "NAME"
	}
	b.WriteString("\n" + strings.ReplaceAll(dialect, "SELECTOR", name) + "\n")
	b.WriteString(`
Answer with JSON: {"intent": one sentence, "selector": the method name, "signature": "def NAME(self, ...)",
"sub_questions": [{"persona": "BABS" | "ROBIN" | "ALFRED", "question": ...}] (at most 6; none if the
method is obvious), "tests": [{"name": ..., "expr": a Starlark expression that must be True, "fails":
null}] (at least one), "refuses": null}. When the right answer to a call is a refusal (taking more
than there is, a missing item), the method calls fail("...") then: set "refuses" to a few words its
error must contain if the message received must be refused, and give a test that must fail the same
way "fails" (the words) instead of null; the test's expr is then the call that must fail.`)
	for _, r := range rejected {
		fmt.Fprintf(&b, "\n\nAn earlier answer was refused: %s\nIt was:\n%s", r.Rejected, clip(r.Answer, 2000))
	}
	return []llm.Message{{Role: llm.RoleUser, Content: b.String()}}
}

// planFocus is what BRICK's view of the receiver is about: the mission.
func planFocus(c *Cycle) focus {
	return focus{selector: c.Mission.Selector, text: c.Mission.Brief}
}

// workFocus is what a view of the receiver is about once there is a
// plan: the plan, the personas' answers and the failures so far, whose
// names make an inherited method worth showing in full.
func workFocus(c *Cycle) focus {
	parts := []string{c.Mission.Brief, c.Plan.Intent, c.Plan.Signature}
	for _, t := range c.Plan.Tests {
		parts = append(parts, t.Expr)
	}
	for _, s := range c.Steps {
		if s.Kind == StepDelegate && s.Rejected == "" {
			parts = append(parts, s.Answer)
		}
	}
	for _, f := range c.Failures {
		parts = append(parts, f.Message)
	}
	return focus{selector: c.Plan.Selector, text: strings.Join(parts, "\n")}
}

// questionPrompt is a sub-question for a persona, with the receiver as
// BRICK saw it. catalog are passages of the knowledge catalog that bear
// on the question, quoted for BABS to rely on: there are none until the
// catalog exists (its section is left out when empty).
func questionPrompt(c *Cycle, q SubQuestion, v *receiverView, catalog []string) []llm.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Mission: %s\nPlan: %s (%s)\n\nThe receiver is %s.\n", missionText(c, v), c.Plan.Intent, c.Plan.Signature, v.desc)
	viewSections(&b, v, true)
	if len(catalog) > 0 {
		section(&b, "From the knowledge catalog", catalog)
	}
	section(&b, "The plan's tests", testLines(c.Plan.Tests))
	fmt.Fprintf(&b, "\nYour question: %s\nAnswer briefly and concretely from what is shown: name the slots and methods you rely on, and say so when it does not tell.", q.Question)
	if len(catalog) > 0 {
		b.WriteString(" Cite the catalog passages you rely on by their number, like [1].")
	}
	return []llm.Message{{Role: llm.RoleUser, Content: b.String()}}
}

func missionText(c *Cycle, v *receiverView) string {
	if c.Mission.Improve != nil {
		return improvementText(c)
	}
	if c.Mission.Selector != "" && c.Mission.Brief == "" {
		return fmt.Sprintf("%s was sent to %s and nothing understood it", callText(c.Mission), v.desc)
	}
	return c.Mission.Brief
}

func testLines(tests []Test) []string {
	var out []string
	for _, t := range tests {
		line := fmt.Sprintf("%s: %s", t.Name, t.Expr)
		if t.Fails != "" {
			line += fmt.Sprintf("  (must fail, with an error mentioning %q)", t.Fails)
		}
		out = append(out, line)
	}
	return out
}

// refusalText tells ROBIN that the message itself must be refused.
func refusalText(c *Cycle) string {
	if c.Plan.Refuses == "" || c.Mission.Selector == "" {
		return ""
	}
	return fmt.Sprintf("\nThe call %s must be refused: the method calls fail(...) with a message mentioning %q, and its sender gets that error.\n",
		callText(c.Mission), c.Plan.Refuses)
}

// synthesisPrompt is ROBIN's task for an attempt, with the latest
// failures verbatim, each with ALFRED's review of it if there is one.
func synthesisPrompt(c *Cycle, v *receiverView) []llm.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Write the method %s for the object %s.\nMission: %s\nIntent: %s\nSignature: %s\n",
		c.Plan.Selector, v.desc, missionText(c, v), c.Plan.Intent, c.Plan.Signature)
	viewSections(&b, v, false)
	var answers []string
	for i, q := range c.Plan.SubQuestions {
		if s, ok := c.step(StepDelegate, 0, i); ok {
			answers = append(answers, fmt.Sprintf("%s was asked: %s\n%s answered: %s", q.Persona, q.Question, q.Persona, s.Answer))
		}
	}
	section(&b, "What the other personas found", answers)
	section(&b, "The plan's tests (the method must pass them)", testLines(c.Plan.Tests))
	b.WriteString(refusalText(c))
	b.WriteString("\n" + strings.ReplaceAll(dialect, "SELECTOR", c.Plan.Selector) + "\n")
	b.WriteString(`
Answer with JSON: {"source": the complete method source, "tests": [{"name": ..., "expr": ..., "fails":
null, or words the error of a call that must fail contains}], "disputes": null},
the tests being the plan's and any of your own (each distinct test runs once). If a test of the plan
is wrong (it wants what the mission does not ask), do not bend the method to it: name it in
"disputes": [{"test": its name, "reason": why}], and the plan is revised once.`)
	failures := c.Failures
	if n := len(failures) - maxFailuresShown; n > 0 {
		// Retries add attempts without end; the latest failures matter.
		fmt.Fprintf(&b, "\n\n%d earlier attempts failed too.", n)
		failures = failures[n:]
	}
	for _, f := range failures {
		fmt.Fprintf(&b, "\n\nAttempt %d failed (%s):\n%s", f.Attempt, f.Kind, f.Message)
		if r, ok := c.review(f.Attempt); ok {
			fmt.Fprintf(&b, "\n\nALFRED reviewed that attempt's method:\n%s", clip(r.Answer, maxReviewShown))
		}
	}
	if len(c.Failures) > 0 {
		b.WriteString("\n\nFix exactly what the failures report.")
	}
	return []llm.Message{{Role: llm.RoleUser, Content: b.String()}}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
