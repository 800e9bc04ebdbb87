package vm

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"

	"batos/internal/image"
)

// result makes an execution's Result from its answer v, within
// MaxResult: its repr is printed no further than the limit, its value is
// sized before it is converted, and the output is cut to what room is
// left. A result that does not fit is a ReplyLimit error: the execution
// itself finished.
func (ex *execution) result(v starlark.Value) (Result, error) {
	limit := ex.vm.opts.MaxResult
	if size, ok := scalarSize(v, limit); ok {
		// The common case, without a printer.
		res := Result{Repr: v.String()}
		res.Output = ex.output(limit - len(res.Repr) - size)
		res.Value, _ = ex.toImage(v)
		return res, nil
	}
	p := &printer{ex: ex, max: limit}
	err := p.value(v)
	var le *LimitError
	switch {
	case errors.Is(err, errTooBig):
		return Result{}, ex.tooBig(v, limit)
	case errors.As(err, &le):
		return Result{}, &LimitError{Limit: ReplyLimit, Detail: "the result cannot be printed: " + le.Detail}
	case err != nil:
		// The time limit, or the caller gone, while printing.
		return Result{}, ex.fail(err)
	}
	repr := string(p.buf)
	size, ok := valueSize(v, limit-len(repr))
	if !ok {
		return Result{}, &LimitError{Limit: ReplyLimit, Detail: fmt.Sprintf("the result, its repr of %s and its value of more than %s, is over the %s reply limit", mib(uint64(len(repr))), mib(uint64(limit-len(repr))), mib(uint64(limit)))}
	}
	res := Result{Repr: repr, Output: ex.output(limit - len(repr) - size)}
	if iv, err := ex.toImage(v); err == nil {
		res.Value = iv
	}
	return res, nil
}

// tooBig is the ReplyLimit error of a result whose repr passes limit.
func (ex *execution) tooBig(v starlark.Value, limit int) error {
	size := "more than " + mib(uint64(limit))
	switch v := v.(type) {
	case starlark.String:
		size = mib(uint64(len(v)))
	case starlark.Bytes:
		size = mib(uint64(len(v)))
	}
	return &LimitError{Limit: ReplyLimit, Detail: fmt.Sprintf("its result, %s, is over the %s reply limit", size, mib(uint64(limit)))}
}

// output is what print wrote, cut to room bytes, with a note of what was
// dropped.
func (ex *execution) output(room int) string {
	out := ex.out.String()
	dropped := ex.dropped
	if len(out) > room {
		dropped += len(out) - max(room, 0)
		out = out[:max(room, 0)]
	}
	if dropped > 0 {
		out += fmt.Sprintf("... %d bytes of output dropped: over the %s reply limit\n", dropped, mib(uint64(ex.vm.opts.MaxResult)))
	}
	return out
}

// scalarSize is valueSize of a value that is neither a container nor a
// string or int too big to print at once, which ok says.
func scalarSize(v starlark.Value, limit int) (size int, ok bool) {
	switch v := v.(type) {
	case starlark.NoneType, starlark.Bool:
		return 1, true
	case starlark.Float:
		return 9, true
	case starlark.Int:
		if _, small := v.Int64(); small {
			return 9, true
		}
	case starlark.String:
		if len(v) < min(ignoreBelow, limit/8) {
			return 5 + len(v), true
		}
	case *Object:
		return 10, true
	}
	return 0, false
}

// valueSize estimates how many bytes the bridge's encoding of v as an
// image value takes (msgpack), stopping once it passes limit (then ok is
// false). A value that cannot be stored (too deep, or holding a function)
// has no value in the result, and takes nothing.
func valueSize(v starlark.Value, limit int) (size int, ok bool) {
	type frame struct {
		v     starlark.Value
		i     int
		iter  starlark.Iterator
		depth int
		dict  *starlark.Dict
	}
	var stack []frame
	defer func() {
		for _, f := range stack {
			if f.iter != nil {
				f.iter.Done()
			}
		}
	}()
	const header = 5 // the most a msgpack length header takes
	visit := func(x starlark.Value, depth int) bool {
		if depth > image.MaxDepth {
			return false
		}
		switch x := x.(type) {
		case starlark.NoneType, starlark.Bool:
			size++
		case starlark.Int, starlark.Float:
			size += 9
		case starlark.String:
			size += header + len(x)
		case starlark.Bytes:
			size += header + len(x)
		case *Object:
			size += 10
		case *methodValue:
			size += 16 + header + len(x.source)
		case blobValue:
			size += 96
		case primitiveValue:
			size += 24 + len(x.name)
		case *starlark.List, starlark.Tuple:
			size += header
			stack = append(stack, frame{v: x, depth: depth})
		case *starlark.Dict:
			size += header
			stack = append(stack, frame{v: x, iter: x.Iterate(), depth: depth, dict: x})
		default:
			return false
		}
		return true
	}
	if !visit(v, 0) {
		return 0, true
	}
	for len(stack) > 0 {
		if size > limit {
			return size, false
		}
		f := &stack[len(stack)-1]
		var next starlark.Value
		switch c := f.v.(type) {
		case *starlark.List:
			if f.i < c.Len() {
				next = c.Index(f.i)
			}
		case starlark.Tuple:
			if f.i < len(c) {
				next = c[f.i]
			}
		case *starlark.Dict:
			var k starlark.Value
			if f.iter.Next(&k) {
				// The key, then the value: a pair array's header too.
				size++
				if !visit(k, f.depth+1) {
					return 0, true
				}
				val, _, _ := c.Get(k)
				next = val
			}
		}
		f.i++
		if next == nil {
			if f.iter != nil {
				f.iter.Done()
			}
			stack = stack[:len(stack)-1]
			continue
		}
		depth := f.depth + 1
		if !visit(next, depth) {
			return 0, true
		}
	}
	return size, size <= limit
}
