package command

import (
	"fmt"

	"batos/internal/image"
	"batos/internal/store"
)

// SlotView is a slot as inspect shows it, with the object it lives in.
type SlotView struct {
	Name   string      `json:"name"`
	Value  image.Value `json:"-"`
	Repr   string      `json:"repr"`
	Owner  string      `json:"owner"`
	Method string      `json:"method,omitempty"`
}

type ObjectView struct {
	OID       string     `json:"oid"`
	Parents   []string   `json:"parents"`
	Own       []SlotView `json:"own"`
	Inherited []SlotView `json:"inherited"`
}

// Inspect describes an object: its own slots, parents, and the slots it
// inherits with where each comes from, walking the parents as a message
// lookup does (image.Tx.Lineage).
func Inspect(tx *image.Tx, oid store.OID) (ObjectView, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return ObjectView{}, err
	}
	view := ObjectView{OID: oid.String() + describeName(o)}
	seen := map[string]bool{}
	for _, s := range o.Slots() {
		view.Own = append(view.Own, slotOf(s, o))
		seen[s.Name] = true
		if r, ok := s.Value.(image.Ref); ok && image.IsParentSlot(s.Name) {
			view.Parents = append(view.Parents, fmt.Sprintf("%s -> %s", s.Name, store.OID(r)))
		}
	}
	// Inherited slots come in lookup order: the first found is what a
	// send would find.
	for p, err := range tx.Lineage(o) {
		if err != nil {
			return view, err
		}
		if p == o {
			continue
		}
		for _, ps := range p.Slots() {
			if !seen[ps.Name] {
				seen[ps.Name] = true
				view.Inherited = append(view.Inherited, slotOf(ps, p))
			}
		}
	}
	return view, nil
}

func slotOf(s image.Slot, owner *image.Object) SlotView {
	v := SlotView{Name: s.Name, Value: s.Value, Repr: image.Repr(s.Value), Owner: owner.OID().String() + describeName(owner)}
	if m, ok := s.Value.(*image.Method); ok {
		v.Method = m.Source
	}
	return v
}

func describeName(o *image.Object) string {
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			return " (" + string(s) + ")"
		}
	}
	return ""
}
