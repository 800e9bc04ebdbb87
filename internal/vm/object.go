package vm

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"batos/internal/image"
	"batos/internal/store"
)

// Object is an image object as method code sees it. One execution wraps
// each OID once.
type Object struct {
	ex  *execution
	obj *image.Object
}

var (
	_ starlark.HasSetField = (*Object)(nil)
	_ starlark.Comparable  = (*Object)(nil)
)

// object wraps oid for this execution, loading it on first use.
func (ex *execution) object(oid store.OID) (*Object, error) {
	if o := ex.objects.get(oid); o != nil {
		return o, nil
	}
	obj, err := ex.tx.Object(oid)
	if err != nil {
		return nil, err
	}
	return ex.objects.add(ex, obj), nil
}

// wrapped are the objects an execution has wrapped, by OID: the first
// few in place, with no allocation, the rest in a map.
type wrapped struct {
	few  [4]Object
	n    int
	many map[store.OID]*Object
}

func (w *wrapped) get(oid store.OID) *Object {
	for i := range w.few[:w.n] {
		if w.few[i].obj.OID() == oid {
			return &w.few[i]
		}
	}
	return w.many[oid]
}

// add wraps obj, which get does not find.
func (w *wrapped) add(ex *execution, obj *image.Object) *Object {
	if w.n < len(w.few) {
		o := &w.few[w.n]
		*o = Object{ex: ex, obj: obj}
		w.n++
		return o
	}
	if w.many == nil {
		w.many = make(map[store.OID]*Object)
	}
	o := &Object{ex: ex, obj: obj}
	w.many[obj.OID()] = o
	return o
}

// OID is the wrapped object's identity.
func (o *Object) OID() store.OID { return o.obj.OID() }

func (o *Object) String() string {
	if n, ok := o.obj.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			return fmt.Sprintf("<object %s %s>", o.obj.OID(), string(s))
		}
	}
	return fmt.Sprintf("<object %s>", o.obj.OID())
}

func (o *Object) Type() string          { return "object" }
func (o *Object) Freeze()               {} // objects change through transactions, not in place
func (o *Object) Truth() starlark.Bool  { return starlark.True }
func (o *Object) Hash() (uint32, error) { return uint32(o.obj.OID()) ^ uint32(o.obj.OID()>>32), nil }

// CompareSameType compares objects by identity.
func (o *Object) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	return compareIdentity(op, o.obj.OID(), y.(*Object).obj.OID())
}

// found is where a lookup found a slot.
type found struct {
	owner *image.Object
	value image.Value
}

// lookup finds name in o or in its ancestors, in the order
// image.Tx.Lineage walks them. The value found is the slot's own, not a
// copy (image.Object.Peek): callers read it or convert it, and change
// nothing in it.
func (ex *execution) lookup(o *image.Object, name string) (found, bool, error) {
	for x, err := range ex.tx.Lineage(o) {
		if err != nil {
			return found{}, false, err
		}
		if v, ok := x.Peek(name); ok {
			return found{owner: x, value: v}, true, nil
		}
	}
	return found{}, false, nil
}

// Attr implements starlark.HasAttrs: reading o.name answers the slot's
// value, or a method or primitive bound to o. Reading a name nothing in
// o's lineage has is an error (getattr with a default answers the
// default, hasattr False); only calling it sends it (callee).
func (o *Object) Attr(name string) (starlark.Value, error) {
	v, err := o.callee(name)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(*pendingMessage); ok {
		return nil, starlark.NoSuchAttrError(fmt.Sprintf("%s has no slot %s (only a call, .%s(), sends it as a message)", o, name, name))
	}
	return v, nil
}

// callee is what a call of o.name calls: the slot's method or primitive
// bound to o, the slot's value (a call of which Starlark refuses), or,
// for a name nothing understands, a pending message for the
// doesNotUnderstand handler.
func (o *Object) callee(name string) (starlark.Value, error) {
	f, ok, err := o.ex.lookup(o.obj, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &pendingMessage{receiver: o, selector: name}, nil
	}
	switch v := f.value.(type) {
	case *image.Method:
		return &boundMethod{self: o, owner: f.owner.OID(), name: name, source: v.Source}, nil
	case image.Primitive:
		return &boundPrimitive{self: o, name: v.Name}, nil
	}
	// An inherited container is the owner's: changing it changes the
	// owner's slot, as with any object's value reached by reference.
	return o.ex.slotValue(f.owner, name, f.value)
}

// send sends selector to o, as Self does: a method or primitive is
// called; a data slot answers its value, and takes no arguments; a name
// nothing understands goes to the doesNotUnderstand handler.
func (o *Object) send(thread *starlark.Thread, selector string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	fn, err := o.callee(selector)
	if err != nil {
		return nil, err
	}
	return o.deliver(thread, selector, fn, args, kwargs)
}

// deliver is send, given what o.callee(selector) answered.
func (o *Object) deliver(thread *starlark.Thread, selector string, fn starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	switch fn.(type) {
	case *boundMethod, *boundPrimitive, *pendingMessage:
		return starlark.Call(thread, fn, args, kwargs)
	}
	if len(args) > 0 || len(kwargs) > 0 {
		return nil, fmt.Errorf("%s: slot %s holds a %s, not a method: sending it takes no arguments", o, selector, fn.Type())
	}
	return fn, nil
}

