package image

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	"batos/internal/store"
)

// Object is an object as one transaction sees it: an OID and ordered
// slots. Slots whose name ends in "*" are parent slots, through which
// message lookup delegates.
//
// In an Update the values an Object returns belong to the transaction, and
// any change to them, however deeply nested, is saved at commit. In a
// read-only transaction the object's state is shared with the image's
// cache, so containers are returned as copies: changing one changes
// nothing else.
type Object struct {
	tx     *Tx
	oid    store.OID
	serial store.TID // the revision loaded; 0 for a new object
	// slots are the cache's, shared, until an Update first changes the
	// object or hands out one of its containers (own): only then does
	// the object get a list of its own.
	slots []Slot
	owned bool // slots is this loaded object's own list, not the cache's
	// shared[i] marks slot i's value as still shared with the cache (in
	// an Update, values are copied when first handed out, not at load);
	// it is set when the object is owned.
	shared  []bool
	deleted bool // a slot was deleted
	// base is the state as loaded, shared with the cache, and orig its
	// encoding, nil until known (writable transactions only: original).
	base    []Slot
	orig    []byte
	created bool
}

// original is the encoding of the state the object was loaded with, nil
// for a new object: the record read, or, for an object found in the
// cache without reading it, the cached state encoded.
func (o *Object) original() ([]byte, error) {
	if o.orig != nil || o.created {
		return o.orig, nil
	}
	orig, err := EncodeState(o.base)
	if err != nil {
		return nil, fmt.Errorf("encode %s as loaded: %w", o.oid, err)
	}
	o.orig = orig
	return orig, nil
}

// own gives an object loaded in an Update its own list of slots, each
// value still the cache's, before anything changes it. A new object's
// slots are its own already.
func (o *Object) own() {
	if o.owned || o.created {
		return
	}
	o.slots = slices.Clone(o.slots)
	o.shared = make([]bool, len(o.slots))
	for i := range o.shared {
		o.shared[i] = true
	}
	o.owned = true
}

// untouched reports whether nothing could have changed the loaded state:
// every value is still the cache's (none handed out as a container copy
// or replaced), and no slot was added or deleted. Commit skips such
// objects without encoding them.
func (o *Object) untouched() bool {
	if o.created || o.deleted {
		return false
	}
	if !o.owned {
		return true
	}
	if len(o.slots) != len(o.shared) {
		return false
	}
	for _, s := range o.shared {
		if !s {
			return false
		}
	}
	return true
}

// OID identifies the object.
func (o *Object) OID() store.OID { return o.oid }

// Ref is a reference to the object, to store in another object's slot.
func (o *Object) Ref() Ref { return Ref(o.oid) }

// Serial is the transaction that wrote the revision loaded; 0 for an
// object created in this transaction.
func (o *Object) Serial() store.TID { return o.serial }

// Get returns the value of the object's own slot name.
func (o *Object) Get(name string) (Value, bool) {
	if i := o.index(name); i >= 0 {
		return o.value(i), true
	}
	return nil, false
}

// Peek returns the value of the object's own slot name without copying
// it: the caller must not change it (or anything inside it), only read
// it or put it, unchanged, into a new value. It saves Get's copy of a big
// container read only to be decoded.
func (o *Object) Peek(name string) (Value, bool) {
	if i := o.index(name); i >= 0 {
		return o.slots[i].Value, true
	}
	return nil, false
}

// value returns slot i's value as the caller may hold it. A value shared
// with the cache is copied: in an Update the copy replaces it, so changes
// to it are the transaction's; in a read-only transaction every call
// copies.
func (o *Object) value(i int) Value {
	v := o.slots[i].Value
	if immutable(v) {
		// Nothing to copy: the value stays shared, and an Update that
		// only reads such slots leaves the object untouched.
		return v
	}
	if o.tx.writable {
		o.own()
		if i >= len(o.shared) || !o.shared[i] {
			return v
		}
	}
	v = copyShared(v)
	if o.tx.writable {
		o.slots[i].Value, o.shared[i] = v, false
	}
	return v
}

