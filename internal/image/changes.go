package image

import (
	"bytes"
	"context"

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
// changed so far: what its commit would write. An object loaded and read
// but left as it was is not listed, nor one set back to what it held; a
// container changed in place inside a slot is, as commit sees it. A
// regression replay compares what two versions of a method wrote with
// it, in rehearsals (Rehearse). A read-only transaction writes nothing:
// Changes reports nothing there.
func (tx *Tx) Changes() ([]Change, error) {
	if err := tx.check(false); err != nil {
		return nil, err
	}
	if !tx.writable {
		return nil, nil
	}
	var out []Change
	for _, o := range tx.objects.sorted() {
		oid := o.oid
		if o.untouched() {
			continue
		}
		data, err := EncodeState(o.slots)
		if err != nil {
			return nil, err
		}
		orig, err := o.original()
		if err != nil {
			return nil, err
		}
		if !o.created && bytes.Equal(data, orig) {
			continue
		}
		c := Change{OID: oid, Created: o.created, After: cloneSlots(o.slots)}
		if !o.created {
			if c.Before, err = DecodeState(orig); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Rehearse runs fn in a read-write transaction on the image as it was
// right after transaction at, and never commits it: fn may change
// anything, and Changes says what a commit would have written, but
// nothing is saved (new objects' OIDs are used up; blobs fn puts stay
// until a pack). Two rehearsals at one TID start from the same state
// whatever commits meanwhile: a regression replay runs the current
// method and its replacement so. Blocking like Update, it is safe to call
// from any goroutine; fn's transaction belongs to fn.
func (db *DB) Rehearse(ctx context.Context, at store.TID, fn func(*Tx) error) error {
	tx := db.begin(ctx, at, true)
	defer tx.end()
	return fn(tx)
}
