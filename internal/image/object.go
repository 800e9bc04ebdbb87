package image

import (
	"errors"
	"fmt"
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
	slots  []Slot
	// shared[i] marks slot i's value as still shared with the cache (in
	// an Update, values are copied when first handed out, not at load).
	shared  []bool
	deleted bool   // a slot was deleted
	orig    []byte // encoding as loaded (writable transactions only)
	created bool
}

// untouched reports whether nothing could have changed the loaded state:
// every value is still the cache's (none handed out as a container copy
// or replaced), and no slot was added or deleted. Commit skips such
// objects without encoding them.
func (o *Object) untouched() bool {
	if o.created || o.deleted || len(o.slots) != len(o.shared) {
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
	if o.tx.writable && (i >= len(o.shared) || !o.shared[i]) {
		return v
	}
	v = copyShared(v)
	if o.tx.writable {
		o.slots[i].Value, o.shared[i] = v, false
	}
	return v
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
