package vm

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// The guarded operators and methods that rewritten code calls (guard.go).

// Estimated sizes, in bytes, of what operations make.
const (
	slotSize  = 16  // a list or tuple element: an interface
	boxedSize = 32  // an element that is a new value (a substring, a tuple)
	entrySize = 128 // a dict or set entry, with its share of the table
)

// guardBuiltins are the guards, by the names rewritten code calls.
var guardBuiltins = func() starlark.StringDict {
	d := starlark.StringDict{
		guardStar:    starlark.NewBuiltin(guardStar, binaryGuardFn(syntax.STAR)),
		guardPlus:    starlark.NewBuiltin(guardPlus, binaryGuardFn(syntax.PLUS)),
		guardPipe:    starlark.NewBuiltin(guardPipe, binaryGuardFn(syntax.PIPE)),
		guardPercent: starlark.NewBuiltin(guardPercent, guardInterpolate),
		guardAddTo:   starlark.NewBuiltin(guardAddTo, checkInPlace(syntax.PLUS)),
		guardOrTo:    starlark.NewBuiltin(guardOrTo, checkInPlace(syntax.PIPE)),
		guardTuple:   starlark.NewBuiltin(guardTuple, guardTupleFn),
		guardSlice:   starlark.NewBuiltin(guardSlice, guardSliceFn),
		guardIndex:   starlark.NewBuiltin(guardIndex, guardIndexFn),
		guardCallee:  starlark.NewBuiltin(guardCallee, guardCalleeFn),
	}
	for name := range guardedMethods {
		d[guardMethod+name] = methodGuard(name)
	}
	return d
}()

// opFail is the error of a guarded operator: as Starlark's operator would
// raise it, with no frame for the guard in the backtrace. A limit also
// trips the execution, which reports it as such.
func opFail(thread *starlark.Thread, err error) error {
	msg := err.Error()
	var le *LimitError
	if errors.As(err, &le) {
		tripped(thread, le)
		msg = le.Limit.String() + " exceeded"
	}
	stack := thread.CallStack()
	if n := len(stack); n > 0 {
		stack = stack[:n-1]
	}
	return &starlark.EvalError{Msg: msg, CallStack: stack}
}

// tripped trips thread's execution if err is a limit, and returns err.
func tripped(thread *starlark.Thread, err error) error {
	var le *LimitError
	if ex := executionOf(thread); ex != nil && errors.As(err, &le) {
		ex.trip(le)
	}
	return err
}

func binaryGuardFn(op syntax.Token) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		n, err := binarySize(op, x, y)
		if err != nil {
			return nil, opFail(thread, err)
		}
		held, err := reserve(thread, n)
		if err != nil {
			return nil, opFail(thread, err)
		}
		z, err := starlark.Binary(op, x, y)
		release(held)
		if err == nil {
			if _, ok := z.(starlark.Tuple); ok {
				err = checkNesting(z)
			}
		}
		if err != nil {
			return nil, opFail(thread, err)
		}
		return z, nil
	}
}

// checkInPlace is the guard of x += y and x |= y: it checks what the
// operation will allocate and answers y, for Starlark's own in-place
// operation to use.
func checkInPlace(op syntax.Token) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		var n uint64
		var err error
		switch xs := x.(type) {
		case *starlark.List:
			if _, ok := y.(starlark.Iterable); ok && op == syntax.PLUS {
				ys, berr := boundIterables(thread, "+=", starlark.Tuple{y})
				if berr != nil {
					return nil, opFail(thread, berr)
				}
				y = ys[0]
				n = times(slotSize, uint64(xs.Len())+length(y))
				break
			}
			n, err = binarySize(op, x, y)
		case *starlark.Dict:
			if yd, ok := y.(*starlark.Dict); ok && op == syntax.PIPE {
				n = times(entrySize, uint64(xs.Len()+yd.Len()))
				break
			}
			n, err = binarySize(op, x, y)
		default:
			n, err = binarySize(op, x, y)
		}
		if err == nil {
			// Nothing is held: the allocation comes after the guard.
			var held uint64
			held, err = reserve(thread, n)
			release(held)
		}
		if err != nil {
			return nil, opFail(thread, err)
		}
		return y, nil
	}
}

