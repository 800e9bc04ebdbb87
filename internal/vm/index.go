package vm

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// guardIndex is x[k] where k is not a literal. Starlark's own indexing
// puts the whole key in its "key ... not in dict" error, printing it at
// any size in one step: a 200 MB string key made an 800 MB message. The
// guard indexes as Starlark does, with the same errors, but prints a
// missing key at most keyReprMax bytes long.
const guardIndex = "$[]"

// keyReprMax bounds how much of a missing key an error shows.
const keyReprMax = 1 << 10

// indexExpr is the guard call of e (load context), or e itself when its
// index is a literal, whose printing costs nothing.
func indexExpr(e *syntax.IndexExpr) syntax.Expr {
	if _, ok := e.Y.(*syntax.Literal); ok {
		return e
	}
	return guardCall(guardIndex, e.Lbrack, e.X, e.Y)
}

func guardIndexFn(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x, k := args[0], args[1]
	switch x := x.(type) {
	case starlark.Mapping:
		v, found, err := x.Get(k)
		if err != nil {
			return nil, opFail(thread, err)
		}
		if !found {
			return nil, opFail(thread, fmt.Errorf("key %s not in %s", keyRepr(thread, k), x.Type()))
		}
		return v, nil
	case starlark.Indexable:
		n := x.Len()
		i, err := starlark.AsInt32(k)
		if err != nil {
			return nil, opFail(thread, fmt.Errorf("%s index: %s", x.Type(), err))
		}
		orig := i
		if i < 0 {
			i += n
		}
		if i < 0 || i >= n {
			if n == 0 {
				return nil, opFail(thread, fmt.Errorf("index %d out of range: empty %s", orig, x.Type()))
			}
			return nil, opFail(thread, fmt.Errorf("%s index %d out of range [%d:%d]", x.Type(), orig, -n, n-1))
		}
		return x.Index(i), nil
	}
	return nil, opFail(thread, fmt.Errorf("unhandled index operation %s[%s]", x.Type(), k.Type()))
}

// keyRepr is k as Starlark's %v prints it, cut short past keyReprMax
// bytes with a note of how much was left out.
func keyRepr(thread *starlark.Thread, k starlark.Value) string {
	if s, ok := k.(starlark.String); ok && len(s) > keyReprMax/4 {
		// The quoting of a long string is refused whole: show its start.
		head := strings.ToValidUTF8(string(s[:keyReprMax/4]), "")
		return fmt.Sprintf("%s... (a string of %d bytes, cut short)", starlark.String(head).String(), len(s))
	}
	p := &printer{ex: executionOf(thread), max: keyReprMax}
	if err := p.value(k); err == nil {
		return string(p.buf)
	}
	s := string(p.buf)
	if len(s) > keyReprMax {
		s = s[:keyReprMax]
	}
	return fmt.Sprintf("%s... (a %s, cut short)", s, k.Type())
}
