package image

import (
	"bytes"
	"maps"
	"slices"

	"batos/internal/store"
)

// Change is an object a transaction created or changed, as commit would
// write it: its slots before (nil for a new object) and after.
type Change struct {
	OID     store.OID
	Created bool
	Before  []Slot
	After   []Slot
}

// Changes lists, by OID, the objects this transaction has created or
// changed so far: what its commit would write. A regression replay
// compares what two versions of a method wrote with it, before rolling
// each back. It reports nothing in a read-only transaction.
func (tx *Tx) Changes() ([]Change, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	var out []Change
	for _, oid := range slices.Sorted(maps.Keys(tx.objects)) {
		o := tx.objects[oid]
		if o.untouched() {
			continue
		}
		data, err := EncodeState(o.slots)
		if err != nil {
			return nil, err
		}
		if !o.created && bytes.Equal(data, o.orig) {
			continue
		}
		c := Change{OID: oid, Created: o.created, After: cloneSlots(o.slots)}
		if !o.created {
			if c.Before, err = DecodeState(o.orig); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}
