package vm

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
	"batos/internal/store"
)

// toStarlark converts an image value for method code. References become
// objects of this execution; containers become fresh Starlark containers.
func (ex *execution) toStarlark(v image.Value) (starlark.Value, error) {
	switch v := v.(type) {
	case nil, image.NoneType:
		return starlark.None, nil
	case image.Bool:
		return starlark.Bool(v), nil
	case image.Int:
		return starlark.MakeInt64(int64(v)), nil
	case image.Float:
		return starlark.Float(v), nil
	case image.String:
		return starlark.String(v), nil
	case image.Bytes:
		return starlark.Bytes(v), nil
	case image.Ref:
		return ex.object(store.OID(v))
	case *image.List:
		elems := make([]starlark.Value, len(v.Elems))
		for i, e := range v.Elems {
			var err error
			if elems[i], err = ex.toStarlark(e); err != nil {
				return nil, err
			}
		}
		return starlark.NewList(elems), nil
	case image.Tuple:
		t := make(starlark.Tuple, len(v))
		for i, e := range v {
			var err error
			if t[i], err = ex.toStarlark(e); err != nil {
				return nil, err
			}
		}
		return t, nil
	case *image.Dict:
		d := starlark.NewDict(v.Len())
		for k, val := range v.All() {
			sk, err := ex.toStarlark(k)
			if err != nil {
				return nil, err
			}
			sv, err := ex.toStarlark(val)
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(sk, sv); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *image.Method:
		return &methodValue{source: v.Source}, nil
	case image.BlobRef:
		return blobValue{v}, nil
	case image.Primitive:
		return primitiveValue{v.Name}, nil
	}
	return nil, fmt.Errorf("vm: cannot convert %s for method code", image.Repr(v))
}

// toStarlarkFrozen converts a value that method code may read but not
// change in place.
func (ex *execution) toStarlarkFrozen(v image.Value) (starlark.Value, error) {
	sv, err := ex.toStarlark(v)
	if err == nil {
		sv.Freeze()
	}
	return sv, err
}

// slotValue converts an own slot's value. A container is handed out once
// per execution and remembered, so that changes made to it in place are
// written back to the slot when the execution ends; in a read-only
// execution it is frozen instead.
func (ex *execution) slotValue(o *image.Object, name string, v image.Value) (starlark.Value, error) {
	if !isContainer(v) {
		return ex.toStarlark(v)
	}
	key := slotKey{o.OID(), name}
	if sv, ok := ex.slots[key]; ok {
		return sv, nil
	}
	if !ex.tx.Writable() {
		return ex.toStarlarkFrozen(v)
	}
	sv, err := ex.toStarlark(v)
	if err != nil {
		return nil, err
	}
	if ex.slots == nil {
		ex.slots = make(map[slotKey]starlark.Value)
	}
	ex.slots[key] = sv
	return sv, nil
}

func isContainer(v image.Value) bool {
	switch v.(type) {
	case *image.List, *image.Dict, image.Tuple:
		return true
	}
	return false
}

// writeBack stores the containers handed out back into their slots, at
// the end of the execution and before anything reads the image directly
// (clone, primitives, the handler). The image's change detection leaves
// untouched ones unwritten. Read-only executions hand out frozen copies
// and have nothing to write.
func (ex *execution) writeBack() error {
	if !ex.tx.Writable() {
		return nil
	}
	for key, sv := range ex.slots {
		v, err := ex.toImage(sv)
		if err != nil {
			return fmt.Errorf("slot %s of %s: %w", key.name, key.oid, err)
		}
		o, err := ex.tx.Object(key.oid)
		if err != nil {
			return err
		}
		if err := o.Set(key.name, v); err != nil {
			return err
		}
	}
	return nil
}

// toImage converts a Starlark value to store it in a slot: within what
// a record can hold (see expansion).
func (ex *execution) toImage(v starlark.Value) (image.Value, error) {
	switch v.(type) {
	case *starlark.List, starlark.Tuple, *starlark.Dict:
	default:
		return ex.convert(v, 0)
	}
	n, err := ex.expansion(v, store.MaxRecordSize, MemoryLimit, "a record holds at most "+mib(store.MaxRecordSize))
	if err != nil {
		return nil, err
	}
	return ex.convertCounted(v, n)
}

// convertCounted converts v, of n values, with their memory reserved.
func (ex *execution) convertCounted(v starlark.Value, n uint64) (image.Value, error) {
	held, err := ex.reserve(times(n, slotSize))
	if err != nil {
		return nil, err
	}
	defer release(held)
	return ex.convert(v, 0)
}

// expansion counts the image values converting v makes, a container
// shared in v counted each time it is reached (the image has no sharing:
// a = [a, a] 25 times over is 2^26 values), and refuses v with a limit
// error as soon as they pass max, each taking at least a byte where what
// was said stores or returns it (why). It looks at the execution's time
// limit and cancellation as it goes. Containers nested too deep are not
// counted: convert refuses them.
func (ex *execution) expansion(v starlark.Value, max uint64, limit Limit, why string) (uint64, error) {
	// What the memory budget allows too: each value takes a slot.
	if m := ex.vm.opts.MaxMemory / slotSize; m < max {
		max, why = m, "the values would take more than the "+mib(ex.vm.opts.MaxMemory)+" an execution may use"
	}
	var n uint64
	var walk func(v starlark.Value, depth int) error
	walk = func(v starlark.Value, depth int) error {
		if n++; n > max {
			return &LimitError{Limit: limit, Detail: fmt.Sprintf("the value expands to more than %d values (a container it holds more than once is counted each time); %s", max, why)}
		}
		if n%4096 == 0 {
			if err := ex.stopped(); err != nil {
				return err
			}
		}
		if depth > image.MaxDepth {
			return nil
		}
		switch v := v.(type) {
		case *starlark.List:
			for i := range v.Len() {
				if err := walk(v.Index(i), depth+1); err != nil {
					return err
				}
			}
		case starlark.Tuple:
			for _, e := range v {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case *starlark.Dict:
			for _, item := range v.Items() {
				if err := walk(item[0], depth+1); err != nil {
					return err
				}
				if err := walk(item[1], depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk(v, 0)
	return n, err
}

// convert converts v, depth levels down.
func (ex *execution) convert(v starlark.Value, depth int) (image.Value, error) {
	if depth > image.MaxDepth {
		return nil, &LimitError{Limit: NestingLimit, Detail: fmt.Sprintf("value nested more than %d levels (does it contain itself?)", image.MaxDepth)}
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return image.None, nil
	case starlark.Bool:
		return image.Bool(v), nil
	case starlark.Int:
		if n, ok := v.Int64(); ok {
			return image.Int(n), nil
		}
		return image.IntFromBig(v.BigInt())
	case starlark.Float:
		return image.Float(v), nil
	case starlark.String:
		return image.String(v), nil
	case starlark.Bytes:
		return image.Bytes(v), nil
	case *Object:
		return image.Ref(v.obj.OID()), nil
	case *starlark.List:
		elems := make([]image.Value, v.Len())
		for i := range v.Len() {
			var err error
			if elems[i], err = ex.convert(v.Index(i), depth+1); err != nil {
				return nil, err
			}
		}
		return image.NewList(elems...), nil
	case starlark.Tuple:
		t := make(image.Tuple, len(v))
		for i, e := range v {
			var err error
			if t[i], err = ex.convert(e, depth+1); err != nil {
				return nil, err
			}
		}
		return t, nil
	case *starlark.Dict:
		d := &image.Dict{}
		for _, item := range v.Items() {
			k, err := ex.convert(item[0], depth+1)
			if err != nil {
				return nil, err
			}
			val, err := ex.convert(item[1], depth+1)
			if err != nil {
				return nil, err
			}
			if err := d.Set(k, val); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *methodValue:
		return &image.Method{Source: v.source}, nil
	case blobValue:
		return v.ref, nil
	case primitiveValue:
		return image.Primitive{Name: v.name}, nil
	case *boundMethod:
		return nil, fmt.Errorf("cannot store a bound method; store method(source) instead")
	}
	return nil, fmt.Errorf("cannot store a %s in the image (storable: None, bool, int, float, string, bytes, list, dict, tuple, object, method)", v.Type())
}

func (ex *execution) toImageAll(args starlark.Tuple) ([]image.Value, error) {
	out := make([]image.Value, len(args))
	for i, a := range args {
		var err error
		if out[i], err = ex.toImage(a); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return out, nil
}

// methodValue is method source as a value: what method(source) returns and
// what reading a method slot without calling it would store.
type methodValue struct{ source string }

func (m *methodValue) String() string        { return fmt.Sprintf("<method source, %d bytes>", len(m.source)) }
func (m *methodValue) Type() string          { return "method_source" }
func (m *methodValue) Freeze()               {}
func (m *methodValue) Truth() starlark.Bool  { return starlark.True }
func (m *methodValue) Hash() (uint32, error) { return starlark.String(m.source).Hash() }

// blobValue is a blob reference; method code can pass it around but not
// read the blob.
type blobValue struct{ ref image.BlobRef }

func (b blobValue) String() string {
	return fmt.Sprintf("<blob %s, %d bytes>", b.ref.Digest, b.ref.Size)
}
func (b blobValue) Type() string         { return "blob" }
func (b blobValue) Freeze()              {}
func (b blobValue) Truth() starlark.Bool { return starlark.True }
func (b blobValue) Hash() (uint32, error) {
	return uint32(b.ref.Digest[0]) | uint32(b.ref.Digest[1])<<8, nil
}

// primitiveValue is a primitive's name as a value.
type primitiveValue struct{ name string }

func (p primitiveValue) String() string        { return "<primitive " + p.name + ">" }
func (p primitiveValue) Type() string          { return "primitive_name" }
func (p primitiveValue) Freeze()               {}
func (p primitiveValue) Truth() starlark.Bool  { return starlark.True }
func (p primitiveValue) Hash() (uint32, error) { return starlark.String(p.name).Hash() }

func compareIdentity(op syntax.Token, x, y store.OID) (bool, error) {
	switch op {
	case syntax.EQL:
		return x == y, nil
	case syntax.NEQ:
		return x != y, nil
	}
	return false, fmt.Errorf("objects support only == and !=")
}
