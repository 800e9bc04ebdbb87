package cycle

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"batos/internal/image"
	"batos/internal/store"
)

// The root's "cycles" object names every cycle ("c12" → the cycle
// object), counts them ("next_id"), and indexes the open ones by
// receiver and selector ("open"), so a second message joins.

func cyclesObject(tx *image.Tx) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	v, ok := root.Get("cycles")
	if !ok {
		return nil, errors.New("cycle: the image has no cycles object")
	}
	return tx.Deref(v)
}

func slotName(id int64) string { return "c" + strconv.FormatInt(id, 10) }

// isCycleSlot reports whether a slot of the cycles object names a cycle
// (c12), not something a user put there.
func isCycleSlot(name string) bool {
	digits, ok := strings.CutPrefix(name, "c")
	_, err := strconv.ParseUint(digits, 10, 63)
	return ok && err == nil
}

// ParseID reads a cycle ID as users write it: 12, c12 or #12.
func ParseID(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "#"), "c")
	id, err := strconv.ParseInt(t, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("cycle ID %q: want a number like 12 (or c12)", s)
	}
	return id, nil
}

// cycleObject finds cycle id's object.
func cycleObject(tx *image.Tx, id int64) (*image.Object, error) {
	cs, err := cyclesObject(tx)
	if err != nil {
		return nil, err
	}
	v, ok := cs.Get(slotName(id))
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoCycle, id)
	}
	return tx.Deref(v)
}

// Load reads cycle id in tx.
func Load(tx *image.Tx, id int64) (*Cycle, error) {
	o, err := cycleObject(tx, id)
	if err != nil {
		return nil, err
	}
	return decode(o)
}

// List reads every cycle, oldest first. Cycles whose objects cannot be
// read are reported in the error with the rest still listed.
func List(tx *image.Tx) ([]*Cycle, error) {
	cs, err := cyclesObject(tx)
	if err != nil {
		return nil, err
	}
	var out []*Cycle
	var errs []error
	for _, s := range cs.Slots() {
		r, ok := s.Value.(image.Ref)
		if !ok || !isCycleSlot(s.Name) {
			continue
		}
		o, err := tx.Object(store.OID(r))
		if err == nil {
			var c *Cycle
			if c, err = decode(o); err == nil {
				out = append(out, c)
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, errors.Join(errs...)
}

// openIndex returns the cycles object's index of open cycles.
func openIndex(cs *image.Object) *image.Dict {
	if v, ok := cs.Get("open"); ok {
		if d, isDict := v.(*image.Dict); isDict {
			return d
		}
	}
	return &image.Dict{}
}

// findOpen returns the open cycle for key, if any. An entry naming a
// cycle that is finished or gone (the index was edited) does not count:
// it would make every later message join a cycle that never ends.
func findOpen(tx *image.Tx, cs *image.Object, key string) (int64, bool) {
	if key == "" {
		return 0, false
	}
	v, _ := openIndex(cs).Get(image.String(key))
	n, isInt := v.(image.Int)
	if !isInt {
		return 0, false
	}
	o, err := cycleObject(tx, int64(n))
	if err != nil {
		return 0, false
	}
	state, err := stateOf(o)
	return int64(n), err == nil && !state.Terminal()
}

// stateOf reads a cycle object's state slot alone.
func stateOf(o *image.Object) (State, error) {
	st, _ := o.Peek(slotState)
	name, _ := st.(image.String)
	return ParseState(string(name))
}

func setOpen(cs *image.Object, key string, id int64, open bool) error {
	if key == "" {
		return nil
	}
	idx := openIndex(cs)
	if open {
		if err := idx.Set(image.String(key), image.Int(id)); err != nil {
			return err
		}
	} else if v, ok := idx.Get(image.String(key)); ok && image.Equal(v, image.Int(id)) {
		idx.Delete(image.String(key))
	}
	return cs.Set("open", idx)
}

// create makes a new cycle object for c (assigning its ID) and indexes it.
func create(tx *image.Tx, c *Cycle) error {
	cs, err := cyclesObject(tx)
	if err != nil {
		return err
	}
	next := int64(1)
	if v, ok := cs.Get("next_id"); ok {
		if n, isInt := v.(image.Int); isInt && n > 0 {
			next = int64(n)
		}
	}
	for _, taken := cs.Get(slotName(next)); taken; _, taken = cs.Get(slotName(next)) {
		next++ // next_id was set back: never overwrite a cycle
	}
	c.ID = next
	o, err := tx.New()
	if err != nil {
		return err
	}
	c.OID = o.OID()
	if err := encode(o, c); err != nil {
		return err
	}
	if err := cs.Set("next_id", image.Int(next+1)); err != nil {
		return err
	}
	if err := cs.Set(slotName(c.ID), o.Ref()); err != nil {
		return err
	}
	return setOpen(cs, c.Mission.Key(), c.ID, true)
}

// understands reports whether oid finds selector in its slots or,
// depth first, its parents', as the VM looks a message up. An object
// that cannot be read understands nothing.
func understands(tx *image.Tx, oid store.OID, selector string) bool {
	o, err := tx.Object(oid)
	if err != nil {
		return false
	}
	for x, err := range tx.Lineage(o) {
		if err != nil {
			return false
		}
		if _, ok := x.Peek(selector); ok {
			return true
		}
	}
	return false
}
