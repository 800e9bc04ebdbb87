package cycle

import (
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

// validateCandidate validates source as the method selector of genesis,
// called with args, against tests.
func validateCandidate(t *testing.T, selector, source string, args []image.Value, tests ...Test) *Failure {
	t.Helper()
	m, db := testMachine(t, &brain{}, nil)
	c := &Cycle{ID: 1, Attempt: 1, Code: source, Tests: tests, Plan: &Plan{Selector: selector},
		Mission: Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: selector, Args: args}}}
	f, err := m.validate(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// bump counts its calls in a slot: a side effect a test must not see
// twice.
const bump = "def bump(self):\n    n = 1\n    if has_slot(self, \"count\"):\n        n = self.count + 1\n    self.count = n\n    return n\n"

// TestValidateShowsBothSides: a failing comparison says what the method
// answered and what the test wants; each side ran once, so a side with
// effects neither passes nor fails a test by running twice.
func TestValidateShowsBothSides(t *testing.T) {
	tests := []struct {
		name, expr string
		want       string // "" when the test passes
	}{
		{"passes once", "self.bump() == 1", ""},
		{"wrong expected value", "self.bump() == 2", "self.bump() == 2 is False, want True: self.bump() returned 1, the test wants 2"},
		{"expected first", "2 == self.bump()", "self.bump() returned 1, the test wants 2"},
		{"state after calls", "self.bump() == 1 and self.bump() == 2 and self.count == 3", "self.count is 2, the test wants 3"},
		{"contains", "'x' in str(self.bump())", `str(self.bump()) returned "1", the test wants it to contain "x"`},
		{"bound", "self.bump() > 1", "self.bump() returned 1, the test wants more than 1"},
		{"two computed sides", "self.bump() == self.bump()", "self.bump() returned 1, and self.bump() returned 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validateCandidate(t, "bump", bump, nil, Test{Name: "t", Expr: tt.expr})
			switch {
			case tt.want == "" && f != nil:
				t.Errorf("got failure %q, want the test to pass", f.Message)
			case tt.want != "" && (f == nil || !strings.Contains(f.Message, tt.want)):
				t.Errorf("got failure %+v, want it to say %q", f, tt.want)
			}
		})
	}
}

func TestExplainComparison(t *testing.T) {
	call := vm.Side{Source: `word_count("a b  c")`, Repr: "3", Call: true}
	slot := vm.Side{Source: "self.balance", Repr: "10"}
	four := vm.Side{Source: "4", Repr: "4", Constant: true}
	tests := []struct {
		c    vm.Comparison
		want string
	}{
		{vm.Comparison{Op: "==", Left: call, Right: four}, `word_count("a b  c") returned 3, the test wants 4`},
		{vm.Comparison{Op: "==", Left: four, Right: call}, `word_count("a b  c") returned 3, the test wants 4`},
		{vm.Comparison{Op: "!=", Left: slot, Right: four}, "self.balance is 10, the test wants anything but 4"},
		{vm.Comparison{Op: "<", Left: slot, Right: four}, "self.balance is 10, the test wants less than 4"},
		{vm.Comparison{Op: "<", Left: four, Right: slot}, "self.balance is 10, the test wants more than 4"},
		{vm.Comparison{Op: "<=", Left: slot, Right: four}, "the test wants at most 4"},
		{vm.Comparison{Op: ">=", Left: slot, Right: four}, "the test wants at least 4"},
		{vm.Comparison{Op: ">", Left: four, Right: slot}, "the test wants less than 4"},
		{vm.Comparison{Op: "in", Left: slot, Right: four}, "the test wants it to be in 4"},
		{vm.Comparison{Op: "in", Left: four, Right: slot}, "the test wants it to contain 4"},
		{vm.Comparison{Op: "not in", Left: four, Right: slot}, "the test wants it not to contain 4"},
		{vm.Comparison{Op: "not in", Left: slot, Right: four}, "the test wants it not to be in 4"},
		{vm.Comparison{Op: "==", Left: slot, Right: call}, `self.balance is 10, and word_count("a b  c") returned 3`},
		{vm.Comparison{Op: "==", Left: four, Right: four}, "4 is 4, and 4 is 4"},
	}
	for _, tt := range tests {
		if got := explainComparison(&tt.c); !strings.Contains(got, tt.want) {
			t.Errorf("%s %s %s: got %q, want %q", tt.c.Left.Source, tt.c.Op, tt.c.Right.Source, got, tt.want)
		}
	}
}

