package vm_test

import (
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// replOptions are the VM's dialect of Eval input.
var replOptions = &syntax.FileOptions{While: true, Recursion: true, Set: true, TopLevelControl: true, GlobalReassign: true}

// plain runs code as plain Starlark would: an expression's repr, or after
// statements the repr of res; or the error's backtrace.
func plain(t *testing.T, code string) string {
	t.Helper()
	thread := &starlark.Thread{Name: "plain", Print: func(*starlark.Thread, string) {}}
	env := starlark.StringDict{"json": json.Module}
	if expr, err := replOptions.ParseExpr("<input>", code, 0); err == nil {
		v, err := starlark.EvalExprOptions(replOptions, thread, expr, env)
		return outcome(t, v, err)
	}
	f, err := replOptions.Parse("<input>", code, 0)
	if err != nil {
		t.Fatalf("parse %q: %v", code, err)
	}
	if err := starlark.ExecREPLChunk(f, thread, env); err != nil {
		return outcome(t, nil, err)
	}
	return env["res"].String()
}

func outcome(t *testing.T, v starlark.Value, err error) string {
	t.Helper()
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Backtrace()
	}
	if err != nil {
		t.Fatalf("not an EvalError: %v", err)
	}
	return v.String()
}

// ours runs code through the VM, answering as plain does.
func ours(t *testing.T, db *image.DB, m *vm.VM, code string) string {
	t.Helper()
	_, err := replOptions.ParseExpr("<input>", code, 0)
	statements := err != nil
	if statements && strings.Contains(code, "res = ") {
		code += "\nres = repr(res)"
	}
	res, err := evalUpdate(t, db, m, code)
	var ve *vm.Error
	switch {
	case errors.As(err, &ve):
		return ve.Backtrace
	case err != nil:
		t.Fatalf("%q: %v", code, err)
	case statements:
		s, _ := res.Globals["res"].(image.String)
		return string(s)
	}
	return res.Repr
}

