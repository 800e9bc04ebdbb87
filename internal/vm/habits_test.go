package vm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
	"batos/internal/image/imagetest"
)

// TestHintMethods: each Python habit in method source, refused by the
// audit and by CheckMethod, gets the hint that names it and says what to
// write; a correct method gets none, whatever its error.
func TestHintMethods(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings of the hint; none for a correct method
	}{
		{"f-string", "def f(self, x):\n    return f\"hi {x}\"\n", []string{`(line 2): f-strings do not exist here: write "total: %s" % total`}},
		{"rf-string", "def f(self, x):\n    return 'a' + rf'\\d{x}'\n", []string{"f-strings do not exist"}},
		{"import", "import math\ndef f(self, x):\n    return math.sqrt(x)\n", []string{"(line 1): import does not exist", "math.sqrt(x)"}},
		{"from import", "def f(self, x):\n    from math import sqrt\n    return sqrt(x)\n", []string{"(line 2): import does not exist"}},
		{"class", "class Account:\n    pass\ndef f(self, x):\n    return x\n", []string{"(line 1): class does not exist", "new(name = ...) or clone(obj)"}},
		{"try/except", "def f(self, x):\n    try:\n        return 1 / x\n    except ZeroDivisionError:\n        return 0\n", []string{"(lines 2, 4): try/except does not exist", `fail("why")`}},
		{"raise", "def f(self, x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n", []string{"(line 3): raise does not exist", `fail("why")`}},
		{"with", "def f(self, x):\n    with open(x) as g:\n        return g\n", []string{"with does not exist"}},
		{"is", "def f(self, x):\n    return x is None\n", []string{"is does not exist: compare with == and !="}},
		{"is not", "def f(self, x):\n    return x is not None\n", []string{"x != None"}},
		{"del", "def f(self, x):\n    del x[0]\n    return x\n", []string{"del does not exist", "xs.pop(i)"}},
		{"global", "def f(self, x):\n    global total\n    return x\n", []string{"global does not exist"}},
		{"nonlocal", "def f(self, x):\n    n = 0\n    def g():\n        nonlocal n\n    return n\n", []string{"nonlocal does not exist"}},
		{"yield", "def f(self, x):\n    for i in x:\n        yield i\n", []string{"yield does not exist"}},
		{"power", "def f(self, x):\n    return x ** 2\n", []string{"** does not exist", "math.pow"}},
		{"walrus", "def f(self, x):\n    if (n := len(x)) > 1:\n        return n\n", []string{":= does not exist"}},
		{"assert", "def f(self, x):\n    assert x > 0\n    return x\n", []string{"(line 2): assert does not exist in method code"}},
		{"assert call", "def f(self, x):\n    assert(x > 0)\n    return x\n", []string{"hint: assert does not exist in method code"}},
		{"tabs and spaces", "def f(self, x):\n\tif x:\n        \treturn 1\n    return 2\n", []string{"indent with spaces only"}},
		{"sum", "def f(self, x):\n    return sum(x)\n", []string{"sum does not exist: add in a loop"}},
		{"isinstance", "def f(self, x):\n    return isinstance(x, int)\n", []string{`type(x) == "int"`}},
		{"map", "def f(self, x):\n    return list(map(str, x))\n", []string{"[f(x) for x in xs]"}},
		{"round", "def f(self, x):\n    return round(x)\n", []string{"math.round(x)"}},
		{"exception", "def f(self, x):\n    return ValueError('no')\n", []string{"there are no exceptions (ValueError)"}},
		{"json literals", "def f(self, x):\n    return null\n", []string{"write None, True and False"}},
		{"no self", "def f(x, y=1):\n    return x\n", []string{"(line 1): self, the object that received the message, comes first in every method: def f(self, x, y=1):"}},
		{"this for self", "def f(this, x):\n    return this\n", []string{"every method: def f(self, x):"}},
		{"several habits at once", "def f(self, x):\n    try:\n        return f'{x}'\n    except:\n        raise\n", []string{"f-strings", "try/except", "raise"}},

		{"correct", "def f(self, x):\n    \"\"\"Doc with f'x' and try: in it.\"\"\"\n    # is, import, class in a comment\n    return \"%s is %d\" % (x, 2 * 1 if False else 1)\n", nil},
		{"while", "def f(self, x):\n    while x > 0:\n        x -= 1\n    return x\n", nil},
		{"lambda and sorted", "def f(self, x):\n    return sorted(x, key=lambda p: -p, reverse=True)\n", nil},
		{"kwargs", "def f(self, x, **kw):\n    return dict(**kw)\n", nil},
		{"tabs only", "def f(self, x):\n\tif x:\n\t\treturn 1\n\treturn 2\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auditErr := Audit(tt.src, AuditOptions{Selector: "f", Args: 1})
			_, checkErr := CheckMethod(tt.src, "f")
			if tt.want == nil {
				if auditErr != nil || checkErr != nil {
					t.Fatalf("a correct method refused: %v; %v", auditErr, checkErr)
				}
				if h := Hint(tt.src, errors.New("vm: floating-point division by zero")); h != "" {
					t.Errorf("got hint %q for a correct method, want none", h)
				}
				return
			}
			if auditErr == nil {
				t.Fatal("the audit accepted it")
			}
			for _, err := range []error{auditErr, checkErr} {
				if err == nil {
					continue // CheckMethod does not resolve arity
				}
				h := Hint(tt.src, err)
				for _, w := range tt.want {
					if !strings.Contains(h, w) {
						t.Errorf("error %q: got hint %q, want it to contain %q", err, h, w)
					}
				}
				if strings.Count(h, "\n")+1 != strings.Count(h, "hint") {
					t.Errorf("hint %q: want one hint a line", h)
				}
			}
		})
	}
}

