package vm_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/vm"
)

// carrier is what a REPL session carries between inputs: the variables
// and the function definitions, each input its own transaction.
type carrier struct {
	vars map[string]image.Value
	defs []vm.Def
}

// eval runs code after what c carries, and carries what it leaves when
// it succeeds.
func (c *carrier) eval(t *testing.T, db *image.DB, m *vm.VM, code string) (vm.Result, error) {
	t.Helper()
	roots := rootGlobals(t, db)
	var res vm.Result
	err := db.Update(ctx, func(tx *image.Tx) error {
		globals := vm.GlobalsOf(roots)
		for k, v := range c.vars {
			globals[k] = v
		}
		var err error
		res, err = m.EvalAfter(ctx, tx, c.defs, code, globals)
		return err
	})
	if err == nil {
		c.vars, c.defs = res.Globals, res.Defs
		for name := range roots {
			delete(c.vars, name)
		}
	}
	return res, err
}

func (c *carrier) mustEval(t *testing.T, db *image.DB, m *vm.VM, code string) vm.Result {
	t.Helper()
	res, err := c.eval(t, db, m, code)
	if err != nil {
		t.Fatalf("eval %q: %v", code, err)
	}
	return res
}

func defNames(defs []vm.Def) []string {
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	return names
}

// TestEvalAfterCarriesDefs: functions defined at an input's top level (a
// def, a name assigned a lambda) carry to later inputs by their source;
// a name rebound to a value that can be stored drops its definition, one
// rebound to something else that cannot be stored is dropped and said
// so.
func TestEvalAfterCarriesDefs(t *testing.T) {
	steps := []struct {
		code    string
		repr    string
		defs    []string
		dropped []string
	}{
		{code: "def twice(n):\n    return 2 * n\n", repr: "None", defs: []string{"twice"}},
		{code: "x = 40", repr: "None", defs: []string{"twice"}},
		{code: "twice(x) + 2", repr: "82", defs: []string{"twice"}},
		{code: "sq = lambda n: n * n; y = 3", repr: "None", defs: []string{"twice", "sq"}},
		{code: "sq(y) + twice(1)", repr: "11", defs: []string{"twice", "sq"}},
		{code: "also = twice", repr: "None", defs: []string{"twice", "sq"}, dropped: []string{"also"}},
		{code: "def twice(n):\n    return n + n\n", repr: "None", defs: []string{"sq", "twice"}},
		{code: "for i in range(2):\n    def inner():\n        return i\n", repr: "None", defs: []string{"sq", "twice"}, dropped: []string{"inner"}},
		{code: "sq = set([1, 2])", repr: "None", defs: []string{"twice"}, dropped: []string{"sq"}},
		{code: "twice = 7", repr: "None"},
		{code: "twice", repr: "7"},
	}
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	var c carrier
	for _, s := range steps {
		res := c.mustEval(t, db, m, s.code)
		if res.Repr != s.repr {
			t.Errorf("%q: got %s, want %s", s.code, res.Repr, s.repr)
		}
		if diff := cmp.Diff(defNames(res.Defs), s.defs); diff != "" {
			t.Errorf("%q: defs (-got +want):\n%s", s.code, diff)
		}
		if diff := cmp.Diff(res.Dropped, s.dropped); diff != "" {
			t.Errorf("%q: dropped (-got +want):\n%s", s.code, diff)
		}
	}
}

// TestDefSource: a definition is carried as the statement's own text,
// whatever shares its line or comes before it.
func TestDefSource(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	var c carrier
	res := c.mustEval(t, db, m, "s = \"é→\"; f = lambda a: a + s  # a comment\r\ndef g(k = 2):\r\n    return k\r\n")
	want := []vm.Def{{Name: "f", Source: "f = lambda a: a + s"}, {Name: "g", Source: "def g(k = 2):\r\n    return k"}}
	if diff := cmp.Diff(res.Defs, want); diff != "" {
		t.Errorf("defs (-got +want):\n%s", diff)
	}
	if res := c.mustEval(t, db, m, "f('x') + str(g())"); res.Repr != `"xé→2"` {
		t.Errorf("the carried functions answer %s", res.Repr)
	}
}

// TestEvalAfterDefaultsAgain: a carried function's default values are
// evaluated again in each input; one whose default no longer evaluates
// is forgotten, with a note, and the input runs without it.
func TestEvalAfterDefaultsAgain(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	var c carrier
	c.mustEval(t, db, m, "n = 1\ndef f(k = n):\n    return k\n")
	c.mustEval(t, db, m, "n = 2")
	if res := c.mustEval(t, db, m, "f()"); res.Repr != "2" {
		t.Errorf("the default after n = 2: got %s, want 2", res.Repr)
	}
	c.mustEval(t, db, m, "genesis.limit = 1\ndef g(k = genesis.limit + 1):\n    return k\n")
	c.mustEval(t, db, m, `genesis.limit = "no number"`)
	res := c.mustEval(t, db, m, "1")
	if !strings.Contains(res.Output, "note: g, defined in an earlier input, is forgotten") || slices.Contains(defNames(res.Defs), "g") {
		t.Errorf("a definition that fails again: output %q, defs %v", res.Output, defNames(res.Defs))
	}
	if _, err := c.eval(t, db, m, "g()"); err == nil || !strings.Contains(err.Error(), "g") {
		t.Errorf("g after it was forgotten: %v", err)
	}
}

// TestEvalAfterErrorLines: the input's errors give the input's own line
// numbers, whatever definitions ran before it.
func TestEvalAfterErrorLines(t *testing.T) {
	db := imagetest.Open(t, nil)
	m := vm.New(nil)
	var c carrier
	c.mustEval(t, db, m, "def a():\n    return 1\n\ndef b():\n    return 2\n")
	_, err := c.eval(t, db, m, "x = a()\ny = b() // 0\n")
	if err == nil || !strings.Contains(err.Error(), "<input>:2:") {
		t.Errorf("got %v, want an error at <input>:2", err)
	}
	_, err = c.eval(t, db, m, "x = 1\nx = (\n")
	var se *vm.SyntaxError
	if !errors.As(err, &se) || se.Line != 3 {
		t.Errorf("got %v, want a syntax error at line 3", err)
	}
	if diff := cmp.Diff(defNames(c.defs), []string{"a", "b"}); diff != "" {
		t.Errorf("failed inputs changed the definitions carried (-got +want):\n%s", diff)
	}
}
