package vm

import (
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Slices. x[lo:hi:step] copies the elements it selects, which may be as
// many as x has: guard.go rewrites it to $[:](x, present, lo, hi, step),
// present saying (bits 1, 2, 4) which of lo, hi and step the source
// gives, so that the guard sizes the result and reserves it first.

// guardSlice is the name of the guard of a slice expression.
const guardSlice = "$[:]"

// sliceExpr is the guard call of e.
func sliceExpr(e *syntax.SliceExpr) syntax.Expr {
	args := []syntax.Expr{e.X, nil}
	present := 0
	for i, part := range []syntax.Expr{e.Lo, e.Hi, e.Step} {
		if part != nil {
			present |= 1 << i
			args = append(args, part)
		}
	}
	args[1] = &syntax.Literal{Token: syntax.INT, TokenPos: e.Lbrack, Raw: string(rune('0' + present)), Value: int64(present)}
	// Starlark's slice reports its errors where the last of its
	// operands it compiled left the position; the guard's call stands
	// there.
	pos := e.Lbrack
	for _, part := range []syntax.Expr{e.X, e.Lo, e.Hi, e.Step} {
		if p, ok := lastPos(part); ok {
			pos = p
		}
	}
	return guardCall(guardSlice, pos, args...)
}

// lastPos is the position Starlark's compiler last sets compiling e,
// where it knows it.
func lastPos(e syntax.Expr) (syntax.Position, bool) {
	switch e := e.(type) {
	case *syntax.Ident:
		return e.NamePos, true
	case *syntax.BinaryExpr:
		return e.OpPos, true
	case *syntax.UnaryExpr:
		return e.OpPos, true
	case *syntax.CallExpr:
		return e.Lparen, true
	case *syntax.DotExpr:
		return e.Dot, true
	case *syntax.IndexExpr:
		return e.Lbrack, true
	case *syntax.ParenExpr:
		return lastPos(e.X)
	}
	return syntax.Position{}, false
}

// sliceOf is a Starlark function slicing as x[lo:hi:step] does: the
// guard calls it for Starlark's own errors.
var sliceOf = starlarkHelper("slice.star", "def slice(x, lo, hi, step):\n    return x[lo:hi:step]\n", "slice")

// guardSliceFn is $[:].
func guardSliceFn(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x := args[0]
	present, _ := starlark.AsInt32(args[1])
	parts := [3]starlark.Value{starlark.None, starlark.None, starlark.None}
	rest := args[2:]
	for i := range parts {
		if present&(1<<i) != 0 {
			parts[i], rest = rest[0], rest[1:]
		}
	}
	if s, ok := x.(starlark.Sliceable); ok {
		if start, end, step, ok := sliceIndices(s.Len(), parts[0], parts[1], parts[2]); ok {
			held, err := reserve(thread, times(sliceUnit(x, step), sliceLen(start, end, step)))
			if err != nil {
				return nil, opFail(thread, err)
			}
			defer release(held)
			return s.Slice(start, end, step), nil
		}
	}
	// Wrong: Starlark's slice says how.
	return callHelper(thread, sliceOf(), x, parts[0], parts[1], parts[2])
}

// sliceIndices are the indices Starlark's slice computes for a sequence
// of n elements, ok false where it would fail.
func sliceIndices(n int, lo, hi, stepV starlark.Value) (start, end, step int, ok bool) {
	step = 1
	if stepV != starlark.None {
		var err error
		if step, err = starlark.AsInt32(stepV); err != nil || step == 0 {
			return 0, 0, 0, false
		}
	}
	index := func(v starlark.Value, def int) (int, bool) {
		if v == starlark.None {
			return def, true
		}
		i, err := starlark.AsInt32(v)
		if err != nil {
			return 0, false
		}
		if i < 0 {
			i += n
		}
		return i, true
	}
	var ok1, ok2 bool
	if step > 0 {
		start, ok1 = index(lo, 0)
		end, ok2 = index(hi, n)
		start, end = min(max(start, 0), n), min(max(end, 0), n)
		end = max(end, start)
	} else {
		start, ok1 = index(lo, n-1)
		end, ok2 = index(hi, -1)
		start, end = min(start, n-1), max(end, -1)
		start = max(start, end)
	}
	return start, end, step, ok1 && ok2
}

// sliceLen is how many elements a slice from start to end by step has.
func sliceLen(start, end, step int) uint64 {
	if step > 0 {
		return uint64((end - start + step - 1) / step)
	}
	return uint64((start - end - step - 1) / -step)
}

// sliceUnit is what an element of a slice of x by step takes: a slice
// of a string, bytes or a tuple by 1 shares x's memory, and one of a
// range is a range.
func sliceUnit(x starlark.Value, step int) uint64 {
	switch x.(type) {
	case starlark.String, starlark.Bytes:
		if step != 1 {
			return 1
		}
	case starlark.Tuple:
		if step != 1 {
			return slotSize
		}
	case *starlark.List:
		return slotSize
	}
	return 0
}