// binarySize estimates what x op y allocates.
func binarySize(op syntax.Token, x, y starlark.Value) (uint64, error) {
	switch op {
	case syntax.STAR:
		if xi, ok := x.(starlark.Int); ok {
			if yi, ok := y.(starlark.Int); ok {
				return productSize(xi, yi)
			}
			return times(unitSize(y), count(xi)), nil
		}
		if yi, ok := y.(starlark.Int); ok {
			return times(unitSize(x), count(yi)), nil
		}
	case syntax.PLUS:
		switch x.(type) {
		case starlark.Int:
		case starlark.String, starlark.Bytes, *starlark.List, starlark.Tuple:
			return add(unitSize(x), unitSize(y)), nil
		}
	case syntax.PIPE:
		switch x.(type) {
		case *starlark.Dict, *starlark.Set:
			return times(entrySize, length(x)+length(y)), nil
		}
	}
	return 0, nil
}

// productSize is the size of x * y, refused past maxIntBits.
func productSize(x, y starlark.Int) (uint64, error) {
	if _, ok := x.Int64(); ok {
		if _, ok := y.Int64(); ok {
			return 0, nil
		}
	}
	b := bitLen(x) + bitLen(y)
	if b > maxIntBits {
		return 0, &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("multiplying ints of %d and %d bits; ints may have at most %d bits", bitLen(x), bitLen(y), maxIntBits)}
	}
	return uint64(b / 8), nil
}

// unitSize is what one repetition of a sequence takes.
func unitSize(v starlark.Value) uint64 {
	switch v := v.(type) {
	case starlark.String:
		return uint64(len(v))
	case starlark.Bytes:
		return uint64(len(v))
	case *starlark.List:
		return times(slotSize, uint64(v.Len()))
	case starlark.Tuple:
		return times(slotSize, uint64(len(v)))
	}
	return 0
}

// count is a repetition count: 0 if negative, all ones if huge.
func count(n starlark.Int) uint64 {
	if k, ok := n.Int64(); ok {
		return uint64(max(k, 0))
	}
	if n.Sign() > 0 {
		return math.MaxUint64
	}
	return 0
}

// length is len(v), 0 when v has none.
func length(v starlark.Value) uint64 {
	return uint64(max(starlark.Len(v), 0))
}