// TestValidateHints: what goes back to ROBIN keeps the original message
// first and adds what to write instead of the Python habit.
func TestValidateHints(t *testing.T) {
	tests := []struct {
		name, source, expr string
		want               []string
	}{
		{"f-string in the method", "def greet(self):\n    return f\"hi {self.name}\"\n", "self.greet() == 'hi genesis'",
			[]string{"guardian: method greet refused:\n  line 2", "\nhint (line 2): f-strings do not exist here"}},
		{"try in the method", "def greet(self):\n    try:\n        return 'hi'\n    except:\n        return ''\n", "self.greet() == 'hi'",
			[]string{"got try, want primary expression", "\nhint (lines 2, 4): try/except does not exist"}},
		{"sum in the method", "def greet(self):\n    return sum([1])\n", "self.greet() == 1",
			[]string{"undefined: sum", "\nhint: sum does not exist: add in a loop"}},
		{"assert in a test", "def greet(self):\n    return 'hi'\n", "assert self.greet() == 'hi'",
			[]string{"raised an error", "\nhint: a test is the boolean expression alone: write self.greet() == 'hi', without assert"}},
		{"a statement as a test", "def greet(self):\n    return 'hi'\n", "x = self.greet()\nx == 'hi'",
			[]string{"is None, want True", "\nhint: a test is one expression"}},
		{"a test answering None", "def greet(self):\n    self.greeted = True\n", "self.greet()",
			[]string{"is None, want True", "\nhint: the test answered None"}},
		{"sort at run time", "def greet(self):\n    xs = [2, 1]\n    xs.sort()\n    return xs\n", "self.greet() == [1, 2]",
			[]string{"list has no .sort field or method", "\nhint: lists have no sort method: xs = sorted(xs)", "the original call greet() raised an error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validateCandidate(t, "greet", tt.source, nil, Test{Name: "t", Expr: tt.expr})
			if f == nil {
				t.Fatal("validated")
			}
			for _, w := range tt.want {
				if !strings.Contains(f.Message, w) {
					t.Errorf("got failure %q, want it to contain %q", f.Message, w)
				}
			}
		})
	}
	// The original call's error has its hint too.
	f := validateCandidate(t, "greet", "def greet(self):\n    xs = [2, 1]\n    xs.sort()\n    return xs\n", nil)
	if f == nil || strings.Count(f.Message, "hint: lists have no sort method") != 1 || !strings.Contains(f.Message, "the original call greet() raised") {
		t.Errorf("got failure %+v, want the original call's error with its hint", f)
	}
	// A correct method's failure has no hint.
	f = validateCandidate(t, "greet", "def greet(self):\n    return 'hello'\n", nil, Test{Name: "t", Expr: "self.greet() == 'hi'"})
	if f == nil || strings.Contains(f.Message, "hint") {
		t.Errorf("got failure %+v, want one without a hint", f)
	}
}

// The hint reaches ROBIN: the repair prompt carries the failure, hint
// and all, verbatim.
func TestHintReachesRobin(t *testing.T) {
	fstring := `{"source": "def display_yourself(self):\n    return f\"I am {self.name}\"\n", "tests": []}`
	b := &brain{plans: []string{goodPlan}, methods: []string{fstring, goodMethod}}
	m, db := testMachine(t, b, &Options{MaxAttempts: 2})
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: genesis(t, db), Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Complete || len(c.Failures) != 1 {
		t.Fatalf("ended %s with failures %+v; want COMPLETE after one failure", c.State, c.Failures)
	}
	f := c.Failures[0].Message
	if !strings.Contains(f, "hint (line 2): f-strings do not exist") {
		t.Errorf("failure %q has no f-string hint", f)
	}
	second, _ := c.step("synthesize", 2, 0)
	if !strings.Contains(second.Prompt[0].Content, f) {
		t.Error("the repair prompt does not carry the failure and its hint verbatim")
	}
}
