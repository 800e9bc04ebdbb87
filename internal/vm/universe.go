package vm

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"batos/internal/image"
)

// Guarded universe built-ins: method code and Eval input see these in
// place of Starlark's built-ins of the same names. Each sizes what the
// call will allocate (from its argument's length: a range has one),
// reserves it (budget.go), then calls Starlark's, whose errors are
// unchanged. Those that print (str, repr, print, fail) print the
// containers among their arguments with the VM's printer first.

// argsSizer estimates what a call allocates, and may return other
// positional arguments to call with.
type argsSizer func(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, error)

var universeGuards = func() starlark.StringDict {
	sizers := map[string]argsSizer{
		"list":      perElement(boxedSize),
		"tuple":     perElement(boxedSize),
		"sorted":    perElement(boxedSize),
		"reversed":  perElement(boxedSize),
		"set":       perElement(entrySize),
		"enumerate": perElement(slotSize + 2*boxedSize),
		"dict":      sizeDict,
		"zip":       sizeZip,
		"int":       sizeInt,
		"str":       sizeStr,
		"repr":      printing(false, 1),
		"print":     printing(true, 2),
		"fail":      printing(true, 1),
	}
	for _, name := range []string{"list", "tuple", "sorted", "reversed", "set", "enumerate", "dict", "zip", "min", "max"} {
		sizers[name] = iterating(name, sizers[name])
	}
	d := starlark.StringDict{
		"getattr": starlark.NewBuiltin("getattr", guardedGetattr),
		"any":     guardedAnyAll("any"),
		"all":     guardedAnyAll("all"),
	}
	for name, size := range sizers {
		d[name] = shadow(name, size)
	}
	return d
}()

// shadow is the guarded built-in name.
func shadow(name string, size argsSizer) *starlark.Builtin {
	real := starlark.Universe[name].(*starlark.Builtin)
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		n, args, err := size(thread, args, kwargs)
		if err != nil {
			return nil, tripped(thread, err)
		}
		held, err := reserve(thread, n)
		if err != nil {
			return nil, tripped(thread, err)
		}
		defer release(held)
		v, err := real.CallInternal(thread, args, kwargs)
		if err == nil && makesTuples[name] {
			if err = checkNesting(v); err != nil {
				return nil, tripped(thread, err)
			}
		}
		return v, err
	})
}

// makesTuples are the built-ins whose tuples nest what they are given
// (nesting.go).
var makesTuples = map[string]bool{"tuple": true, "zip": true, "enumerate": true}

// perElement sizes a call making a container of its first argument's
// elements, each taking size bytes.
func perElement(size uint64) argsSizer {
	return func(_ *starlark.Thread, args starlark.Tuple, _ []starlark.Tuple) (uint64, starlark.Tuple, error) {
		if len(args) == 0 {
			return 0, args, nil
		}
		return times(size, length(args[0])), args, nil
	}
}

func sizeDict(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, error) {
	n := uint64(len(kwargs))
	if len(args) > 0 {
		n = add(n, length(args[0]))
	}
	return times(entrySize, n), args, nil
}

func sizeZip(_ *starlark.Thread, args starlark.Tuple, _ []starlark.Tuple) (uint64, starlark.Tuple, error) {
	if len(args) == 0 {
		return 0, args, nil
	}
	n := length(args[0])
	for _, a := range args[1:] {
		n = min(n, length(a))
	}
	return times(n, slotSize+boxedSize+slotSize*uint64(len(args))), args, nil
}

// maxIntDigits bounds the strings int parses: parsing costs the square
// of the length.
const maxIntDigits = maxIntBits / 3

func sizeInt(_ *starlark.Thread, args starlark.Tuple, _ []starlark.Tuple) (uint64, starlark.Tuple, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok && len(s) > maxIntDigits {
			return 0, nil, &LimitError{Limit: MemoryLimit, Detail: fmt.Sprintf("int of a string of %d characters; the VM parses at most %d", len(s), maxIntDigits)}
		}
	}
	return 0, args, nil
}

