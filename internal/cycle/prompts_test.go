package cycle

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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

// The built-ins BRICK's and ROBIN's prompts list are the VM's table: what
// method code has bound, less what generated code may not use (method,
// which the prompt says is not available).
func TestPromptBuiltinsAreVMTable(t *testing.T) {
	var want []string
	for _, b := range vm.Builtins() {
		if _, forbidden := generatedForbids[b.Name]; !forbidden {
			want = append(want, b.Name)
		}
	}
	sort.Strings(want)
	c := &Cycle{Mission: Mission{Message: vm.Message{Selector: "greet"}}, Plan: &Plan{Selector: "greet"}}
	v := &receiverView{desc: "oid:1"}
	for name, prompt := range map[string]string{
		"plan":      planPrompt(c, v, nil)[0].Content,
		"synthesis": synthesisPrompt(c, v)[0].Content,
	} {
		var got []string
		lead := regexp.MustCompile(`^[a-z_]+`)
		for _, item := range strings.Split(promptLine(t, prompt, "- Built-ins: "), "; ") {
			got = append(got, lead.FindString(item))
		}
		got = append(got, strings.Split(promptLine(t, prompt, "- Starlark's own: "), ", ")...)
		sort.Strings(got)
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("%s prompt's built-ins differ from the VM's table (-got +want):\n%s", name, diff)
		}
		missing := promptLine(t, prompt, "- Not available: ")
		for forbidden := range generatedForbids {
			if !strings.Contains(missing, forbidden+"()") {
				t.Errorf("%s prompt does not say %s() is not available: %q", name, forbidden, missing)
			}
		}
		for _, m := range pythonMissing {
			if !regexp.MustCompile(`\b`+m.name+`\b`).MatchString(missing) || !strings.Contains(missing, "(use "+m.instead+")") {
				t.Errorf("%s prompt does not say Python's %s is missing: %q", name, m.name, missing)
			}
		}
	}
	// The cases the issue names: abs works, sum does not exist, method is
	// bound but not for generated code.
	has := map[string]bool{}
	for _, b := range vm.Builtins() {
		has[b.Name] = true
	}
	if !has["abs"] || has["sum"] || !has["method"] {
		t.Errorf("the VM's table: abs %v, sum %v, method %v; want true, false, true", has["abs"], has["sum"], has["method"])
	}
	for _, m := range pythonMissing {
		if has[m.name] {
			t.Errorf("the prompt says %s is missing, but the VM binds it", m.name)
		}
	}
}

// promptLine is the rest of prompt's line starting with prefix, without
// its final period.
func promptLine(t testing.TB, prompt, prefix string) string {
	t.Helper()
	for line := range strings.Lines(prompt) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSuffix(strings.TrimSpace(rest), ".")
		}
	}
	t.Fatalf("no line %q in the prompt", prefix)
	return ""
}

// The synthesis prompt says one thing about tests, as ROBIN's system
// prompt does: the plan's and any of ROBIN's own.
func TestSynthesisPromptTestsInstruction(t *testing.T) {
	c := &Cycle{Mission: Mission{Message: vm.Message{Selector: "greet"}}, Plan: &Plan{Selector: "greet", Tests: []Test{{Name: "a", Expr: "self.greet() == 1"}}}}
	p := synthesisPrompt(c, &receiverView{desc: "oid:1"})[0].Content
	if strings.Contains(p, "in addition to the plan's") || strings.Count(p, "the plan's and any of your own") != 1 {
		t.Errorf("the synthesis prompt's instruction about tests:\n%s", p)
	}
}

func TestMergeTests(t *testing.T) {
	plan := []Test{{Name: "a", Expr: "self.f() == 1"}, {Name: "a again", Expr: " self.f() == 1\n"}}
	own := []Test{{Name: "copied", Expr: "self.f() == 1 "}, {Name: "b", Expr: "self.f() != 2"}}
	want := []Test{{Name: "a", Expr: "self.f() == 1"}, {Name: "b", Expr: "self.f() != 2"}}
	if diff := cmp.Diff(mergeTests(plan, own), want); diff != "" {
		t.Errorf("(-got +want):\n%s", diff)
	}
}

// ROBIN repeats the plan's test, as its prompts ask: it runs once, and
// the installed method's provenance lists it once.
func TestPlanTestsRunOnce(t *testing.T) {
	repeat := `{"source": "def display_yourself(self):\n    return 'I am %s' % self.name\n",
	 "tests": [{"name": "copied", "expr": " 'genesis' in self.display_yourself() "}, {"name": "a string", "expr": "type(self.display_yourself()) == 'string'"}]}`
	b := &brain{plans: []string{goodPlan}, methods: []string{repeat}}
	m, db := testMachine(t, b, nil)
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete {
		t.Fatalf("ended %s: %s", c.State, c.Reason)
	}
	var exprs []string
	for _, tc := range c.Tests {
		exprs = append(exprs, tc.Expr)
	}
	if diff := cmp.Diff(exprs, []string{"'genesis' in self.display_yourself()", "type(self.display_yourself()) == 'string'"}); diff != "" {
		t.Errorf("the cycle's tests (-got +want):\n%s", diff)
	}
	tests, _ := installedMethod(t, db, g, "display_yourself").Meta.Get(image.String("tests"))
	if n := len(tests.(*image.List).Elems); n != 2 {
		t.Errorf("provenance lists %d tests, want 2: %s", n, image.Repr(tests))
	}
}

