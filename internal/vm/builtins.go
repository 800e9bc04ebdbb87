package vm

import (
	"fmt"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"batos/internal/image"
	"batos/internal/store"
)

// builtins are what method code may use besides Starlark's universe. They
// reach the image only through the execution on their thread.
var builtins starlark.StringDict

func init() {
	builtins = starlark.StringDict{
		"clone": starlark.NewBuiltin("clone", builtinClone),
		// clone_object is clone under a name a method called clone can
		// still reach (its own def shadows the built-in's name).
		"clone_object": starlark.NewBuiltin("clone_object", builtinClone),
		"oid":          starlark.NewBuiltin("oid", builtinOID),
		"new":          starlark.NewBuiltin("new", builtinNew),
		"slots":        starlark.NewBuiltin("slots", builtinSlots),
		"parents":      starlark.NewBuiltin("parents", builtinParents),
		"has_slot":     starlark.NewBuiltin("has_slot", builtinHasSlot),
		"set_slot":     starlark.NewBuiltin("set_slot", builtinSetSlot),
		"method":       starlark.NewBuiltin("method", builtinMethod),
		"send":         starlark.NewBuiltin("send", builtinSend),
		// The knowledge catalog, reached by name from any method.
		"knowledge_catalog": systemHandle{"knowledge_catalog"},
		"json":              jsonModule(),
		"math":              math.Module,
		"time": &starlarkstruct.Module{Name: "time", Members: starlark.StringDict{
			"now": starlark.NewBuiltin("time.now", builtinNow),
		}},
	}
	for k, v := range universeGuards {
		builtins[k] = v
	}
	predeclared = starlark.StringDict{}
	for _, d := range []starlark.StringDict{builtins, guardBuiltins} {
		for k, v := range d {
			predeclared[k] = v
		}
	}
}

// predeclared are the built-ins and the guards rewritten code calls,
// which no source can name (guard.go).
var predeclared starlark.StringDict

func isPredeclared(name string) bool { _, ok := predeclared[name]; return ok }

// jsonModule is Starlark's json module with each function sized against
// the memory budgets (universe.go), and decode refusing nesting deeper
// than the image can hold: its decoder recurses once per level, and a few
// megabytes of brackets would overflow the Go stack, which no recover
// survives.
func jsonModule() *starlarkstruct.Module {
	members := starlark.StringDict{}
	for k, v := range json.Module.Members {
		members[k] = v
	}
	fn := func(name string) *starlark.Builtin { return json.Module.Members[name].(*starlark.Builtin) }
	members["encode"] = jsonGuard(fn("encode"), sizeJSONEncode)
	members["encode_indent"] = jsonGuard(fn("encode_indent"), sizeJSONEncode)
	members["indent"] = jsonGuard(fn("indent"), sizeJSONIndent)
	members["decode"] = jsonGuard(fn("decode"), sizeJSONDecode)
	return &starlarkstruct.Module{Name: "json", Members: members}
}

// jsonDepth is the deepest bracket nesting in s, outside strings.
func jsonDepth(s string) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

func isBuiltin(name string) bool { _, ok := builtins[name]; return ok }

func executionFor(thread *starlark.Thread, fn string) (*execution, error) {
	ex := executionOf(thread)
	if ex == nil {
		return nil, fmt.Errorf("%s: not inside a batos execution", fn)
	}
	return ex, nil
}

func objectArg(b *starlark.Builtin, v starlark.Value) (*Object, error) {
	o, ok := v.(*Object)
	if !ok {
		return nil, fmt.Errorf("%s: want an object, got %s", b.Name(), v.Type())
	}
	return o, nil
}

// newObject creates an object with slots, converting keyword values.
func (ex *execution) newObject(slots []image.Slot, kwargs []starlark.Tuple) (*Object, error) {
	if !ex.tx.Writable() {
		return nil, fmt.Errorf("%w: cannot create objects", ErrReadOnly)
	}
	if err := ex.writeBack(); err != nil { // clone must see pending changes
		return nil, err
	}
	for _, kw := range kwargs {
		name := string(kw[0].(starlark.String))
		v, err := ex.toImage(kw[1])
		if err != nil {
			return nil, fmt.Errorf("slot %s: %w", name, err)
		}
		slots = setSlot(slots, name, v)
	}
	obj, err := ex.tx.New(slots...)
	if err != nil {
		return nil, err
	}
	return ex.object(obj.OID())
}

func setSlot(slots []image.Slot, name string, v image.Value) []image.Slot {
	for i := range slots {
		if slots[i].Name == name {
			slots[i].Value = v
			return slots
		}
	}
	return append(slots, image.Slot{Name: name, Value: v})
}

