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
	tx      *Tx
	oid     store.OID
	serial  store.TID // the revision loaded; 0 for a new object
	slots   []Slot
	orig    []byte // encoding as loaded (writable transactions only)
	created bool
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
		return o.own(o.slots[i].Value), true
	}
	return nil, false
}

// own returns v as the caller may hold it: itself in an Update, a copy of
// a container in a read-only transaction, where v is shared with the cache.
func (o *Object) own(v Value) Value {
	if o.tx.writable {
		return v
	}
	if t, ok := v.(Tuple); ok {
		return Tuple(cloneSlice(t, 0)) // immutable only by convention
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
	return true, nil
}

// Slots returns the own slots in order, as Get would return each.
func (o *Object) Slots() []Slot {
	slots := make([]Slot, len(o.slots))
	for i, s := range o.slots {
		slots[i] = Slot{Name: s.Name, Value: o.own(s.Value)}
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