// A plan that lacks what the schema requires, or whose tests are not
// expressions, is BRICK's to fix: it is refused, saying what is wrong,
// and BRICK is asked again; ROBIN sees only the plan that was taken.
func TestPlanRefusedToBRICK(t *testing.T) {
	tests := []struct {
		name string
		plan string
		want []string // in the refusal, which BRICK's next prompt quotes
	}{
		{"no tests", `{"intent": "describe", "selector": "display_yourself", "signature": "def display_yourself(self)", "sub_questions": []}`,
			[]string{`lacks "tests"`}},
		{"null fields", `{"intent": null, "selector": "display_yourself", "signature": null, "sub_questions": null, "tests": null}`,
			[]string{`lacks "intent", "signature", "tests"`}},
		{"assert", `{"intent": "describe", "selector": "display_yourself", "signature": "def display_yourself(self)", "sub_questions": [],
		  "tests": [{"name": "ok", "expr": "self.display_yourself() != ''"}, {"name": "names", "expr": "assert 'genesis' in self.display_yourself()"}]}`,
			[]string{"test 2", "write `'genesis' in self.display_yourself()`, not `assert 'genesis' in self.display_yourself()`"}},
		{"statement", `{"intent": "describe", "selector": "display_yourself", "signature": "def display_yourself(self)", "sub_questions": [],
		  "tests": [{"name": "set", "expr": "x = self.display_yourself()"}]}`,
			[]string{"test 1", "`x = self.display_yourself()` is a statement"}},
		{"syntax error", `{"intent": "describe", "selector": "display_yourself", "signature": "def display_yourself(self)", "sub_questions": [],
		  "tests": [{"name": "f-string", "expr": "self.display_yourself() == f'I am {self.name}'"}]}`,
			[]string{"test 1", "does not parse", "line 1, col"}},
		{"unreadable JSON", "{\"intent\": \"describe\",\n \"selector\" \"display_yourself\"}",
			[]string{"line 2, column", "missing : after a key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &brain{plans: []string{tt.plan, goodPlan}, methods: []string{goodMethod}}
			m, db := testMachine(t, b, nil)
			id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
			if err != nil {
				t.Fatal(err)
			}
			c := withPrompts(t, db, waitDone(t, m, id))
			if c.State != Complete || b.count("BRICK") != 2 || b.count("ROBIN") != 1 {
				t.Fatalf("ended %s (%s) with BRICK asked %d times, ROBIN %d; want COMPLETE, 2 and 1", c.State, c.Reason, b.count("BRICK"), b.count("ROBIN"))
			}
			refused := c.Steps[0].Rejected
			for _, w := range tt.want {
				if !strings.Contains(refused, w) {
					t.Errorf("refusal %q does not say %q", refused, w)
				}
			}
			if again := c.Steps[1].Prompt[0].Content; !strings.Contains(again, refused) {
				t.Error("BRICK's second prompt does not quote the refusal")
			}
		})
	}
}

// Answers in prose and fences, with single quotes, trailing commas and
// raw line breaks, are repaired, and the steps say what was repaired.
func TestRepairedAnswersRecorded(t *testing.T) {
	plan := "Here is my plan:\n```json\n{'intent': 'describe genesis', 'selector': 'display_yourself', 'signature': 'def display_yourself(self)',\n" +
		" 'sub_questions': [], 'tests': [{'name': 'names itself', 'expr': \"'genesis' in self.display_yourself()\"},],}\n```"
	meth := "```json\n{\"source\": \"def display_yourself(self):\n    return 'I am %s' % self.name\n\", \"tests\": null}\n```"
	b := &brain{plans: []string{plan}, methods: []string{meth}}
	m, db := testMachine(t, b, nil)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := waitDone(t, m, id)
	if c.State != Complete || len(c.Steps) != 2 {
		t.Fatalf("ended %s (%s) with %d steps; want COMPLETE in 2", c.State, c.Reason, len(c.Steps))
	}
	if got, want := c.Steps[0].Repaired, "took the JSON object out of the text around it; "+repairSingle+"; "+repairComma; got != want {
		t.Errorf("plan repaired %q, want %q", got, want)
	}
	if got := c.Steps[1].Repaired; got != repairControl {
		t.Errorf("method repaired %q, want %q", got, repairControl)
	}
	if c.Steps[0].Rejected != "" || c.Steps[1].Rejected != "" {
		t.Errorf("refused: %q, %q", c.Steps[0].Rejected, c.Steps[1].Rejected)
	}
}

// A test is one expression; what a model writes instead is refused
// saying what to write.
func TestCheckExpr(t *testing.T) {
	tests := []struct {
		expr string
		want string // "" for accepted
	}{
		{"self.f() == 1", ""},
		{"(self.f() ==\n 1)", ""},
		{"[x for x in self.f()] == []", ""},
		{"assert self.f() == 1", "write `self.f() == 1`, not `assert self.f() == 1`"},
		{"assert(self.f() == 1)", "write `(self.f() == 1)`"},
		{"x = self.f()", "is a statement"},
		{"self.f()\nself.f() == 1", "is a statement"},
		{"self.f() == f'{1}'", "does not parse: line 1, col"},
		{"try: self.f()", "does not parse"},
	}
	for _, tt := range tests {
		err := checkExpr(tt.expr)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: got %v, want it accepted", tt.expr, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: got %v, want an error saying %q", tt.expr, err, tt.want)
		}
	}
}