// immutable reports whether v can be handed out as it is: no holder can
// change it in place.
func immutable(v Value) bool {
	switch v.(type) {
	case NoneType, Bool, Int, Float, String, Bytes, Ref, BlobRef, Primitive:
		return true
	}
	return false
}

// copyShared copies what a holder could change in place: containers, and
// tuples (immutable only by convention).
func copyShared(v Value) Value {
	if t, ok := v.(Tuple); ok {
		return Tuple(cloneSlice(t, 0))
	}
	return Clone(v)
}

// Set assigns an own slot, adding it at the end if it is new.
func (o *Object) Set(name string, v Value) error {
	if err := o.tx.check(true); err != nil {
		return err
	}
	if err := CheckSlotName(name); err != nil {
		return err
	}
	if v == nil {
		return fmt.Errorf("%w: slot %q set to nil", ErrInvalid, name)
	}
	o.own()
	if i := o.index(name); i >= 0 {
		o.slots[i].Value = v
		if i < len(o.shared) {
			o.shared[i] = false
		}
		return nil
	}
	o.slots = append(o.slots, Slot{Name: name, Value: v})
	return nil
}

// Delete removes an own slot; it reports whether there was one.
func (o *Object) Delete(name string) (bool, error) {
	if err := o.tx.check(true); err != nil {
		return false, err
	}
	i := o.index(name)
	if i < 0 {
		return false, nil
	}
	o.own()
	o.slots = append(o.slots[:i:i], o.slots[i+1:]...)
	o.deleted = true
	if i < len(o.shared) {
		o.shared = append(o.shared[:i:i], o.shared[i+1:]...)
	}
	return true, nil
}

// Slots returns the own slots in order, as Get would return each.
func (o *Object) Slots() []Slot {
	slots := make([]Slot, len(o.slots))
	for i, s := range o.slots {
		slots[i] = Slot{Name: s.Name, Value: o.value(i)}
	}
	return slots
}

// PeekSlots yields the own slots in order without copying their values,
// as Peek returns one: the caller must not change a value (or anything
// inside it), only read it. It saves Slots' copies when an object is
// read only to look at its slots.
func (o *Object) PeekSlots() iter.Seq2[string, Value] {
	return func(yield func(string, Value) bool) {
		for _, s := range o.slots {
			if !yield(s.Name, s.Value) {
				return
			}
		}
	}
}

// Names returns the own slot names in order.
func (o *Object) Names() []string {
	names := make([]string, len(o.slots))
	for i, s := range o.slots {
		names[i] = s.Name
	}
	return names
}

// IsParentSlot reports whether a slot name marks a parent.
func IsParentSlot(name string) bool { return strings.HasSuffix(name, "*") }

// Parents returns the objects named by the parent slots, in slot order.
// Parent slots holding anything but a reference are skipped.
func (o *Object) Parents() ([]*Object, error) {
	var parents []*Object
	for _, s := range o.slots {
		if !IsParentSlot(s.Name) {
			continue
		}
		if _, ok := s.Value.(Ref); !ok {
			continue
		}
		p, err := o.tx.Deref(s.Value)
		if err != nil {
			return nil, fmt.Errorf("parent slot %q of %s: %w", s.Name, o.oid, err)
		}
		parents = append(parents, p)
	}
	return parents, nil
}

func (o *Object) index(name string) int {
	for i, s := range o.slots {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// cacheCopy is the object's state for the cache after a commit: values
// still shared with the cache are shared again, the rest are copied, since
// the caller may still hold them.
func (o *Object) cacheCopy() []Slot {
	slots := make([]Slot, len(o.slots))
	for i, s := range o.slots {
		if i >= len(o.shared) || !o.shared[i] {
			s.Value = Clone(s.Value)
		}
		slots[i] = s
	}
	return slots
}
