package command

import (
	"time"

	"fmt"

	"batos/internal/image"
	"batos/internal/store"
)

// SlotView is a slot as inspect shows it, with the object it lives in.
type SlotView struct {
	Name  string
	Value image.Value
	Repr  string
	// Owner is the object the slot is in; OwnerName its name slot, when
	// that is a string.
	Owner     store.OID
	OwnerName string
	// Method is a method slot's source, else "".
	Method string
	// Deprecated, for a method an audit retired, says which and why; the
	// method still answers.
	Deprecated string
	// Meta is what a method records of where it came from (a cycle's
	// installs record the cycle, personas, models, tests and the version
	// they replaced), or nil.
	Meta image.Value
}

// ParentView is a parent slot ("parent*") and the object it refers to.
type ParentView struct {
	Slot string
	OID  store.OID
	// Name is the parent's name slot, when that is a string; "" when the
	// parent cannot be read.
	Name string
}

// ObjectView is an object as inspect shows it: data, with OIDs beside
// the names people read.
type ObjectView struct {
	OID store.OID
	// Name is the object's name slot, when that is a string.
	Name      string
	Parents   []ParentView
	Own       []SlotView
	Inherited []SlotView
	// Names are the names of the objects the slots' values refer to
	// (those with a string name slot), so a reference reads as what it
	// is; at most maxNamed of them.
	Names map[store.OID]string
}

// maxNamed bounds the objects an inspect names: an object holding a list
// of a million references is not answered with a million loads. namingTime
// bounds the time spent reading them (each load decodes the whole object,
// which may be large): the names are labels, and those not read in time
// are left out.
const (
	maxNamed   = 500
	namingTime = 50 * time.Millisecond
)

// Label is how people name an object: "oid:3 (genesis)", or "oid:3"
// without a name.
func Label(oid store.OID, name string) string {
	if name == "" {
		return oid.String()
	}
	return oid.String() + " (" + name + ")"
}

// Inspect describes an object: its own slots, parents, and the slots it
// inherits with where each comes from, walking the parents as a message
// lookup does (image.Tx.Lineage).
func Inspect(tx *image.Tx, oid store.OID) (ObjectView, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return ObjectView{}, err
	}
	view := ObjectView{OID: oid, Name: nameOf(o)}
	seen := map[string]bool{}
	for _, s := range o.Slots() {
		view.Own = append(view.Own, slotOf(s, o))
		seen[s.Name] = true
		if r, ok := s.Value.(image.Ref); ok && image.IsParentSlot(s.Name) {
			p := ParentView{Slot: s.Name, OID: store.OID(r)}
			if po, err := tx.Object(p.OID); err == nil {
				p.Name = nameOf(po)
			}
			view.Parents = append(view.Parents, p)
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
	view.Names = referenceNames(tx, view)
	return view, nil
}

// referenceNames names the objects view's slot values refer to, walking
// containers, up to maxNamed references.
func referenceNames(tx *image.Tx, view ObjectView) map[store.OID]string {
	names := map[store.OID]string{}
	seen := map[store.OID]bool{}
	deadline := time.Now().Add(namingTime)
	var walk func(v image.Value)
	walk = func(v image.Value) {
		if len(seen) >= maxNamed || len(seen)%16 == 15 && time.Now().After(deadline) {
			return
		}
		switch x := v.(type) {
		case image.Ref:
			oid := store.OID(x)
			if seen[oid] {
				return
			}
			seen[oid] = true
			if o, err := tx.Object(oid); err == nil {
				if n := nameOf(o); n != "" {
					names[oid] = n
				}
			}
		case *image.List:
			for _, e := range x.Elems {
				walk(e)
			}
		case image.Tuple:
			for _, e := range x {
				walk(e)
			}
		case *image.Dict:
			for k, e := range x.All() {
				walk(k)
				walk(e)
			}
		}
	}
	for _, s := range view.Own {
		walk(s.Value)
	}
	for _, s := range view.Inherited {
		walk(s.Value)
	}
	if len(names) == 0 {
		return nil
	}
	return names
}

func slotOf(s image.Slot, owner *image.Object) SlotView {
	v := SlotView{Name: s.Name, Value: s.Value, Repr: image.Repr(s.Value), Owner: owner.OID(), OwnerName: nameOf(owner)}
	if m, ok := s.Value.(*image.Method); ok {
		v.Method = m.Source
		v.Deprecated = deprecation(m)
		if m.Meta != nil && m.Meta.Len() > 0 {
			v.Meta = m.Meta
		}
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

// nameOf is o's name slot, when that is a string, else "".
func nameOf(o *image.Object) string {
	if n, ok := o.Get("name"); ok {
		if s, ok := n.(image.String); ok {
			return string(s)
		}
	}
	return ""
}