// TestGuardedOperationsAnswerAsStarlark: code whose operations the VM
// guards gives the values, and the errors with their backtraces (down to
// the column), that plain Starlark gives.
func TestGuardedOperationsAnswerAsStarlark(t *testing.T) {
	cases := []string{
		// Repetition and concatenation.
		`"a" * 3`, `3 * "ab"`, `[1, 2] * 2`, `(1,) * 3`, `b"x" * 2`, `"ab" * -1`, `[0] * 0`,
		`[1] + [2]`, `"a" + "b"`, `(1,) + (2, 3)`, `b"a" + b"b"`, `1 + 2`, `2 * 3`,
		`12345678901234567890 * 98765432109876543210`,
		// Formatting.
		`"%d" % 5`, `"%s-%r" % ("a", "b")`, `"%s" % [1, (2,), {"k": [3]}]`,
		`"%(x)s and %(x)r" % {"x": [1, "y"]}`, `"%s" % {"a": 1}`, `"%c%%%x" % (65, 255)`,
		`"{} {x!r}".format([1, (2,)], x = "y")`, `"{0}{1}{0}".format("a", [1])`, `"{{}}{}".format(set([1]))`,
		// String methods.
		`",".join(["a", "b"])`, `"-".join(("x", "y", "z"))`, `"a-b-c".replace("-", "+")`, `"aaa".replace("a", "bb", 2)`,
		`"a b  c".split()`, `"a,b,,c".split(",")`, `"a,b,c".rsplit(",", 1)`, `"x\ny\r\nz".splitlines()`,
		`"Ab".upper() + "Ab".lower() + "ab cd".title() + "ab".capitalize()`,
		`"x".join`, `getattr("a,b", "split")(",")`, `getattr([1], "extend")`,
		// Containers.
		`list(range(10))`, `tuple(range(3))`, `sorted([3, 1, 2], reverse = True)`, `list(enumerate(["a", "b"], 1))`,
		`list(zip([1, 2], "ab".elems()))`, `list(reversed([1, 2, 3]))`, `dict(a = 1, b = [2])`, `dict([(1, 2)])`,
		`set([1, 2]) | set([3])`, `{1: 2} | {3: 4}`, `{"a": 1}.items()`, `{"a": 1}.keys() + {"a": 1}.values()`,
		`set([1]).union([2], [3])`,
		// Printing.
		`str([1, [2, {"a": (3,)}], set([4]), ([],)])`, `repr("x\n\"é\x01")`, `str(None) + str(1.5) + str(True)`,
		`str(b"ab")`, `repr(b"a\x00")`, `int("42") + int("ff", 16)`,
		`json.encode({"a": [1, 2.5, None, True, "s"]})`, `json.decode('{"a": [1, 2]}')`,
		`json.indent('{"a":[1,2]}')`, `json.encode_indent({"a": [1]}, indent = "  ")`,
		// Statements.
		"x = [1]\ny = x\nx += [2]\nres = y",
		"d = {\"a\": [1]}\nd[\"a\"] += [2]\nres = d",
		"s = \"ab\"\ns *= 2\nres = s",
		"s = \"%s!\"\ns %= \"z\"\nres = s",
		"l = [[1]]\ndef f():\n    return 0\nl[f()] += [2]\nres = l",
		"d = {\"x\": 1}\ne = d\nd |= {\"y\": 2}\nres = e",
		"x = [1]\nx.extend([2, 3])\nres = x",
		"l = [1]\nl.append(l)\nd = {\"l\": l}\nd[\"d\"] = d\nres = str([l, d, (l,)]) + \"%s\" % [d] + \"{}\".format(l)",
		"n = 0\nfor i in range(5):\n    n += i\nres = n",
		"calls = []\ndef k():\n    calls.append(1)\n    return \"a\"\nd = {\"a\": \"x\"}\nd[k()] += \"y\"\nres = [d, calls]",
		"t = (1,)\nt += (2,)\nres = t",
		"s = set([1])\ns |= set([2])\nres = s",
		"def f(x):\n    return [x * 2 for x in x if x % 2]\nres = f([1, 2, 3]) + [(lambda y: y + y)(\"z\")]",
		// Tuples, whose nesting is checked.
		"a = 1\nt = (a, [a], {a: (a,)}, ((a,),))\nres = (t, (t, t), [t]) + (t,) * 2",
		"a = [1]\nx, y = (a, (a,))\nres = (y, x)",
		"def f(a, b):\n    return a, (b, a)\nres = {f(1, 2): f((3,), 4)}",
		"def f(*a):\n    \"doc\"\n    return a\ndef g(x, *rest, **kw):\n    return (x, rest, kw)\nres = [f(), f(1, (2,)), g(1), g(1, 2, k = 3), f(*[1, 2])]",
		`list("héllo".codepoints())`, `tuple("ab".codepoint_ords())`, `sorted("bca".elems())`, `list(zip("ab".elems(), [1, 2]))`,
		`list(enumerate("ab".codepoints()))`, `",".join("abc".elems())`, `max("abc".elems())`, `min([3, 1, 2])`, `max(1, 2)`,
		`any(range(1 << 40))`, `all(range(1 << 40))`, `any([])`, `all([])`, `any("ab".elems())`, `all([1, 0])`, `any(1)`, `all()`,
		`max(range(5), key = lambda x: -x)`, `set("abca".elems())`, `dict(zip("ab".elems(), "cd".elems()))`,
		"l = [1]\nl += \"ab\".elems()\nl.extend(\"c\".codepoints())\nres = l",
		`[1, 2, 3, 4][1:]`, `[1, 2, 3, 4][::-1]`, `[1, 2, 3, 4][-1:0:-2]`, `"hello"[1:-1]`, `"hello"[::2]`, `b"abc"[:2]`,
		`(1, 2, 3)[5:]`, `(1, 2, 3)[-10:10]`, `range(10)[2:8:3]`, `"abc"[None:None:None]`, `[1, 2][3:1]`, `[1, 2, 3][2:0:-1]`,
		`[1][::0]`, `[1]["a":]`, `1[1:]`, `{}[1:]`, `"abc"[:1.5]`, "x = 1 << 40\nres = [1, 2][1:2:x]",
		"l = [1, 2, 3]\nres = l[len(l) - 2:][::-1] + l[:1]",
		"l = [1, 2]\nres = l[1:len(l) + 0.5]", "l = [1, 2]\nres = l[:-l[0]:l[0] - 1]", "l = [1, 2]\nres = (l)[(l[0]):(\"x\")]",
		`tuple([(1,), 2])`, `list(zip([(1,)], [2]))`, `list(enumerate([(1, (2,))]))`, `{(1,): (2,)}.items()`,
		"t = ()\nfor i in range(900):\n    t = (t,)\nres = len({t: 1})",
		"x = 1\nres = (x, [2]) + (3,)\nres = hash(res)",
		// Errors, with their positions.
		`"a" + 1`, `[1] * "x"`, `"%d" % "x"`, `"%s %s" % (1,)`, `"%s" % (1, 2)`, `"%(k)s" % {}`,
		`(1).join([])`, `[].join(",")`, `",".join([1])`, `"{}".format()`, `"{".format()`, `"a".replace(1, 2)`,
		`list(1)`, `str(1, 2)`, `fail("boom", [1])`, `sorted([1, "a"])`, `json.decode("[")`, `int("x")`,
		`{"a": 1}.update(1)`, `"a".split(1)`, `{} | 1`, `set([1]) | [1]`,
		"x = \"a\"\ny = 1\nres = x + y",
		"d = {}\nd[\"k\"] += 1",
		"x = None\nx += [1]",
		"l = (1,)\nl += [2]",
		"def f():\n    return [1] * \"x\"\nres = f()",
		// Indexing by a value that is not a literal, and its errors.
		"d = {\"a\": [1, 2]}\nk = \"a\"\ni = -1\nres = (d[k][i], d[k][0], \"xyz\"[i], (1, 2)[i + 1], range(5)[i])",
		"d = {(1, \"a\"): 2}\nk = (1, \"a\")\nres = d[k]",
		"d = {}\nk = [1, (\"a\",)]\nres = d[str(k)]", "d = {}\nk = [1]\nres = d[k]",
		"l = [1, 2]\ni = 2\nres = l[i]", "l = []\ni = 0\nres = l[i]", "l = [1]\ni = -2\nres = l[i]",
		"l = [1]\ni = \"a\"\nres = l[i]", "s = \"ab\"\ni = 1.0\nres = s[i]", "x = 1\ni = 0\nres = x[i]",
		"l = [1]\ni = 1 << 40\nres = l[i]", "d = {}\nk = 1\nres = d[k] + 1",
		`{"a": (1,)}.popitem()`, `{}.popitem()`, "d = {1: 2}\nf = d.popitem\nres = [f(), d]",
	}
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	for _, code := range cases {
		if got, want := ours(t, db, m, code), plain(t, code); got != want {
			t.Errorf("%s\ngot  %s\nwant %s", code, got, want)
		}
	}
}

