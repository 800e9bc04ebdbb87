package vm

import (
	"fmt"
	"unsafe"

	"go.starlark.net/starlark"
)

// Tuple nesting. Starlark hashes a tuple (as a dict key, a set element)
// by recursing into the tuples in it, on the Go stack: a tuple nested a
// few million levels deep overflows it, which kills the process. So the
// places code makes tuples of other values (tuple displays with
// non-constant elements, rewritten to guardTuple; + and * of tuples;
// tuple, zip, enumerate and dict.items) refuse a tuple nested more than
// maxPrintDepth levels in tuples. Only tuples count: a list or dict in a
// tuple makes it unhashable, and the printer bounds their depth itself.

// guardTuple is the name of the guard of a tuple display.
const guardTuple = "$()"

// guardTupleFn is $(): the tuple of its arguments, checked.
func guardTupleFn(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	// Starlark passes a builtin a copy of its arguments: the tuple is
	// ours to keep.
	if err := checkNesting(args); err != nil {
		return nil, opFail(thread, err)
	}
	return args, nil
}

// checkNesting refuses v, a tuple or a list of tuples (what zip,
// enumerate and items make), if a tuple in it nests tuples more than
// maxPrintDepth levels deep.
func checkNesting(v starlark.Value) error {
	var n nesting
	switch v := v.(type) {
	case starlark.Tuple:
		_, err := n.depth(v, 1)
		return err
	case *starlark.List:
		for i := range v.Len() {
			if t, ok := v.Index(i).(starlark.Tuple); ok {
				if _, err := n.depth(t, 1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nesting measures tuples' nesting, each distinct tuple (by its
// elements' array) once.
type nesting struct {
	memo map[tupleKey]int
}

type tupleKey struct {
	elems *starlark.Value
	n     int
}

// memoFrom is the length from which a tuple without tuples in it is
// remembered too: a shorter one costs less to look at again.
const memoFrom = 16

// depth is t's nesting, t being level levels down; past maxPrintDepth
// it stops, so that it recurses no deeper.
func (n *nesting) depth(t starlark.Tuple, level int) (int, error) {
	if level > maxPrintDepth {
		return 0, &LimitError{Limit: NestingLimit, Detail: fmt.Sprintf("making a tuple nested more than %d levels deep in tuples", maxPrintDepth)}
	}
	if len(t) == 0 {
		return 1, nil
	}
	key := tupleKey{unsafe.SliceData(t), len(t)}
	if d, ok := n.memo[key]; ok {
		return d, nil
	}
	d, inner := 1, false
	for _, e := range t {
		et, ok := e.(starlark.Tuple)
		if !ok {
			continue
		}
		inner = true
		ed, err := n.depth(et, level+1)
		if err != nil {
			return 0, err
		}
		d = max(d, ed+1)
	}
	if level+d-1 > maxPrintDepth {
		return 0, &LimitError{Limit: NestingLimit, Detail: fmt.Sprintf("making a tuple nested more than %d levels deep in tuples", maxPrintDepth)}
	}
	if inner || len(t) >= memoFrom {
		if n.memo == nil {
			n.memo = map[tupleKey]int{}
		}
		n.memo[key] = d
	}
	return d, nil
}
