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
// inherits with where each comes from. It walks the delegation chain as lookup does: depth-first,
// parents in slot order, each object once.
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
	visited := map[store.OID]bool{oid: true}
	var walk func(o *image.Object) error
	walk = func(o *image.Object) error {
		for _, s := range o.Slots() {
			r, ok := s.Value.(image.Ref)
			if !ok || !image.IsParentSlot(s.Name) || visited[store.OID(r)] {
				continue
			}
			visited[store.OID(r)] = true
			p, err := tx.Object(store.OID(r))
			if err != nil {
				return fmt.Errorf("parent %s of %s: %w", s.Name, o.OID(), err)
			}
			for _, ps := range p.Slots() {
				if !seen[ps.Name] {
					seen[ps.Name] = true
					view.Inherited = append(view.Inherited, slotOf(ps, p))
				}
			}
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	return view, walk(o)
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