// TestGuardedOperationsStopAtTheBudget: each operation that could
// allocate far more than its operands hold is refused, before it
// allocates, with a limit error pointing at its line.
func TestGuardedOperationsStopAtTheBudget(t *testing.T) {
	cases := []struct {
		name, code string
		limit      vm.Limit
	}{
		{"list repetition", "x = 1\nres = [0] * 100000000", vm.MemoryLimit},
		{"string repetition", "x = 1\nres = 'x' * 100000000", vm.MemoryLimit},
		{"string doubling", "s = 'x' * 1000\nfor i in range(40):\n    s = s + s", vm.MemoryLimit},
		{"augmented doubling", "s = 'x' * 1000\nfor i in range(40):\n    s += s", vm.MemoryLimit},
		{"list doubling in place", "l = [0] * 1000\nfor i in range(40):\n    l += l", vm.MemoryLimit},
		{"repetition by *=", "l = [0] * 1000\nfor i in range(40):\n    l *= 2", vm.MemoryLimit},
		{"extend", "l = [0] * 1000\nfor i in range(40):\n    l.extend(l)", vm.MemoryLimit},
		{"format", "x = 'y' * 1000000\nres = ('%s' * 100) % tuple([x] * 100)", vm.MemoryLimit},
		{"format by key", "x = 'y' * 1000000\nres = ('%(a)s' * 100) % {'a': x}", vm.MemoryLimit},
		{"str.format", "x = 'y' * 1000000\nres = ('{0}' * 100).format(x)", vm.MemoryLimit},
		{"join", "x = 'y' * 1000000\nres = ','.join([x] * 100)", vm.MemoryLimit},
		{"replace", "x = 'y' * 1000\nres = x.replace('y', 'z' * 100000)", vm.MemoryLimit},
		{"split", "x = 'a ' * 3000000\nres = x.split()", vm.MemoryLimit},
		{"list of a range", "x = 1\nres = list(range(100000000))", vm.MemoryLimit},
		{"sorted range", "x = 1\nres = sorted(range(100000000))", vm.MemoryLimit},
		{"enumerate", "x = 1\nres = enumerate(range(100000000))", vm.MemoryLimit},
		{"zip", "x = 1\nres = zip(range(100000000), range(100000000))", vm.MemoryLimit},
		{"set of a range", "x = 1\nres = set(range(100000000))", vm.MemoryLimit},
		{"list of codepoints", "s = 'x' * 40000000\nres = list(s.codepoints())", vm.MemoryLimit},
		{"tuple of codepoint_ords", "s = 'x' * 40000000\nres = tuple(s.codepoint_ords())", vm.MemoryLimit},
		{"extend by codepoints", "s = 'x' * 40000000\nl = []\nl.extend(s.codepoints())", vm.MemoryLimit},
		{"+= of codepoints", "s = 'x' * 40000000\nl = []\nl += s.codepoints()", vm.MemoryLimit},
		{"zip of codepoints", "s = 'x' * 40000000\nres = zip(s.codepoints())", vm.MemoryLimit},
		{"enumerate of codepoints", "s = 'x' * 40000000\nres = enumerate(s.codepoints())", vm.MemoryLimit},
		{"sorted codepoints", "s = 'x' * 40000000\nres = sorted(s.codepoints())", vm.MemoryLimit},
		{"set of codepoints", "s = 'xy' * 20000000\nres = set(s.elems())", vm.MemoryLimit},
		{"join of codepoints", "s = 'x' * 40000000\nres = ','.join(s.codepoints())", vm.MemoryLimit},
		{"list slices", "l = list(range(1500000))\nm = [l[::1], l[::-1], l[::1], l[::-1], l[::1]]", vm.MemoryLimit},
		{"string slices", "s = 'x' * 30000000\nres = [s[::-1], s[::2], s[1::1]]", vm.MemoryLimit},
		{"tuple slices", "t = tuple(range(2000000))\nres = [t[::-1], t[::-1], t[::-1]]", vm.MemoryLimit},
		{"getattr", "x = 'y' * 1000000\nres = getattr(',', 'join')([x] * 100)", vm.MemoryLimit},
		{"json.decode", "x = '[' + '0,' * 3000000 + '0]'\nres = json.decode(x)", vm.MemoryLimit},
		{"int squaring", "x = 3\nfor i in range(40):\n    x = x * x", vm.MemoryLimit},
		{"int parsing", "x = '9' * 200000\nres = int(x)", vm.MemoryLimit},
		{"int printing", "x = 1\nfor i in range(600):\n    x = x << 500\nres = '%d' % x", vm.MemoryLimit},
		{"int str", "x = 1\nfor i in range(600):\n    x = x << 500\nres = str(x)", vm.MemoryLimit},
		{"str of a deep list", "l = []\nfor i in range(30000):\n    l = [l]\nres = str(l)", vm.NestingLimit},
		{"repr of a deep dict", "d = {}\nfor i in range(30000):\n    d = {'d': d}\nres = repr(d)", vm.NestingLimit},
		{"print of a deep list", "l = []\nfor i in range(30000):\n    l = [l]\nprint(l)", vm.NestingLimit},
		{"%s of a deep list", "l = []\nfor i in range(30000):\n    l = [l]\nres = '%s' % [l]", vm.NestingLimit},
		{"format of a deep list", "l = []\nfor i in range(30000):\n    l = [l]\nres = '{}'.format(l)", vm.NestingLimit},
		{"json of a deep list", "l = []\nfor i in range(30000):\n    l = [l]\nres = json.encode(l)", vm.NestingLimit},
		{"deep tuple display", "t = ()\nfor i in range(200000):\n    t = ((((((((((t,),),),),),),),),),)", vm.NestingLimit},
		{"deep tuple by return", "def f(x):\n    return x, 1\nt = ()\nfor i in range(2000):\n    t = f(t)", vm.NestingLimit},
		{"deep tuple by *args", "def f(*a):\n    return a\nt = ()\nfor i in range(2000):\n    t = f(t)", vm.NestingLimit},
		{"deep tuple by tuple()", "t = ()\nfor i in range(2000):\n    t = tuple([t])", vm.NestingLimit},
		{"deep tuple by popitem", "t = ()\nfor i in range(2000):\n    t = {\"k\": t}.popitem()", vm.NestingLimit},
		{"deep tuple by zip", "t = ()\nfor i in range(2000):\n    t = zip([t])[0]", vm.NestingLimit},
		{"deep tuple by enumerate", "t = ()\nfor i in range(2000):\n    t = enumerate([t])[0]", vm.NestingLimit},
		{"deep tuple by items", "t = ()\nfor i in range(2000):\n    t = {1: t}.items()[0]", vm.NestingLimit},
		{"storing a deep list", "l = []\nfor i in range(30000):\n    l = [l]\ngenesis.deep = l", vm.NestingLimit},
	}
	caughtAfter := map[string]bool{
		"list of codepoints": true, "tuple of codepoint_ords": true, "extend by codepoints": true, "+= of codepoints": true,
		"zip of codepoints": true, "enumerate of codepoints": true, "sorted codepoints": true, "join of codepoints": true,
		"list slices": true, "string slices": true, "tuple slices": true,
	}
	// The watchdog measures the process heap, garbage included; the
	// guards count what an operation keeps. Collecting garbage promptly
	// keeps the heap near what is live, so that a loaded machine (or the
	// race detector's slower collector) cannot let the garbage of earlier
	// doublings trip the watchdog before the guard: the guard's verdict
	// is what this test checks.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	db := imagetest.Open(t, nil)
	// Steps and time without bound: the memory and nesting limits are
	// what these test, and a loaded machine must not turn a slow case
	// into a time limit.
	m := vm.New(&vm.Options{MaxMemory: 64 << 20, MaxSteps: 1 << 40, Timeout: time.Hour})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from a collected heap, not from the
			// garbage the case before left (how much is still uncollected
			// depends on timing): the budget is what the heap may grow by.
			debug.FreeOSMemory()
			start := time.Now()
			_, err := evalUpdate(t, db, m, tc.code)
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("got %v, want a %s error", err, tc.limit)
			}
			line := "<input>:" + strconv.Itoa(strings.Count(tc.code, "\n")+1) + ":"
			if !strings.Contains(err.Error(), line) {
				t.Errorf("error does not point at %s:\n%v", line, err)
			}
			// A guard refuses before allocating; the watchdog, which gives
			// the same kind of error, only after. Where the guard only
			// reserves as it goes (lengthless iterables drained in
			// chunks, slices), the watchdog still trips first in this
			// test: those are bounded, but after the fact.
			watchdog := strings.HasPrefix(le.Detail, "heap grew by more than") || strings.HasPrefix(le.Detail, "the process heap is")
			if watchdog && !caughtAfter[tc.name] {
				t.Errorf("stopped by the watchdog after allocating (%s), not by a guard before", le.Detail)
			}
			t.Logf("%v", time.Since(start).Round(time.Millisecond))
		})
	}
	if res := mustEval(t, db, m, "len('x' * 1000000 + 'y' * 1000000)"); res.Repr != "2000000" {
		t.Errorf("after the limits, a 2 MB string: %s", res.Repr)
	}
}