// times multiplies, saturating.
func times(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// add adds, saturating.
func add(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// guardInterpolate is the guard of x % y: for a format string, it prints
// the containers the format prints (with the VM's printer) and sizes the
// result before Starlark formats it.
func guardInterpolate(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x, y := args[0], args[1]
	format, ok := x.(starlark.String)
	if !ok {
		z, err := starlark.Binary(syntax.PERCENT, x, y)
		if err != nil {
			return nil, opFail(thread, err)
		}
		return z, nil
	}
	y, n, err := interpolation(thread, string(format), y)
	if err != nil {
		return nil, opFail(thread, err)
	}
	held, err := reserve(thread, n)
	if err != nil {
		return nil, opFail(thread, err)
	}
	z, err := starlark.Binary(syntax.PERCENT, format, y)
	release(held)
	if err != nil {
		return nil, opFail(thread, err)
	}
	return z, nil
}

// interpolation walks format's directives as Starlark's % does, sizing
// each, and returns x with the containers the format prints replaced by
// their printed text. Where the format is wrong it stops: Starlark then
// reports the error.
func interpolation(thread *starlark.Thread, format string, x starlark.Value) (starlark.Value, uint64, error) {
	var size uint64
	tuple, isTuple := x.(starlark.Tuple)
	mapping, isMapping := x.(starlark.Mapping)
	var newTuple starlark.Tuple
	var byKey map[string]starlark.Value
	var whole starlark.Value // x printed whole
	for index := 0; ; index++ {
		i := strings.IndexByte(format, '%')
		if i < 0 {
			size = add(size, uint64(len(format)))
			break
		}
		size = add(size, uint64(i))
		format = format[i+1:]
		if strings.HasPrefix(format, "%") {
			size, format, index = add(size, 1), format[1:], index-1
			continue
		}
		var arg starlark.Value
		key, keyed := "", false
		if strings.HasPrefix(format, "(") {
			j := strings.IndexByte(format, ')')
			if j < 0 || !isMapping {
				break
			}
			key, keyed = format[1:j], true
			format = format[j+1:]
			v, found, _ := mapping.Get(starlark.String(key))
			if !found {
				break
			}
			arg = v
		} else if isTuple {
			if index >= len(tuple) {
				break
			}
			arg = tuple[index]
		} else {
			if index >= 1 {
				break
			}
			arg = x
		}
		if format == "" {
			break
		}
		n, text, err := directiveSize(thread, arg, format[0])
		if err != nil {
			return nil, 0, err
		}
		format = format[1:]
		size = add(size, n)
		switch {
		case text == nil:
		case keyed:
			if byKey == nil {
				byKey = map[string]starlark.Value{}
			}
			byKey[key] = text
		case isTuple:
			if newTuple == nil {
				newTuple = append(starlark.Tuple(nil), tuple...)
			}
			newTuple[index] = text
		default:
			whole = text
		}
	}
	switch {
	case newTuple != nil:
		return newTuple, size, nil
	case isMapping && (byKey != nil || whole != nil):
		m := &renderedMapping{Mapping: mapping, values: byKey}
		if whole != nil {
			m.text = whole.String()
		}
		return m, size, nil
	case whole != nil:
		return whole, size, nil
	}
	return x, size, nil
}

// directiveSize sizes arg formatted by the % conversion c, and for a
// container printed returns its text to format instead.
func directiveSize(thread *starlark.Thread, arg starlark.Value, c byte) (uint64, starlark.Value, error) {
	switch c {
	case 's', 'r':
		return printedSize(thread, arg, c == 's')
	case 'd', 'i', 'o', 'x', 'X':
		if i, ok := arg.(starlark.Int); ok {
			return printedSize(thread, i, true)
		}
		return 330, nil, nil // a float's integer part
	case 'e', 'f', 'g', 'E', 'F', 'G':
		return 330, nil, nil
	case 'c':
		return utf8.UTFMax, nil, nil
	}
	return 0, nil, nil
}

// printedSize sizes arg as str (or repr) prints it; a container is
// printed here, and its text returned to stand in for it.
func printedSize(thread *starlark.Thread, arg starlark.Value, str bool) (uint64, starlark.Value, error) {
	switch v := arg.(type) {
	case starlark.String:
		if str {
			return uint64(len(v)), nil, nil
		}
		return uint64(quotedLen(string(v))), nil, nil
	case starlark.Bytes:
		return uint64(quotedLen(string(v)) + 1), nil, nil
	case starlark.Int:
		if bitLen(v) > maxIntBits {
			return 0, nil, &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("printing an int of %d bits; the VM prints ints of at most %d bits", bitLen(v), maxIntBits)}
		}
		return uint64(bitLen(v)/3 + 3), nil, nil
	case *starlark.List, starlark.Tuple, *starlark.Dict, *starlark.Set:
		text, err := render(thread, v, false)
		if err != nil {
			return 0, nil, err
		}
		return uint64(len(text)), &rendered{text: text, of: v}, nil
	}
	return uint64(len(arg.String())), nil, nil
}

// rendered is a container printed by the VM's printer, standing in for it
// where Starlark's own code would print it (with a cost growing as the
// square of its depth, ignoring the time limit).
type rendered struct {
	text string
	of   starlark.Value
}

func (r *rendered) String() string        { return r.text }
func (r *rendered) Type() string          { return r.of.Type() }
func (r *rendered) Freeze()               {}
func (r *rendered) Truth() starlark.Bool  { return r.of.Truth() }
func (r *rendered) Hash() (uint32, error) { return r.of.Hash() }

// renderedMapping is a mapping for %(key)s whose printed values, and
// itself printed whole, are rendered ahead of time.
type renderedMapping struct {
	starlark.Mapping
	text   string
	values map[string]starlark.Value
}

func (m *renderedMapping) String() string { return m.text }

func (m *renderedMapping) Get(k starlark.Value) (starlark.Value, bool, error) {
	if s, ok := k.(starlark.String); ok {
		if v, ok := m.values[string(s)]; ok {
			return v, true, nil
		}
	}
	return m.Mapping.Get(k)
}