// Two functions: the audit says to nest helpers already, CheckMethod
// does not, and then the hint does.
func TestHintSecondFunction(t *testing.T) {
	src := "def helper(y):\n    return y\ndef f(self, x):\n    return helper(x)\n"
	if h := Hint(src, Audit(src, AuditOptions{Selector: "f", Args: 1})); strings.Contains(h, "define helper inside") {
		t.Errorf("audit error: got hint %q, which repeats the audit's own advice", h)
	}
	_, err := CheckMethod(src, "f")
	if h := Hint(src, err); !strings.Contains(h, "(line 1): only one function may stand at top level: define helper inside f, indented under its def") {
		t.Errorf("CheckMethod error %v: got hint %q, want the helpers nested", err, h)
	}
}

// TestHintRuntime: errors methods make at run time, through the VM.
func TestHintRuntime(t *testing.T) {
	tests := []struct{ code, want string }{
		{"xs = [3, 1]\nxs.sort()", "xs = sorted(xs)"},
		{"{}.has_key(1)", "write key in d"},
		{"'abc'.contains('a')", `write "a" in s`},
		{"[1].length", "len(x)"},
		{"'total: ' + 3", `"total: " + str(n)`},
		{"[c for c in 'abc']", "s.elems()"},
		{"sorted([2, 1], cmp=None)", "no cmp"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			_, err := habitEval(t, tt.code)
			if err == nil {
				t.Fatal("ran without error")
			}
			if h := Hint(tt.code, err); !strings.Contains(h, tt.want) {
				t.Errorf("error %q: got hint %q, want it to contain %q", err, h, tt.want)
			}
		})
	}
}

// TestTestHint: tests written as Python writes asserts, as statements,
// or answering None get a hint; a test that is just false gets none.
func TestTestHint(t *testing.T) {
	tests := []struct{ name, expr, want string }{
		{"assert", "assert len('ab') == 2", "write len('ab') == 2, without assert"},
		{"assert call", "assert(len('ab') == 2)", "write (len('ab') == 2), without assert"},
		{"statements", "x = len('ab')\nx == 2", "a test is one expression"},
		{"assignment", "genesis.name = 'genesis'", "write genesis.name == 'genesis'"},
		{"None", "[].append(1)", "the test answered None"},
		{"f-string", "f'{1}' == '1'", "f-strings do not exist"},
		{"is", "genesis.name is not None", "is does not exist"},
		{"sum", "sum([1, 2]) == 3", "sum does not exist"},
		{"false", "len('ab') == 3", ""},
		{"not a bool", "len('ab')", ""},
		{"true", "len('ab') == 2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := habitEval(t, tt.expr)
			h := TestHint(tt.expr, res.Value, err)
			switch {
			case tt.want == "" && h != "":
				t.Errorf("got hint %q, want none", h)
			case !strings.Contains(h, tt.want):
				t.Errorf("answer %v, error %v: got hint %q, want it to contain %q", res.Value, err, h, tt.want)
			}
		})
	}
}