// TestGuardedLimitInAMethod: the memory limit hit in a method names the
// method and its line, and the send leaves nothing.
func TestGuardedLimitInAMethod(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	setMethod(t, db, m, "hog", "def hog(self):\n    self.touched = True\n    return [0] * 100000000")
	before := db.Store().LastTID()
	_, err := sendUpdate(t, db, m, "hog")
	var le *vm.LimitError
	if !errors.As(err, &le) || le.Limit != vm.MemoryLimit {
		t.Fatalf("got %v, want the memory limit", err)
	}
	if !strings.Contains(err.Error(), "hog.star:3:") || !strings.Contains(err.Error(), "in hog") {
		t.Errorf("error does not name hog.star:3:\n%v", err)
	}
	if db.Store().LastTID() != before {
		t.Errorf("the failed send committed")
	}
}

func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestProcessBudgetIsShared: two executions that each stay within their
// own limit, but together pass the process's budget: the second one's
// allocation is refused, the first goes on.
func TestProcessBudgetIsShared(t *testing.T) {
	db := imagetest.Open(t, nil)
	runtime.GC()
	holding, release := make(chan struct{}), make(chan struct{})
	m := vm.New(&vm.Options{
		MaxMemory:      64 << 20,
		MaxTotalMemory: heapNow() + 96<<20,
		Timeout:        30 * time.Second,
		Primitives: map[string]vm.Primitive{"hold": func(context.Context, *image.Tx, image.Ref, []image.Value) (image.Value, error) {
			close(holding)
			<-release
			return image.None, nil
		}},
	})
	setGenesisSlot(t, db, "hold", image.Primitive{Name: "hold"})
	setMethod(t, db, m, "first", "def first(self):\n    x = 'a' * 48000000\n    self.hold()\n    return len(x)")
	setMethod(t, db, m, "second", "def second(self):\n    y = 'b' * 60000000\n    return len(y)")
	var wg sync.WaitGroup
	var first vm.Result
	var firstErr error
	wg.Go(func() {
		firstErr = db.View(ctx, func(tx *image.Tx) error {
			var err error
			first, err = m.Send(ctx, tx, genesisOID(t, db), "first", nil, nil)
			return err
		})
	})
	<-holding
	err := db.View(ctx, func(tx *image.Tx) error {
		_, err := m.Send(ctx, tx, genesisOID(t, db), "second", nil, nil)
		return err
	})
	close(release)
	wg.Wait()
	var le *vm.LimitError
	if !errors.As(err, &le) || le.Limit != vm.MemoryLimit || !strings.Contains(le.Detail, "all executions share") {
		t.Errorf("the second execution: got %v, want the memory limit of the process", err)
	}
	if firstErr != nil || first.Repr != "48000000" {
		t.Errorf("the first execution: %v %q, want 48000000", firstErr, first.Repr)
	}
}

