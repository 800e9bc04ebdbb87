package image

import (
	"cmp"
	"slices"

	"batos/internal/store"
)

// objectTable holds the objects a transaction has loaded or created, by
// OID: the first few in place, the rest in a map. A message send touches
// a handful (a receiver and the ancestors its lookup walks), which then
// cost the transaction no allocation beyond its own.
type objectTable struct {
	few  [4]*Object
	n    int
	many map[store.OID]*Object
	// slab holds the first objects loaded, so that they are allocated
	// with the transaction.
	slab  [4]Object
	slabN int
}

// get returns the object oid, or nil.
func (t *objectTable) get(oid store.OID) *Object {
	for _, o := range t.few[:t.n] {
		if o.oid == oid {
			return o
		}
	}
	return t.many[oid]
}

// put adds o, whose OID get does not find.
func (t *objectTable) put(o *Object) {
	if t.n < len(t.few) {
		t.few[t.n] = o
		t.n++
		return
	}
	if t.many == nil {
		t.many = make(map[store.OID]*Object)
	}
	t.many[o.oid] = o
}

// alloc returns a zero Object for the table to hold, from the slab while
// it lasts.
func (t *objectTable) alloc() *Object {
	if t.slabN < len(t.slab) {
		t.slabN++
		return &t.slab[t.slabN-1]
	}
	return new(Object)
}

// all returns every object, in no particular order.
func (t *objectTable) all() []*Object {
	out := make([]*Object, 0, t.n+len(t.many))
	out = append(out, t.few[:t.n]...)
	for _, o := range t.many {
		out = append(out, o)
	}
	return out
}

// sorted returns every object by OID.
func (t *objectTable) sorted() []*Object {
	out := t.all()
	slices.SortFunc(out, func(a, b *Object) int { return cmp.Compare(a.oid, b.oid) })
	return out
}

// untouched reports whether every object is untouched (Object.untouched).
func (t *objectTable) untouched() bool {
	for _, o := range t.few[:t.n] {
		if !o.untouched() {
			return false
		}
	}
	for _, o := range t.many {
		if !o.untouched() {
			return false
		}
	}
	return true
}
