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
	// Deprecated, for a method an audit retired, says which and why; the
	// method still answers.
	Deprecated string `json:"deprecated,omitempty"`
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
		v.Deprecated = deprecation(m)
	}
	return v
}

// deprecation says why a method is marked deprecated, "" when it is
// not: "by audit 3, proposal 2: nothing calls it".
func deprecation(m *image.Method) string {
	if m.Meta == nil {
		return ""
	}
	v, ok := m.Meta.Get(image.String("deprecated"))
	if !ok || v == image.None || image.Equal(v, image.Bool(false)) {
		return ""
	}
	d, isDict := v.(*image.Dict)
	if !isDict {
		return image.Repr(v)
	}
	get := func(k string) string {
		x, _ := d.Get(image.String(k))
		if s, ok := x.(image.String); ok {
			return string(s)
		}
		return image.Repr(x)
	}
	return fmt.Sprintf("by audit %s, proposal %s: %s", get("audit"), get("proposal"), get("reason"))
}

func describeName(o *image.Object) string {
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			return " (" + string(s) + ")"
		}
	}
	return ""
}
