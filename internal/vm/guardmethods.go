package vm

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Guarded methods: x.name for a name below is rewritten to $.name(x),
// which answers, when x is of a type whose method of that name can
// allocate much more than x and the arguments hold, a method bound to x
// that sizes the call before making it; for any other x, x.name as
// Starlark reads it.

// methodSizer estimates what recv.name(*args, **kwargs) allocates. It
// may return other arguments to call with (format's printed containers).
// Where the arguments are wrong it estimates nothing: the method then
// reports the error.
type methodSizer func(thread *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error)

var (
	stringSizers = map[string]methodSizer{
		"join": sizeJoin, "replace": sizeReplace, "format": sizeFormat,
		"split": sizeSplit, "rsplit": sizeSplit, "splitlines": sizeSplitlines,
		"lower": sizeCase, "upper": sizeCase, "title": sizeCase, "capitalize": sizeCase,
	}
	listSizers = map[string]methodSizer{"extend": sizeExtend}
	dictSizers = map[string]methodSizer{"items": sizeItems, "keys": sizeKeys, "values": sizeKeys, "update": sizeUpdate, "popitem": sizeNothing}
	setSizers  = map[string]methodSizer{"union": sizeUnion, "update": sizeUnion, "symmetric_difference": sizeUnion}
)

// iteratingMethods are the guarded methods that iterate their
// arguments (iterate.go).
var iteratingMethods = map[string]bool{"join": true, "extend": true, "update": true, "union": true, "symmetric_difference": true}

// guardedMethods are the names rewritten.
var guardedMethods = func() map[string]bool {
	names := map[string]bool{}
	for _, sizers := range []map[string]methodSizer{stringSizers, listSizers, dictSizers, setSizers} {
		for name := range sizers {
			names[name] = true
		}
	}
	return names
}()

func sizersOf(v starlark.Value) map[string]methodSizer {
	switch v.(type) {
	case starlark.String:
		return stringSizers
	case *starlark.List:
		return listSizers
	case *starlark.Dict:
		return dictSizers
	case *starlark.Set:
		return setSizers
	}
	return nil
}

// methodGuard is $.name.
func methodGuard(name string) *starlark.Builtin {
	bound := starlark.NewBuiltin(name, callGuarded)
	get := starlarkHelper("attr.star", "def get(x):\n    return x."+name+"\n", "get")
	return starlark.NewBuiltin(guardMethod+name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x := args[0]
		if sizersOf(x)[name] != nil {
			return bound.BindReceiver(x), nil
		}
		if o, ok := x.(*Object); ok {
			v, err := o.Attr(name)
			if err != nil {
				return nil, opFail(thread, err)
			}
			return v, nil
		}
		// Starlark's own x.name, for its errors (and their spelling
		// hints) as much as for its values.
		return callHelper(thread, get(), x)
	})
}

// guardCalleeFn is $call(x, "name"), what a call x.name(...) calls: a
// guarded method, for an object what it understands or else a pending
// message (Object.callee), otherwise x.name.
func guardCalleeFn(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x, name := args[0], string(args[1].(starlark.String))
	if sizersOf(x)[name] != nil {
		return starlark.NewBuiltin(name, callGuarded).BindReceiver(x), nil
	}
	if o, ok := x.(*Object); ok {
		v, err := o.callee(name)
		if err != nil {
			return nil, opFail(thread, err)
		}
		return v, nil
	}
	if h, ok := x.(starlark.HasAttrs); ok {
		if v, err := h.Attr(name); err == nil && v != nil {
			return v, nil
		}
	}
	// Starlark's own x.name, for its error and spelling hint: compiled
	// for this error only (name is an identifier the parser read).
	get := starlarkHelper("attr.star", "def get(x):\n    return x."+name+"\n", "get")
	return callHelper(thread, get(), x)
}

// starlarkHelper compiles, on first use, a small Starlark file defining
// fn: the guards call Starlark's own operation through it where they want
// Starlark's errors (with their spelling hints). Compiling on first use
// keeps them out of every batos command's start-up.
func starlarkHelper(file, src, fn string) func() *starlark.Function {
	return sync.OnceValue(func() *starlark.Function {
		thread := &starlark.Thread{Name: file}
		globals, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, file, src, nil)
		if err != nil {
			panic(err) // the guards' own source
		}
		globals.Freeze()
		return globals[fn].(*starlark.Function)
	})
}

