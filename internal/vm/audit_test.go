package vm

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// call is the AuditOptions of a send of foo with args positional
// arguments and the given keywords.
func call(args int, kwargs ...string) AuditOptions {
	return AuditOptions{Selector: "foo", Args: args, Kwargs: kwargs}
}

// auditViolations runs Audit and returns the violations as strings, nil
// when it accepts the source.
func auditViolations(t testing.TB, source string, opts AuditOptions) []string {
	t.Helper()
	err := Audit(source, opts)
	if err == nil {
		return nil
	}
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %T %v, want *AuditError", err, err)
	}
	if len(ae.Violations) == 0 {
		t.Fatalf("got an AuditError with no violations")
	}
	var out []string
	for _, v := range ae.Violations {
		out = append(out, v.String())
	}
	return out
}

func TestAudit(t *testing.T) {
	cases := []struct {
		name   string
		source string
		opts   AuditOptions
		// want holds one substring per violation, in order; nil means
		// the source passes.
		want []string
	}{
		{
			name:   "good method",
			source: "def foo(self, a, b=1):\n    \"\"\"Adds b to a.\"\"\"\n    total = a + b\n    return total + len(str(self))\n",
			opts:   call(1),
		},
		{
			name: "built-ins method code has",
			source: "def foo(self):\n    c = clone(self, name='copy')\n    set_slot(c, 'parent*', self)\n" +
				"    n = new([self], x=1)\n    s = send(c, 'size')\n" +
				"    return [oid(n), slots(n), parents(n), has_slot(n, 'x'), json.encode(s), math.sqrt(4), time.now(), method('def m(self): pass'), clone_object(n)]\n",
			opts: call(0),
		},
		{
			name:   "universals and dialect",
			source: "def foo(self, n):\n    seen = set()\n    while n > 0:\n        seen.add(n)\n        n -= 1\n    return sorted(seen) + list(range(3)) + [getattr(self, 'x', None), hasattr(self, 'y'), type(n), repr(n), dir(self)]\n",
			opts:   call(1),
		},
		{
			name:   "docstring allowed",
			source: "\"\"\"Answers forty-two.\"\"\"\ndef foo(self):\n    return 42\n",
			opts:   call(0),
		},
		{
			name:   "nested def and lambda",
			source: "def foo(self, xs):\n    def double(x):\n        return x * 2\n    inc = lambda y, k=1: double(y) + k\n    return [inc(x) for x in xs]\n",
			opts:   call(1),
		},
		{
			name:   "locals defined later in the function",
			source: "def foo(self):\n    def total():\n        return base + extra\n    base = 1\n    for i in range(3):\n        last = i\n    extra = last\n    return total()\n",
			opts:   call(0),
		},
		{
			name:   "comprehension variables",
			source: "def foo(self):\n    pairs = [(x, y) for x in range(3) for y in range(x) if x != y]\n    return {k: v for k, v in pairs}, [z for z in [w * 2 for w in range(2)]]\n",
			opts:   call(0),
		},
		{
			name:   "recursion by name",
			source: "def foo(self, n):\n    return foo(self, n - 1) + 1 if n else 0\n",
			opts:   call(1),
		},
		{
			name:   "syntax error",
			source: "def foo(self):\n    x = 1\n    y = = 2\n    return x\n",
			opts:   call(0),
			want:   []string{"line 3, col 9: "},
		},
		{
			name:   "bad indentation",
			source: "def foo(self):\n    x = 1\n      return x\n",
			opts:   call(0),
			want:   []string{"line 3, col "},
		},
		{
			name:   "no function",
			source: "",
			opts:   call(0),
			want:   []string{"defines no function (want def foo(self, ...))"},
		},
		{
			name:   "two defs",
			source: "def foo(self):\n    return 1\ndef helper(x):\n    return x\n",
			opts:   call(0),
			want:   []string{"line 3: a second function, helper: the source must define exactly one function, foo"},
		},
		{
			name:   "two defs, the one named like the selector second",
			source: "def helper(x):\n    return x\ndef foo(self):\n    return 1\n",
			opts:   call(0),
			want:   []string{"line 1: a second function, helper"},
		},
		{
			name:   "wrong name",
			source: "def bar(self):\n    return 1\n",
			opts:   call(0),
			want:   []string{"line 1, col 5: the function is named bar; it must be named like its selector, foo"},
		},
		{
			name:   "missing self",
			source: "def foo():\n    return 1\n",
			opts:   call(0),
			want:   []string{"line 1: the first parameter must be self"},
		},
		{
			name:   "self not first",
			source: "def foo(a, self):\n    return a\n",
			opts:   call(1),
			want:   []string{"line 1: the first parameter must be self"},
		},
		{
			name:   "self with a default",
			source: "def foo(self=None):\n    return 1\n",
			opts:   call(0),
			want:   []string{"line 1: the first parameter must be self"},
		},
		{
			name:   "top-level statements",
			source: "def foo(self):\n    return 1\nx = foo(None)\nif x:\n    pass\nfor i in range(2):\n    print(i)\nprint('hi')\n",
			opts:   call(0),
			want: []string{
				"line 3: an assignment at top level",
				"line 4: an if statement at top level",
				"line 6: a for loop at top level",
				"line 8: an expression at top level",
			},
		},
		{
			name:   "a docstring only first",
			source: "def foo(self):\n    return 1\n\"\"\"Not a docstring here.\"\"\"\n",
			opts:   call(0),
			want:   []string{"line 3: an expression at top level"},
		},
		{
			name:   "top-level names do not define the function's",
			source: "limit = 3\ndef foo(self):\n    return limit\n",
			opts:   call(0),
			want:   []string{"line 1: an assignment at top level", "line 3, col 12: undefined: limit"},
		},
		{
			name:   "load at top level",
			source: "load('os.star', 'system')\ndef foo(self):\n    return 1\n",
			opts:   call(0),
			want:   []string{"line 1, col 1: load is not available to method code"},
		},
		{
			name:   "load in the function",
			source: "def foo(self):\n    load('os.star', 'system')\n    return system('ls')\n",
			opts:   call(0),
			want:   []string{"line 2, col 5: load is not available to method code"},
		},
		{
			name:   "undefined names",
			source: "def foo(self, cmd):\n    os.system(cmd)\n    f = open('/etc/passwd')\n    eval(cmd)\n    return __import__('os')\n",
			opts:   call(1),
			want: []string{
				"line 2, col 5: undefined: os",
				"line 3, col 9: undefined: open",
				"line 4, col 5: undefined: eval",
				"line 5, col 12: undefined: __import__",
			},
		},
		{
			name:   "undefined in a nested def, a lambda and a comprehension",
			source: "def foo(self):\n    def g():\n        return exec\n    h = lambda: globals()\n    return [subprocess for _ in range(1)]\n",
			opts:   call(0),
			want:   []string{"line 3, col 16: undefined: exec", "line 4, col 17: undefined: globals", "line 5, col 13: undefined: subprocess"},
		},
		{
			name:   "comprehension variables do not leak",
			source: "def foo(self):\n    xs = [x for x in range(3)]\n    return x\n",
			opts:   call(0),
			want:   []string{"line 3, col 12: undefined: x"},
		},
		{
			name: "several violations together",
			source: "import_me = 1\n" +
				"def bar(this, a=len('x')):\n" +
				"    return open(a)\n" +
				"def baz(self):\n" +
				"    pass\n",
			opts: call(2, "color"),
			want: []string{
				"line 1: an assignment at top level",
				"line 2: the first parameter must be self",
				"line 2: bar takes 1 positional argument after self, but the call passes 2",
				"line 2: the call passes keyword argument color, which bar does not accept",
				"line 2, col 5: the function is named bar",
				"line 2, col 17: the default of parameter a must be a constant",
				"line 3, col 12: undefined: open",
				"line 4: a second function, baz",
			},
		},
		{
			name:   "too few parameters for the call",
			source: "def foo(self, a):\n    return a\n",
			opts:   call(2),
			want:   []string{"line 1: foo takes 1 positional argument after self, but the call passes 2"},
		},
		{
			name:   "required parameter not filled",
			source: "def foo(self, a, b, c=0):\n    return a + b + c\n",
			opts:   call(1),
			want:   []string{"line 1, col 18: parameter b is required, but the call (1 positional argument after self) does not fill it"},
		},
		{
			name:   "required parameter filled by keyword",
			source: "def foo(self, a, b):\n    return a + b\n",
			opts:   call(1, "b"),
		},
		{
			name:   "unknown keyword argument",
			source: "def foo(self, a):\n    return a\n",
			opts:   call(1, "color"),
			want:   []string{"line 1: the call passes keyword argument color, which foo does not accept (add a parameter color, or **kwargs)"},
		},
		{
			name:   "argument passed both ways",
			source: "def foo(self, a):\n    return a\n",
			opts:   call(1, "a"),
			want:   []string{"line 1, col 15: the call passes a both by position and by keyword"},
		},
		{
			name:   "self by keyword",
			source: "def foo(self, **kw):\n    return kw\n",
			opts:   call(0, "self"),
			want:   []string{"line 1: the call passes keyword argument self, which is the receiver's parameter"},
		},
		{
			name:   "*args accepts positional arguments",
			source: "def foo(self, first, *rest):\n    return [first] + list(rest)\n",
			opts:   call(4),
		},
		{
			name:   "**kwargs accepts keyword arguments",
			source: "def foo(self, **options):\n    return options\n",
			opts:   call(0, "color", "size"),
		},
		{
			name:   "keyword-only parameters",
			source: "def foo(self, a, *, k, opt=1):\n    return a + k + opt\n",
			opts:   call(1, "k"),
		},
		{
			name:   "required keyword-only parameter not passed",
			source: "def foo(self, *args, k):\n    return k\n",
			opts:   call(2),
			want:   []string{"line 1, col 22: keyword-only parameter k is required"},
		},
		{
			name:   "unknown arity skips the positional checks",
			source: "def foo(self, a, b):\n    return a + b\n",
			opts:   call(-1),
		},
		{
			name:   "unknown arity still checks keywords",
			source: "def foo(self, a, b):\n    return a + b\n",
			opts:   call(-1, "c"),
			want:   []string{"line 1: the call passes keyword argument c"},
		},
		{
			name:   "non-constant default",
			source: "def foo(self, a=[], b=len('x'), c=self):\n    return a\n",
			opts:   call(0),
			want: []string{
				"line 1, col 23: the default of parameter b must be a constant",
				"line 1, col 35: the default of parameter c must be a constant",
				"line 1, col 35: undefined: self",
			},
		},
		{
			name:   "constant defaults",
			source: "def foo(self, a=None, b=-1, c=(1, 'x'), d={'k': [1.5, True]}, e=+2):\n    return a\n",
			opts:   call(0),
		},
		{
			name:   "a constant default the compiler refuses",
			source: "def foo(self, a={[]: 1}):\n    return a\n",
			opts:   call(0),
			want:   []string{"line 1, col 20: the function cannot be compiled: unhashable type: list"},
		},
		{
			name:   "too many bytes",
			source: "def foo(self):\n    return 'a long string'\n",
			opts:   AuditOptions{Selector: "foo", MaxBytes: 20},
			want:   []string{"the source is 42 bytes; at most 20 are allowed"},
		},
		{
			name:   "too many lines",
			source: "def foo(self):\n    x = 1\n    return x",
			opts:   AuditOptions{Selector: "foo", MaxLines: 2},
			want:   []string{"the source is 3 lines long; at most 2 are allowed"},
		},
		{
			name:   "default line limit",
			source: "def foo(self):\n    x = 0\n" + strings.Repeat("    x += 1\n", DefaultAuditMaxLines) + "    return x\n",
			opts:   call(0),
			want:   []string{"the source is 403 lines long; at most 400 are allowed"},
		},
		{
			name:   "default byte limit",
			source: "def foo(self):\n    return '" + strings.Repeat("x", DefaultAuditMaxBytes) + "'\n",
			opts:   call(0),
			want:   []string{"bytes; at most 16384 are allowed"},
		},
		{
			name:   "selector not an identifier",
			source: "def foo(self):\n    return 1\n",
			opts:   AuditOptions{Selector: "for"},
			want:   []string{`the selector "for" is not a Starlark identifier`, "line 1, col 5: the function is named foo"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := auditViolations(t, tc.source, tc.opts)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, want := range tc.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("violation %d: got %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
}

// TestAuditBuiltinsAreTheVMs: every built-in the VM gives method code
// passes the audit, and a name only Eval binds does not.
func TestAuditBuiltinsAreTheVMs(t *testing.T) {
	names := make([]string, 0, len(builtins))
	for name := range builtins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		source := "def foo(self):\n    return " + name + "\n"
		if err := Audit(source, call(0)); err != nil {
			t.Errorf("built-in %s: got %v, want it accepted", name, err)
		}
	}
	if err := Audit("def foo(self):\n    return genesis\n", call(0)); err == nil {
		t.Errorf("a root name: got nil, want undefined")
	}
}

func TestAuditErrorMessage(t *testing.T) {
	err := Audit("x = 1\ndef foo(self):\n    return open(x)\n", call(0))
	want := "guardian: method foo refused:\n" +
		"  line 1: an assignment at top level: only a docstring and one def may stand there (move the code into the function)\n" +
		"  line 3, col 12: undefined: open\n" +
		"  line 3, col 17: undefined: x"
	if err == nil {
		t.Fatal("got nil, want an AuditError")
	}
	if diff := cmp.Diff(err.Error(), want); diff != "" {
		t.Errorf("message (-got +want):\n%s", diff)
	}
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %T, want *AuditError", err)
	}
	wantViolations := []Violation{
		{Line: 1, Msg: "an assignment at top level: only a docstring and one def may stand there (move the code into the function)"},
		{Line: 3, Col: 12, Msg: "undefined: open"},
		{Line: 3, Col: 17, Msg: "undefined: x"},
	}
	if diff := cmp.Diff(ae.Violations, wantViolations); diff != "" {
		t.Errorf("violations (-got +want):\n%s", diff)
	}
}

func TestViolationString(t *testing.T) {
	cases := []struct {
		name string
		v    Violation
		want string
	}{
		{"whole source", Violation{Msg: "too big"}, "too big"},
		{"line", Violation{Line: 3, Msg: "m"}, "line 3: m"},
		{"line and column", Violation{Line: 3, Col: 7, Msg: "m"}, "line 3, col 7: m"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuditAgreesWithCheckMethod: what Audit accepts, CheckMethod and
// the compiler accept; what CheckMethod refuses, Audit refuses.
func TestAuditAgreesWithCheckMethod(t *testing.T) {
	sources := []string{
		"def foo(self):\n    return 1",
		"def foo(self):\n    return (",
		"load('x.star', 'y')\ndef foo(self):\n    return 1",
		"def foo(self):\n    return 1\ndef foo2(self):\n    return 2",
		"def foo(x):\n    return 1",
		"x = 1\ndef foo(self):\n    return x",
		"def foo(self):\n    return open('/etc/passwd')",
		"def foo(self):\n    return " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000),
		"",
		"def foo(self, a=[1, {'k': (2,)}]):\n    return a",
		"def foo(self, a=f()):\n    return a",
	}
	for _, source := range sources {
		_, checkErr := CheckMethod(source, "foo")
		auditErr := Audit(source, call(-1))
		if checkErr != nil && auditErr == nil {
			t.Errorf("%q: CheckMethod refused it (%v), Audit accepted it", source, checkErr)
		}
		if auditErr == nil {
			if _, err := (&VM{}).compile(source, "foo"); err != nil {
				t.Errorf("%q: Audit accepted it, compile refused it: %v", source, err)
			}
		}
	}
}

func FuzzAudit(f *testing.F) {
	seeds := []string{
		"def foo(self, a, b=1):\n    \"\"\"Doc.\"\"\"\n    return [x for x in range(a)] + [b]\n",
		"def foo(self, *args, k, **kw):\n    return lambda y: open(y)\n",
		"load('x', 'y')\nx = 1\nif x:\n    pass\ndef foo(a=len(1)):\n    load('a', 'b')\n",
		"def foo(self, a={[]: 1}):\n  return a\n",
		"def foo(self):\n    while True:\n        break\n    return set([1])\n",
		"def foo(self):\n\treturn (\n",
	}
	for _, s := range seeds {
		f.Add(s, "foo", int8(1), "a k")
	}
	f.Fuzz(func(t *testing.T, source, selector string, args int8, kwargs string) {
		opts := AuditOptions{Selector: selector, Args: int(args), Kwargs: strings.Fields(kwargs)}
		err := Audit(source, opts)
		if err == nil {
			if _, cerr := (&VM{}).compile(source, selector); cerr != nil {
				t.Fatalf("Audit accepted source compile refuses: %v", cerr)
			}
			return
		}
		var ae *AuditError
		if !errors.As(err, &ae) {
			t.Fatalf("got %T %v, want *AuditError", err, err)
		}
		if len(ae.Violations) == 0 {
			t.Fatal("an AuditError with no violations")
		}
		for _, v := range ae.Violations {
			if v.Msg == "" || v.Line < 0 || v.Col < 0 {
				t.Fatalf("malformed violation %+v", v)
			}
		}
	})
}

// Source over the size limit is refused for its size alone, without a
// parse: 256 KiB of one-statement lines used to give a violation per
// line, a 16 MB error that a cycle then recorded and quoted to its model.
func TestAuditHostileHugeSourceNotParsed(t *testing.T) {
	src := strings.Repeat("x\n", 128<<10)
	err := Audit(src, AuditOptions{Selector: "foo", Args: 0})
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *AuditError", err)
	}
	if len(ae.Violations) != 2 || !strings.Contains(ae.Violations[0].Msg, "bytes") || !strings.Contains(ae.Violations[1].Msg, "lines") {
		t.Errorf("violations %v, want the size and the line count only", ae.Violations)
	}
}

// Within the size limit, a flood of violations (x;x;x... on one line) is
// listed up to maxViolations and the rest counted.
func TestAuditHostileViolationFloodCapped(t *testing.T) {
	src := "def foo(self):\n    return 1\n" + strings.Repeat("1;", 7000) + "\n"
	err := Audit(src, AuditOptions{Selector: "foo", Args: 0})
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *AuditError", err)
	}
	if len(ae.Violations) != maxViolations+1 {
		t.Fatalf("%d violations listed, want %d", len(ae.Violations), maxViolations+1)
	}
	if last := ae.Violations[maxViolations].String(); last != "… and 6950 more violations" {
		t.Errorf("last violation %q", last)
	}
	if n := len(err.Error()); n > 10<<10 {
		t.Errorf("error of %d bytes", n)
	}
}

func TestAuditHostileIsSelector(t *testing.T) {
	for name, want := range map[string]bool{"foo": true, "_x": true, "None": true, "if": false, "lambda": false, "a b": false,
		"a # c": false, "a\n": false, "": false, "1a": false, "parent*": false, "x.y": false} {
		if got := IsSelector(name); got != want {
			t.Errorf("IsSelector(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAuditForbid(t *testing.T) {
	forbid := map[string]string{"method": "no code from code"}
	src := "def f(self, x):\n    m = method(x)\n    return m\n"
	err := Audit(src, AuditOptions{Selector: "f", Args: 1, Forbid: forbid})
	var ae *AuditError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "method may not be used here: no code from code") {
		t.Fatalf("Audit with method(): %v", err)
	}
	// A parameter or local of the same name is the code's own.
	own := "def f(self, method):\n    return method + 1\n"
	if err := Audit(own, AuditOptions{Selector: "f", Args: 1, Forbid: forbid}); err != nil {
		t.Errorf("a parameter named method: %v", err)
	}
	if err := Audit(src, AuditOptions{Selector: "f", Args: 1}); err != nil {
		t.Errorf("without Forbid: %v", err)
	}
}