// TestHintsTellTheTruth: what the hints offer in place of a habit runs in
// the VM, and what they say does not exist does not.
func TestHintsTellTheTruth(t *testing.T) {
	works := []string{
		`"total: %s" % 3 == "total: 3"`,
		`"%s of %s" % (1, 2) == "1 of 2"`,
		`"total: " + str(3) == "total: 3"`,
		`"total: %d" % 3 == "total: 3"`,
		`json.encode([1]) == "[1]" and math.sqrt(4) == 2.0 and time.now() > 0`,
		`new(name = "x").name == "x"`,
		`clone(genesis) != None`,
		`{1: 2}.pop(1) == 2 and [1, 2].pop(0) == 1 and [1, 2].remove(1) == None`,
		`math.pow(2, 3) == 8.0`,
		`int(math.round(2.5)) == 3 and math.round(2.4) == 2.0`,
		`sorted([1, 3, 2], key = lambda p: -p) == [3, 2, 1] and sorted([1, 2], reverse = True) == [2, 1]`,
		`type(1) == "int" and type("") == "string" and type([]) == "list" and type({}) == "dict" and type(1.0) == "float" and type(True) == "bool" and type(None) == "NoneType"`,
		`[str(x) for x in [1, 2]] == ["1", "2"] and [x for x in [0, 1] if x > 0] == [1]`,
		`[c for c in "ab".elems()] == ["a", "b"] and "a b".split() == ["a", "b"]`,
		`"a" in "cab" and 1 in {1: 2} and len([1]) == 1`,
		`[i for i in range(5) if i < 2] == [0, 1]`,
	}
	for _, code := range works {
		if res, err := habitEval(t, code); err != nil || res.Value != image.Bool(true) {
			t.Errorf("%s: got %v, %v; want True", code, res.Repr, err)
		}
	}
	// fail stops with an error that says why; loops break; while runs.
	_, err := habitEval(t, "def g():\n    fail(\"not enough money\")\n\ng()")
	if err == nil || !strings.Contains(err.Error(), "not enough money") {
		t.Errorf("fail: got %v", err)
	}
	if res, err := habitEval(t, "n = 0\nfor i in range(10):\n    n = i\n    if i == 3:\n        break\nwhile n < 5:\n    n += 1\nr = n\n"); err != nil || res.Globals["r"] != image.Int(5) {
		t.Errorf("for, break and while: got %v, %v", res.Globals, err)
	}
	for name := range undefinedHints {
		if isPredeclared(name) || starlark.Universe.Has(name) {
			t.Errorf("%s has a hint for being undefined, but method code has it", name)
		}
	}
	for _, name := range exceptionNames {
		if isPredeclared(name) || starlark.Universe.Has(name) {
			t.Errorf("exception %s is said not to exist, but method code has it", name)
		}
	}
}

// The while hint is given only in a dialect without while.
func TestHintWhileDependsOnTheDialect(t *testing.T) {
	src := "def f(self, x):\n    while x > 0:\n        x -= 1\n    return x\n"
	for _, tt := range []struct {
		dialect *syntax.FileOptions
		want    bool
	}{{fileOptions, false}, {&syntax.FileOptions{}, true}} {
		var hs hints
		hs.syntax(src, tt.dialect, false)
		if got := strings.Contains(hs.String(), "while loops do not exist"); got != tt.want {
			t.Errorf("dialect %+v: got hint %q, want the while hint %v", tt.dialect, hs.String(), tt.want)
		}
	}
}