// callHelper calls a helper, its error reported as the guard's
// operation's own.
func callHelper(thread *starlark.Thread, fn *starlark.Function, args ...starlark.Value) (starlark.Value, error) {
	v, err := starlark.Call(thread, fn, args, nil)
	if err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			err = errors.New(ee.Msg)
		}
		return nil, opFail(thread, err)
	}
	return v, nil
}

// callGuarded is a guarded method bound to its receiver: it sizes the
// call, then makes it.
func callGuarded(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	recv := b.Receiver()
	if iteratingMethods[b.Name()] {
		var err error
		if args, err = boundIterables(thread, b.Name(), args); err != nil {
			return nil, tripped(thread, err)
		}
	}
	n, args, kwargs, err := sizersOf(recv)[b.Name()](thread, recv, args, kwargs)
	if err != nil {
		return nil, tripped(thread, err)
	}
	held, err := reserve(thread, n)
	if err != nil {
		return nil, tripped(thread, err)
	}
	defer release(held)
	m, err := recv.(starlark.HasAttrs).Attr(b.Name())
	if err != nil {
		return nil, err
	}
	v, err := m.(*starlark.Builtin).CallInternal(thread, args, kwargs)
	if err == nil && (b.Name() == "items" || b.Name() == "popitem") {
		if err = checkNesting(v); err != nil {
			return nil, tripped(thread, err)
		}
	}
	return v, err
}

// sizeNothing sizes a method that allocates little but makes a tuple whose
// nesting is checked (popitem's key-value pair).
func sizeNothing(_ *starlark.Thread, _ starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	return 0, args, kwargs, nil
}

// eachOf calls fn with each element of v, a list, tuple or other
// iterable, until it answers false.
func eachOf(v starlark.Value, fn func(starlark.Value) bool) {
	switch v := v.(type) {
	case *starlark.List:
		for i := range v.Len() {
			if !fn(v.Index(i)) {
				return
			}
		}
		return
	case starlark.Tuple:
		for _, x := range v {
			if !fn(x) {
				return
			}
		}
		return
	}
	iter := starlark.Iterate(v)
	if iter == nil {
		return
	}
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) && fn(x) {
	}
}

func sizeJoin(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	if len(args) != 1 {
		return 0, args, kwargs, nil
	}
	sep := uint64(len(recv.(starlark.String)))
	var n, elems uint64
	eachOf(args[0], func(x starlark.Value) bool {
		s, ok := x.(starlark.String)
		n, elems = add(n, uint64(len(s))), elems+1
		return ok
	})
	if elems > 0 {
		n = add(n, times(sep, elems-1))
	}
	return n, args, kwargs, nil
}

func sizeReplace(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	s := string(recv.(starlark.String))
	if len(args) < 2 {
		return 0, args, kwargs, nil
	}
	old, ok1 := args[0].(starlark.String)
	repl, ok2 := args[1].(starlark.String)
	if !ok1 || !ok2 || len(repl) <= len(old) {
		return uint64(len(s)), args, kwargs, nil
	}
	var occ uint64
	if old == "" {
		occ = uint64(utf8.RuneCountInString(s) + 1)
	} else {
		occ = uint64(strings.Count(s, string(old)))
	}
	if len(args) > 2 {
		if c, ok := args[2].(starlark.Int); ok {
			if k, ok := c.Int64(); ok && k >= 0 {
				occ = min(occ, uint64(k))
			}
		}
	}
	return add(uint64(len(s)), times(occ, uint64(len(repl)-len(old)))), args, kwargs, nil
}

func sizeSplit(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	s := string(recv.(starlark.String))
	var sep starlark.Value = starlark.None
	maxsplit := -1
	if err := starlark.UnpackArgs("split", args, kwargs, "sep?", &sep, "maxsplit?", &maxsplit); err != nil {
		return 0, args, kwargs, nil
	}
	var pieces uint64
	if sep, ok := sep.(starlark.String); ok && sep != "" {
		pieces = uint64(strings.Count(s, string(sep))) + 1
	} else {
		pieces = spaces(s) + 1
	}
	if maxsplit >= 0 {
		pieces = min(pieces, uint64(maxsplit)+1)
	}
	return times(boxedSize, pieces), args, kwargs, nil
}

func sizeSplitlines(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	s := string(recv.(starlark.String))
	lines := uint64(strings.Count(s, "\n")+strings.Count(s, "\r")) + 1
	return times(boxedSize, lines), args, kwargs, nil
}