// printing sizes a call printing its arguments (as str does, or as
// repr), charged copies times: it prints the containers among them.
func printing(str bool, copies uint64) argsSizer {
	return func(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, error) {
		sep := uint64(1)
		for _, kv := range kwargs {
			if s, ok := kv[1].(starlark.String); ok && kv[0] == starlark.String("sep") {
				sep = uint64(len(s))
			}
		}
		var size uint64
		out, copied := args, false
		for i, a := range args {
			n, text, err := printedSize(thread, a, str)
			if err != nil {
				return 0, nil, err
			}
			size = add(size, add(n, sep))
			if text != nil {
				if !copied {
					out, copied = append(starlark.Tuple(nil), args...), true
				}
				out[i] = text
			}
		}
		return times(size, copies), out, nil
	}
}

// sizeStr is printing, except that str of a string is that string.
func sizeStr(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, error) {
	if len(args) == 1 {
		if _, ok := args[0].(starlark.String); ok {
			return 0, args, nil
		}
	}
	return printing(true, 1)(thread, args, kwargs)
}

// guardedGetattr is getattr, answering guarded methods as x.name does.
func guardedGetattr(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) >= 2 && len(kwargs) == 0 {
		if name, ok := args[1].(starlark.String); ok && sizersOf(args[0])[string(name)] != nil {
			return starlark.NewBuiltin(string(name), callGuarded).BindReceiver(args[0]), nil
		}
	}
	return starlark.Universe["getattr"].(*starlark.Builtin).CallInternal(thread, args, kwargs)
}

// jsonGuard wraps a function of Starlark's json module with a sizer.
func jsonGuard(fn *starlark.Builtin, size func(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, error)) *starlark.Builtin {
	return starlark.NewBuiltin(fn.Name(), func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		n, err := size(thread, args, kwargs)
		if err != nil {
			return nil, tripped(thread, err)
		}
		held, err := reserve(thread, n)
		if err != nil {
			return nil, tripped(thread, err)
		}
		defer release(held)
		return fn.CallInternal(thread, args, kwargs)
	})
}

// sizeJSONEncode bounds json.encode and json.encode_indent: JSON text is
// at most three times a value's repr (a string's escapes, at worst),
// plus a line of indentation per value. The value may be nested as deep
// as the image holds, not deeper: the encoder recurses, and looks each
// container up in the path to it.
func sizeJSONEncode(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, error) {
	var x starlark.Value
	prefix, indent := "", ""
	if err := starlark.UnpackArgs("encode", args, kwargs, "x", &x, "prefix?", &prefix, "indent?", &indent); err != nil {
		return 0, nil
	}
	p := &printer{ex: executionOf(thread), count: true, maxDepth: image.MaxDepth}
	if err := p.value(x); err != nil {
		return 0, err
	}
	lines := uint64(p.values + 1)
	return add(times(3, uint64(p.n)), times(lines, uint64(1+len(prefix)+p.deepest*len(indent)))), nil
}

// sizeJSONIndent bounds json.indent: a line, at most, per bracket or
// comma, each indented as deep as the text nests.
func sizeJSONIndent(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, error) {
	var s, prefix, indent string
	if err := starlark.UnpackArgs("indent", args, kwargs, "str", &s, "prefix?", &prefix, "indent?", &indent); err != nil {
		return 0, nil
	}
	lines := uint64(1)
	for _, c := range "[]{},:" {
		lines += uint64(strings.Count(s, string(c)))
	}
	return add(uint64(len(s)), times(lines, uint64(1+len(prefix)+jsonDepth(s)*len(indent)))), nil
}

// sizeJSONDecode bounds json.decode: a value takes up to about sixteen
// times its text (two bytes "0," become a 16-byte list element).
func sizeJSONDecode(_ *starlark.Thread, args starlark.Tuple, _ []starlark.Tuple) (uint64, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok {
			if d := jsonDepth(string(s)); d > image.MaxDepth {
				return 0, fmt.Errorf("json.decode: nesting deeper than %d levels", image.MaxDepth)
			}
			return times(16, uint64(len(s))), nil
		}
	}
	return 0, nil
}