// TestAugmentedSliceAssignmentIsRefused: x[i:j] op= y is a compile error,
// as in plain Starlark, in eval input, in a def, and in a method, which
// is refused when it is installed.
func TestAugmentedSliceAssignmentIsRefused(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	cases := []struct{ code, want string }{
		{"l = [1]\nl[0:1] += [3]", "syntax error at line 2, column 1: can't assign to sliceexpr"},
		{"l = [1]\nl[0:1] *= 2", "syntax error at line 2, column 1: can't assign to sliceexpr"},
		{"l = [1]\n(l[:]) += [3]", "syntax error at line 2, column 2: can't assign to sliceexpr"},
		{"def f(l):\n    l[::2] %= 2\n    return l", "syntax error at line 2, column 5: can't assign to sliceexpr"},
	}
	for _, tc := range cases {
		_, err := evalUpdate(t, db, m, tc.code)
		var ve *vm.Error
		if !errors.As(err, &ve) || ve.Msg != tc.want {
			t.Errorf("%q: got %v, want %s", tc.code, err, tc.want)
		}
	}
	src := "def bad(self):\n    l = [1]\n    l[0:1] += [3]\n    return l"
	code := "genesis.bad = method(" + quote(src) + ")"
	_, err := evalUpdate(t, db, m, code)
	if err == nil || !strings.Contains(err.Error(), "bad.star:3:5: can't assign to sliceexpr") {
		t.Errorf("installing a method with l[0:1] += [3]: got %v, want its compile error", err)
	}
	if _, err := vm.CheckMethod(src, "bad"); err == nil {
		t.Errorf("CheckMethod accepted l[0:1] += [3]")
	}
}