// TestEvalTest: a comparison that answers False reports both sides, each
// evaluated once; the verdict, and errors, are the expression's own.
func TestEvalTest(t *testing.T) {
	const setup = "genesis.count = 0\ngenesis.bump = method(\"def bump(self):\\n    self.count += 1\\n    return self.count\\n\")\n"
	tests := []struct {
		name, expr string
		value      string // the test's repr
		cmp        *Comparison
		count      int // genesis.count after the test: each side ran once
		err        string
	}{
		{"equal", "genesis.bump() == 5", "False",
			&Comparison{Op: "==", Left: Side{Source: "genesis.bump()", Repr: "1", Call: true}, Right: Side{Source: "5", Repr: "5", Constant: true}}, 1, ""},
		{"holds", "genesis.bump() == 1", "True", nil, 1, ""},
		{"expected first", "[1, 2] == [genesis.bump()]", "False",
			&Comparison{Op: "==", Left: Side{Source: "[1, 2]", Repr: "[1, 2]", Constant: true}, Right: Side{Source: "[genesis.bump()]", Repr: "[1]"}}, 1, ""},
		{"not in", "'x' not in 'a' + 'x'", "False",
			&Comparison{Op: "not in", Left: Side{Source: "'x'", Repr: `"x"`, Constant: true}, Right: Side{Source: "'a' + 'x'", Repr: `"ax"`}}, 0, ""},
		{"and: the false part", "genesis.bump() == 1 and (genesis.count > 1)", "False",
			&Comparison{Op: ">", Left: Side{Source: "genesis.count", Repr: "1"}, Right: Side{Source: "1", Repr: "1", Constant: true}}, 1, ""},
		{"and: short cut", "genesis.bump() == 2 and genesis.bump() == 2", "False",
			&Comparison{Op: "==", Left: Side{Source: "genesis.bump()", Repr: "1", Call: true}, Right: Side{Source: "2", Repr: "2", Constant: true}}, 1, ""},
		{"not a comparison", "genesis.bump() > 0 or False", "True", nil, 1, ""},
		{"long side", "'ab' * 200 == 'x'", "False",
			&Comparison{Op: "==", Left: Side{Source: "'ab' * 200", Repr: `"` + strings.Repeat("ab", 150) + `"… (400 bytes in all)`}, Right: Side{Source: "'x'", Repr: `"x"`, Constant: true}}, 0, ""},
		{"error in a side", "genesis.bump() == 1 // 0", "", nil, 0, "<input>:1:21: in <expr>"},
		{"error comparing", "genesis.bump() < 'a'", "", nil, 0, "<input>:1:16: in <expr>"},
	}
	db := imagetest.Open(t, nil)
	m := New(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.Update(context.Background(), func(tx *image.Tx) error {
				g := habitGlobals(t, tx)
				if _, err := m.Eval(context.Background(), tx, setup, g); err != nil {
					t.Fatal(err)
				}
				res, cmp, err := m.EvalTest(context.Background(), tx, tt.expr, g)
				if tt.err != "" {
					if err == nil || !strings.Contains(err.Error(), tt.err) {
						t.Errorf("got %v, want an error at %q", err, tt.err)
					}
					// As the expression whole reports it.
					if _, whole := m.Eval(context.Background(), tx, tt.expr, g); whole == nil || whole.Error() != err.Error() {
						t.Errorf("got error %v, want the expression's own %v", err, whole)
					}
					return errRolledBack
				}
				if err != nil {
					t.Fatal(err)
				}
				if res.Repr != tt.value {
					t.Errorf("got %s, want %s", res.Repr, tt.value)
				}
				if (cmp == nil) != (tt.cmp == nil) || cmp != nil && *cmp != *tt.cmp {
					t.Errorf("got comparison %+v, want %+v", cmp, tt.cmp)
				}
				count, err := m.Eval(context.Background(), tx, "genesis.count", g)
				if err != nil || count.Value != image.Int(tt.count) {
					t.Errorf("genesis.count is %v (%v), want %d: each side runs once", count.Repr, err, tt.count)
				}
				return errRolledBack
			})
			if !errors.Is(err, errRolledBack) {
				t.Fatal(err)
			}
		})
	}
}

var errRolledBack = errors.New("test: rolled back")

// habitEval runs code through Eval in an Update it rolls back.
func habitEval(t *testing.T, code string) (Result, error) {
	t.Helper()
	db := imagetest.Open(t, nil)
	var res Result
	var evalErr error
	err := db.Update(context.Background(), func(tx *image.Tx) error {
		res, evalErr = New(nil).Eval(context.Background(), tx, code, habitGlobals(t, tx))
		return errRolledBack
	})
	if !errors.Is(err, errRolledBack) {
		t.Fatal(err)
	}
	return res, evalErr
}

// habitGlobals binds the root's names.
func habitGlobals(t *testing.T, tx *image.Tx) map[string]image.Value {
	t.Helper()
	root, err := tx.Root()
	if err != nil {
		t.Fatal(err)
	}
	g := map[string]image.Value{}
	for _, s := range root.Slots() {
		if r, ok := s.Value.(image.Ref); ok {
			g[s.Name] = r
		}
	}
	return g
}

// FuzzHint: hints read source a model wrote, which may be anything; they
// never panic, and come one a line.
func FuzzHint(f *testing.F) {
	for _, s := range []string{"def f(self):\n    return f'{x}'\n", "x = '''a\n", "assert x", "\t \tdef", `"\`, "a ** b := c", "def f(x):\n  pass\ndef g(y): pass\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, h := range []string{
			Hint(src, errors.New("the first parameter must be self; undefined: sum; list has no .sort field")),
			TestHint(src, image.None, nil),
			TestHint(src, nil, errors.New("undefined: isinstance")),
		} {
			if h != "" && strings.Count(h, "\nhint") != strings.Count(h, "\n") {
				t.Errorf("hint %q: want one hint a line", h)
			}
		}
	})
}

// A side too long to show whole is cut, and says so.
func TestEvalTestLongSide(t *testing.T) {
	db := imagetest.Open(t, nil)
	err := db.Update(context.Background(), func(tx *image.Tx) error {
		_, cmp, err := New(nil).EvalTest(context.Background(), tx, "list(range(1000)) == []", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r := cmp.Left.Repr; !strings.HasPrefix(r, "[0, 1, 2, ") || !strings.HasSuffix(r, "…") || len(r) > maxSideRepr+len("…") {
			t.Errorf("got left side %q, want the start of the list, cut", r)
		}
		return errRolledBack
	})
	if !errors.Is(err, errRolledBack) {
		t.Fatal(err)
	}
}