// AttrNames implements starlark.HasAttrs: own and inherited slot names.
// A parent that cannot be loaded ends the list (AttrNames has no error).
func (o *Object) AttrNames() []string {
	names := map[string]bool{}
	for x, err := range o.ex.tx.Lineage(o.obj) {
		if err != nil {
			break
		}
		for _, n := range x.Names() {
			names[n] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SetField implements starlark.HasSetField: it writes o's own slot.
func (o *Object) SetField(name string, v starlark.Value) error {
	if !o.ex.tx.Writable() {
		return fmt.Errorf("%w: cannot set %s.%s", ErrReadOnly, o.obj.OID(), name)
	}
	if m, ok := v.(*methodValue); ok {
		// Checked now, against the name it is stored under, rather than
		// when first called.
		if _, err := CheckMethod(m.source, name); err != nil {
			return err
		}
	}
	iv, err := o.ex.toImage(v)
	if err != nil {
		return fmt.Errorf("set %s.%s: %w", o.obj.OID(), name, err)
	}
	if err := o.obj.Set(name, iv); err != nil {
		return err
	}
	// An assignment replaces whatever container was read from the slot.
	delete(o.ex.slots, slotKey{o.obj.OID(), name})
	return nil
}

// boundMethod is a method slot's function bound to a receiver.
type boundMethod struct {
	self   *Object
	owner  store.OID // where the method was found
	name   string
	source string
}

func (m *boundMethod) String() string {
	return fmt.Sprintf("<method %s of %s>", m.name, m.self.obj.OID())
}
func (m *boundMethod) Type() string          { return "method" }
func (m *boundMethod) Freeze()               {}
func (m *boundMethod) Truth() starlark.Bool  { return starlark.True }
func (m *boundMethod) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: method") }
func (m *boundMethod) Name() string          { return m.name }

// CallInternal runs the method, counted in the VM's Telemetry if it has
// one: every method call, top-level or nested, comes through here.
func (m *boundMethod) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if t := m.self.ex.vm.opts.Telemetry; t != nil {
		return t.observe(m, thread, args, kwargs)
	}
	return m.call(thread, args, kwargs)
}

// call compiles (once) and runs the method with self bound.
func (m *boundMethod) call(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex := m.self.ex
	if err := ex.checkDepth(thread, m.name); err != nil {
		return nil, err
	}
	fn, err := ex.vm.compile(m.source, m.name)
	if err != nil {
		return nil, fmt.Errorf("method %s of %s: %w", m.name, m.owner, err)
	}
	return starlark.Call(thread, fn, append(starlark.Tuple{m.self}, args...), kwargs)
}

// checkDepth enforces the call-depth limit on sends.
func (ex *execution) checkDepth(thread *starlark.Thread, selector string) error {
	if d := thread.CallStackDepth(); d > ex.vm.opts.MaxDepth {
		return &LimitError{Limit: DepthLimit, Detail: fmt.Sprintf("%d nested calls, sending %s", ex.vm.opts.MaxDepth, selector)}
	}
	return nil
}

// boundPrimitive is a primitive slot bound to a receiver.
type boundPrimitive struct {
	self *Object
	name string
}

func (p *boundPrimitive) String() string        { return fmt.Sprintf("<primitive %s>", p.name) }
func (p *boundPrimitive) Type() string          { return "primitive" }
func (p *boundPrimitive) Freeze()               {}
func (p *boundPrimitive) Truth() starlark.Bool  { return starlark.True }
func (p *boundPrimitive) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: primitive") }
func (p *boundPrimitive) Name() string          { return p.name }

func (p *boundPrimitive) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex := p.self.ex
	fn, ok := ex.vm.opts.Primitives[p.name]
	if !ok {
		return nil, fmt.Errorf("primitive %q is not registered in this batos", p.name)
	}
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("primitive %s takes no keyword arguments", p.name)
	}
	iargs, err := ex.toImageAll(args)
	if err != nil {
		return nil, err
	}
	if err := ex.writeBack(); err != nil { // Go code reads the image
		return nil, err
	}
	v, err := fn(ex.context(), ex.tx, image.Ref(p.self.obj.OID()), iargs)
	if err != nil {
		return nil, err
	}
	return ex.toStarlark(v)
}

// pendingMessage is a selector nothing understands; calling it asks the
// doesNotUnderstand handler.
type pendingMessage struct {
	receiver *Object
	selector string
}

func (p *pendingMessage) String() string {
	return fmt.Sprintf("<message %s not understood by %s>", p.selector, p.receiver.obj.OID())
}
func (p *pendingMessage) Type() string          { return "message" }
func (p *pendingMessage) Freeze()               {}
func (p *pendingMessage) Truth() starlark.Bool  { return starlark.False }
func (p *pendingMessage) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: message") }
func (p *pendingMessage) Name() string          { return p.selector }

func (p *pendingMessage) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ex := p.receiver.ex
	msg := &Message{Receiver: p.receiver.obj.OID(), Selector: p.selector}
	var err error
	if msg.Args, err = ex.toImageAll(args); err != nil {
		return nil, err
	}
	for _, kw := range kwargs {
		v, err := ex.toImage(kw[1])
		if err != nil {
			return nil, err
		}
		msg.Kwargs = append(msg.Kwargs, image.Slot{Name: string(kw[0].(starlark.String)), Value: v})
	}
	if err := ex.writeBack(); err != nil { // the handler reads the image
		return nil, err
	}
	v, err := ex.vm.opts.Handler.DoesNotUnderstand(ex.context(), ex.tx, msg)
	if err != nil {
		// Remembered so that telemetry can tell the methods this error
		// fails from those failing by their own code.
		ex.notUnderstood = err
		return nil, err
	}
	return ex.toStarlark(v)
}