// spaces counts the runes of s that split() splits at: Unicode spaces.
func spaces(s string) uint64 {
	var n uint64
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiSpace[c] {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			n++
		}
		i += size
	}
	return n
}

var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// sizeCase is the size of s with its case changed, rune by rune, the
// longest of its lower, upper and title case; a byte that is not UTF-8
// becomes U+FFFD, three bytes.
func sizeCase(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	s := string(recv.(starlark.String))
	var n uint64
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n, i = n+1, i+1
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r == utf8.RuneError {
			n += utf8.UTFMax - 1
			continue
		}
		n += uint64(max(utf8.RuneLen(unicode.ToLower(r)), utf8.RuneLen(unicode.ToUpper(r)), utf8.RuneLen(unicode.ToTitle(r))))
	}
	return n, args, kwargs, nil
}

func sizeExtend(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	if len(args) != 1 {
		return 0, args, kwargs, nil
	}
	return times(slotSize, add(length(recv), length(args[0]))), args, kwargs, nil
}

func sizeItems(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	return times(slotSize+2*boxedSize, length(recv)), args, kwargs, nil
}

func sizeKeys(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	return times(slotSize, length(recv)), args, kwargs, nil
}

func sizeUpdate(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	n := add(length(recv), uint64(len(kwargs)))
	if len(args) > 0 {
		n = add(n, length(args[0]))
	}
	return times(entrySize, n), args, kwargs, nil
}

func sizeUnion(_ *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	n := length(recv)
	for _, a := range args {
		n = add(n, length(a))
	}
	return times(entrySize, n), args, kwargs, nil
}

// sizeFormat walks the format's fields as Starlark's str.format does,
// sizing each, and prints the containers it prints with the VM's
// printer, passing their text instead.
func sizeFormat(thread *starlark.Thread, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (uint64, starlark.Tuple, []starlark.Tuple, error) {
	format := string(recv.(starlark.String))
	var size uint64
	newArgs, newKwargs := args, kwargs
	copied, copiedKw := false, false
	index := 0
	for {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			return add(size, uint64(len(format))), newArgs, newKwargs, nil
		}
		size = add(size, uint64(i))
		if strings.HasPrefix(format[i+1:], "{") {
			size, format = add(size, 1), format[i+2:]
			continue
		}
		format = format[i+1:]
		j := strings.IndexByte(format, '}')
		if j < 0 {
			return size, newArgs, newKwargs, nil
		}
		name, conv := fieldParts(format[:j])
		format = format[j+1:]
		var arg starlark.Value
		set := func(starlark.Value) {}
		if pos, ok := fieldIndex(name, &index); ok {
			if pos >= len(args) {
				return size, newArgs, newKwargs, nil
			}
			arg = args[pos]
			set = func(v starlark.Value) {
				if !copied {
					newArgs, copied = append(starlark.Tuple(nil), args...), true
				}
				newArgs[pos] = v
			}
		} else {
			for k, kv := range kwargs {
				if string(kv[0].(starlark.String)) == name {
					arg = kv[1]
					set = func(v starlark.Value) {
						if !copiedKw {
							newKwargs, copiedKw = append([]starlark.Tuple(nil), kwargs...), true
						}
						newKwargs[k] = starlark.Tuple{kv[0], v}
					}
					break
				}
			}
			if arg == nil {
				return size, newArgs, newKwargs, nil
			}
		}
		n, text, err := printedSize(thread, arg, conv != "r")
		if err != nil {
			return 0, nil, nil, err
		}
		size = add(size, n)
		if text != nil {
			set(text)
		}
	}
}

// fieldParts splits a replacement field "name!conv:spec" into its name
// and conversion.
func fieldParts(field string) (name, conv string) {
	if i := strings.IndexByte(field, '!'); i >= 0 {
		name, conv = field[:i], field[i+1:]
		if j := strings.IndexByte(conv, ':'); j >= 0 {
			conv = conv[:j]
		}
		return name, conv
	}
	if i := strings.IndexByte(field, ':'); i >= 0 {
		return field[:i], "s"
	}
	return field, "s"
}

// fieldIndex is the positional argument a field names: the next one for
// "", the number for a decimal.
func fieldIndex(name string, next *int) (int, bool) {
	if name == "" {
		*next++
		return *next - 1, true
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(name)
	return n, err == nil
}