// clone(obj, **slots): a new object with a copy of obj's slots (parents
// included, Self-style), then the given slots.
func builtinClone(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var proto starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, nil, 1, &proto); err != nil {
		return nil, err
	}
	o, err := objectArg(b, proto)
	if err != nil {
		return nil, err
	}
	if err := ex.writeBack(); err != nil { // copy what the code changed so far
		return nil, err
	}
	return ex.newObject(o.obj.Slots(), kwargs)
}

// new(parents, **slots): a new object whose parent slots (parent*,
// parent2*, ...) name the given object or objects.
func builtinNew(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var parentsArg starlark.Value = starlark.None
	if err := starlark.UnpackPositionalArgs(b.Name(), args, nil, 0, &parentsArg); err != nil {
		return nil, err
	}
	var parents []starlark.Value
	switch p := parentsArg.(type) {
	case starlark.NoneType:
	case *Object:
		parents = []starlark.Value{p}
	case *starlark.List:
		for i := range p.Len() {
			parents = append(parents, p.Index(i))
		}
	case starlark.Tuple:
		parents = p
	default:
		return nil, fmt.Errorf("new: parents must be an object or a list of objects, got %s", p.Type())
	}
	var slots []image.Slot
	for i, pv := range parents {
		o, err := objectArg(b, pv)
		if err != nil {
			return nil, err
		}
		name := "parent*"
		if i > 0 {
			name = fmt.Sprintf("parent%d*", i+1)
		}
		slots = append(slots, image.Slot{Name: name, Value: image.Ref(o.obj.OID())})
	}
	return ex.newObject(slots, kwargs)
}

// oneObjectArg unpacks the only argument of a built-in that takes an
// object.
func oneObjectArg(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (*Object, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, err
	}
	return objectArg(b, v)
}

// slots(obj): the names of obj's own slots, in order.
func builtinSlots(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	o, err := oneObjectArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	var names []starlark.Value
	for _, n := range o.obj.Names() {
		names = append(names, starlark.String(n))
	}
	return starlark.NewList(names), nil
}

// parents(obj): the objects obj's parent slots name, in slot order.
func builtinParents(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, b.Name())
	if err != nil {
		return nil, err
	}
	o, err := oneObjectArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, s := range o.obj.Slots() {
		if ref, ok := s.Value.(image.Ref); ok && image.IsParentSlot(s.Name) {
			p, err := ex.object(store.OID(ref))
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return starlark.NewList(out), nil
}

// has_slot(obj, name): whether obj or a parent has the slot.
func builtinHasSlot(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var v starlark.Value
	var name string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &v, &name); err != nil {
		return nil, err
	}
	o, err := objectArg(b, v)
	if err != nil {
		return nil, err
	}
	_, ok, err := ex.lookup(o.obj, name)
	return starlark.Bool(ok), err
}

// oid(obj): the object's OID as users see it, "oid:N".
func builtinOID(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	o, err := oneObjectArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	return starlark.String(o.obj.OID().String()), nil
}

// set_slot(obj, name, value): assigns a slot whose name is not an
// identifier, such as a parent slot "parent*".
func builtinSetSlot(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v, value starlark.Value
	var name string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 3, &v, &name, &value); err != nil {
		return nil, err
	}
	o, err := objectArg(b, v)
	if err != nil {
		return nil, err
	}
	return starlark.None, o.SetField(name, value)
}

// method(source): method source to store in a slot. It is checked when
// stored under a name (the function must be named like the slot) and
// compiled when first called.
func builtinMethod(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var source string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &source); err != nil {
		return nil, err
	}
	if _, err := fileOptions.Parse("method.star", source, 0); err != nil {
		return nil, fmt.Errorf("method: %w", err)
	}
	return &methodValue{source: source}, nil
}

// send(obj, "selector", *args, **kwargs): a message send by name.
func builtinSend(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("send: want send(obj, selector, *args), got %d arguments", len(args))
	}
	o, err := objectArg(b, args[0])
	if err != nil {
		return nil, err
	}
	sel, ok := args[1].(starlark.String)
	if !ok {
		return nil, fmt.Errorf("send: selector must be a string, got %s", args[1].Type())
	}
	if err := o.ex.checkDepth(thread, string(sel)); err != nil {
		return nil, err
	}
	return o.send(thread, string(sel), args[2:], kwargs)
}

// time.now(): seconds since the Unix epoch from the VM's clock.
func builtinNow(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex, err := executionFor(thread, b.Name())
	if err != nil {
		return nil, err
	}
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	return starlark.Float(float64(ex.vm.opts.Now().UnixNano()) / 1e9), nil
}
