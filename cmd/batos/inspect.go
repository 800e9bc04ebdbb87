package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/uvm"
)

func init() {
	commands["inspect"] = command{"show an object: own slots, parents, inherited slots, methods", runInspect}
}

// slotView is a slot as inspect shows it, with where it lives.
type slotView struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Repr   string `json:"repr"`
	Owner  string `json:"owner"`
	Method string `json:"method,omitempty"`
}

type objectView struct {
	OID       string     `json:"oid"`
	Parents   []string   `json:"parents"`
	Own       []slotView `json:"own"`
	Inherited []slotView `json:"inherited"`
}

func runInspect(ctx context.Context, e *env, args []string) error {
	fs := flags(e, "inspect", "[-json] TARGET", `Show TARGET (a root name or an OID): its own slots, its parents, the slots it
inherits and from where (the first found, depth-first, as a send would), and the
source of every method.`)
	asJSON := jsonFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("inspect takes one TARGET")
	}
	u, err := awakenImage(ctx, e, false)
	if err != nil {
		return err
	}
	defer u.Close()
	var view objectView
	err = u.DB().View(ctx, func(tx *image.Tx) error {
		oid, err := uvm.Resolve(tx, fs.Arg(0))
		if err != nil {
			return err
		}
		view, err = inspectObject(tx, oid)
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, view)
	}
	printObjectView(e.stdout, view)
	return nil
}

// inspectObject walks the delegation chain as lookup does: depth-first,
// parents in slot order, each object once.
func inspectObject(tx *image.Tx, oid store.OID) (objectView, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return objectView{}, err
	}
	view := objectView{OID: oid.String() + describeName(o)}
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

func slotOf(s image.Slot, owner *image.Object) slotView {
	v := slotView{Name: s.Name, Value: jsonValue(s.Value), Repr: image.Repr(s.Value), Owner: owner.OID().String() + describeName(owner)}
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

func printObjectView(w io.Writer, v objectView) {
	fmt.Fprintf(w, "%s\n", v.OID)
	if len(v.Parents) > 0 {
		fmt.Fprintf(w, "parents: %s\n", strings.Join(v.Parents, ", "))
	}
	printSlots := func(title string, slots []slotView, withOwner bool) {
		if len(slots) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, s := range slots {
			from := ""
			if withOwner {
				from = "   (from " + s.Owner + ")"
			}
			if s.Method != "" {
				fmt.Fprintf(w, "  %s: method%s\n", s.Name, from)
				for _, line := range strings.Split(strings.TrimRight(s.Method, "\n"), "\n") {
					fmt.Fprintf(w, "      | %s\n", line)
				}
				continue
			}
			fmt.Fprintf(w, "  %s = %s%s\n", s.Name, truncate(s.Repr, 200), from)
		}
	}
	printSlots("own slots", v.Own, false)
	printSlots("inherited slots", v.Inherited, true)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
