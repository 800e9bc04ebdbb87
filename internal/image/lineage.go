package image

import (
	"errors"
	"fmt"
	"iter"

	"batos/internal/store"
)

// MaxLineage bounds how many objects [Tx.Lineage] yields: an object and
// at most MaxLineage-1 ancestors. Cycles cannot make a walk run away
// (each object is yielded once); the bound is for a chain or a lattice of
// parents that is merely enormous, since every message lookup that finds
// nothing loads the whole lineage. It counts distinct objects, not depth:
// a depth limit would let a wide lattice be arbitrarily large, and a
// count bounds depth too.
const MaxLineage = 1024

// ErrLineageTooLong is returned by [Tx.Lineage] when an object has more
// than [MaxLineage]-1 ancestors.
var ErrLineageTooLong = errors.New("image: too many ancestors")

// Lineage yields o and then its ancestors in message-lookup order: depth
// first through the parent slots (slots whose name ends in "*", see
// [IsParentSlot]) in slot order, each object once, so a parent cycle
// ends the walk rather than looping. A parent slot holding anything but
// a reference is skipped. Parents are loaded as the walk reaches them,
// so a caller that stops early loads nothing further.
//
// The walk ends with a nil object and an error when a parent cannot be
// loaded (the error names the parent slot and its object, and wraps the
// load's error) or when the lineage would exceed [MaxLineage] objects
// (the error wraps [ErrLineageTooLong]); either comes only once the walk
// reaches that point, after every object before it in lookup order.
//
// o must belong to tx; Lineage is used by tx's goroutine only, as tx is.
func (tx *Tx) Lineage(o *Object) iter.Seq2[*Object, error] {
	if o.tx != tx {
		panic("image: Lineage of an object from another transaction")
	}
	return func(yield func(*Object, error) bool) { tx.lineage(o, yield) }
}

// parentLink is a parent slot the walk has still to follow.
type parentLink struct {
	child *Object
	slot  string
	oid   store.OID
}

// lineage is Lineage's walk, with an explicit stack so that a long chain
// costs no Go recursion. An object is marked when it is yielded, not
// when it is first seen, which is what keeps the order the recursive
// depth-first walk's.
func (tx *Tx) lineage(o *Object, yield func(*Object, error) bool) {
	var seen oidSet
	var buf [8]parentLink
	stack := buf[:0]
	for x := o; ; {
		seen.add(x.oid)
		if !yield(x, nil) {
			return
		}
		stack = pushParents(stack, x, &seen)
		var next parentLink
		for {
			if len(stack) == 0 {
				return
			}
			next, stack = stack[len(stack)-1], stack[:len(stack)-1]
			if !seen.has(next.oid) {
				break
			}
		}
		if seen.len() >= MaxLineage {
			yield(nil, fmt.Errorf("%w: %s has more than %d", ErrLineageTooLong, o.oid, MaxLineage-1))
			return
		}
		p, err := tx.Object(next.oid)
		if err != nil {
			yield(nil, fmt.Errorf("parent slot %q of %s: %w", next.slot, next.child.oid, err))
			return
		}
		x = p
	}
}

// pushParents pushes x's parent references not yet yielded, last slot
// first, so that the first parent is popped first.
func pushParents(stack []parentLink, x *Object, seen *oidSet) []parentLink {
	for i := len(x.slots) - 1; i >= 0; i-- {
		s := &x.slots[i]
		if !IsParentSlot(s.Name) {
			continue
		}
		if r, ok := s.Value.(Ref); ok && !seen.has(store.OID(r)) {
			stack = append(stack, parentLink{child: x, slot: s.Name, oid: store.OID(r)})
		}
	}
	return stack
}

// oidSet is a set of OIDs that needs no allocation for the few objects
// of a usual lineage.
type oidSet struct {
	few  [8]store.OID
	n    int
	many map[store.OID]struct{}
}

func (s *oidSet) len() int { return s.n }

func (s *oidSet) has(oid store.OID) bool {
	if s.many != nil {
		_, ok := s.many[oid]
		return ok
	}
	for _, x := range s.few[:s.n] {
		if x == oid {
			return true
		}
	}
	return false
}

// add adds oid, which must not be in s.
func (s *oidSet) add(oid store.OID) {
	s.n++
	if s.n <= len(s.few) {
		s.few[s.n-1] = oid
		return
	}
	if s.many == nil {
		s.many = make(map[store.OID]struct{}, 2*len(s.few))
		for _, x := range s.few {
			s.many[x] = struct{}{}
		}
	}
	s.many[oid] = struct{}{}
}