// TestIterationInOneStepIsBounded: a built-in that would iterate more
// elements in one step than the execution has steps left is refused up
// front with the step limit, and one iterating an iterable without a
// length stops at the step or time limit.
func TestIterationInOneStepIsBounded(t *testing.T) {
	cases := []struct {
		name, code string
		limit      vm.Limit
	}{
		{"max of a range", "x = 1\nres = max(range(1 << 40))", vm.StepLimit},
		{"min of a range", "x = 1\nres = min(range(1 << 40))", vm.StepLimit},
		{"all of a range", "x = 1\nres = all(range(1, 1 << 40))", vm.StepLimit},
		{"any of a range", "x = [0] * 6000000\nres = any(x)", vm.StepLimit},
		{"sorted range", "x = 1\nres = sorted(range(20000000))", vm.StepLimit},
		{"list of a range", "x = 1\nres = list(range(20000000))", vm.StepLimit},
		{"dict of pairs", "x = 1\nres = dict(zip(range(20000000), range(20000000)))", vm.StepLimit},
		{"join", "x = 1\nres = ','.join(range(20000000))", vm.StepLimit},
		{"max of codepoints", "s = 'x' * 4000000\nres = max(s.codepoints())", vm.StepLimit},
		{"all of codepoints", "s = 'x' * 4000000\nres = all(s.codepoints())", vm.StepLimit},
	}
	db := imagetest.Open(t, nil)
	// Few steps, so that a lengthless iterable reaches them long before
	// the time limit, even under the race detector.
	m := vm.New(&vm.Options{MaxSteps: 500_000})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from a collected heap, not from the
			// garbage the case before left (how much is still uncollected
			// depends on timing): the budget is what the heap may grow by.
			debug.FreeOSMemory()
			start := time.Now()
			_, err := evalUpdate(t, db, m, tc.code)
			var le *vm.LimitError
			if !errors.As(err, &le) || le.Limit != tc.limit {
				t.Fatalf("got %v, want a %s error", err, tc.limit)
			}
			if !strings.Contains(err.Error(), "<input>:2:") {
				t.Errorf("error does not point at line 2:\n%v", err)
			}
			t.Logf("%v", time.Since(start).Round(time.Millisecond))
		})
	}
	// The time limit, with steps to spare.
	m = vm.New(&vm.Options{MaxSteps: 1 << 40, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := evalUpdate(t, db, m, "s = 'x' * 40000000\nres = all(s.codepoints())")
	var le *vm.LimitError
	if !errors.As(err, &le) || le.Limit != vm.TimeLimit {
		t.Errorf("got %v, want the time limit", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestMissingHugeKeyIsCutShort: Starlark's "key not in dict" error prints
// the whole key in one step; a 200 MB key made an 800 MB message. The
// guard prints at most a KiB of it, at once.
func TestMissingHugeKeyIsCutShort(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	for _, code := range []string{
		"s = \"\\x00\" * 50000000\nres = {}[s]",
		"s = \"x\" * 1000000\na = (s,)\nfor i in range(12):\n    a = (a, a)\nd = {}\nres = d[a]",
	} {
		// The whole key printed would be 200 MB, or 4 GB.
		var got string
		allocated := allocatedBy(func() { got = ours(t, db, m, code) })
		if allocated > 128<<20 || len(got) > 4<<10 || !strings.Contains(got, "not in dict") || !strings.Contains(got, "cut short") {
			t.Errorf("%.60q: %.300s (%d bytes), %d MiB allocated; want a short \"not in dict\" error, the key never printed whole", code, got, len(got), allocated>>20)
		}
	}
}

// allocatedBy is how many bytes of heap fn allocated (with whatever else
// runs meanwhile, which in these sequential tests is little).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
