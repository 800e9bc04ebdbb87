package image

import (
	"errors"
	"fmt"
	"strings"

	"batos/internal/store"
)

// ErrNoTarget is returned when a target names nothing.
var ErrNoTarget = errors.New("unknown target")

// RootNames maps each root slot that names an object to it, plus "root".
func (tx *Tx) RootNames() (map[string]store.OID, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	names := map[string]store.OID{"root": root.OID()}
	for _, s := range root.Slots() {
		if r, ok := s.Value.(Ref); ok {
			names[s.Name] = store.OID(r)
		}
	}
	return names, nil
}

// NamesByOID inverts RootNames: each object a root slot names, by its
// alphabetically first name. It is empty when the root cannot be read.
func (tx *Tx) NamesByOID() map[store.OID]string {
	names, err := tx.RootNames()
	out := map[store.OID]string{}
	if err != nil {
		return out
	}
	for name, oid := range names {
		if prev, ok := out[oid]; !ok || name < prev {
			out[oid] = name
		}
	}
	return out
}

// Resolve finds a target: a root name (genesis) or an OID (oid:7 or 7).
func (tx *Tx) Resolve(target string) (store.OID, error) {
	if target != "" && (target[0] < '0' || target[0] > '9') && !strings.HasPrefix(target, "oid:") {
		// A name: look it up in the root without building every name.
		root, err := tx.Root()
		if err != nil {
			return 0, err
		}
		if target == "root" {
			return root.OID(), nil
		}
		if v, ok := root.Get(target); ok {
			if r, ok := v.(Ref); ok {
				return store.OID(r), nil
			}
		}
		return 0, fmt.Errorf("%w: no root name %q (and not an OID like oid:7)", ErrNoTarget, target)
	}
	if oid, err := store.ParseOID(target); err == nil {
		if _, err := tx.Object(oid); errors.Is(err, store.ErrNotFound) {
			// The store's words (which snapshot it looked in) are not the
			// client's business; the kind, not_found, is kept.
			return 0, fmt.Errorf("%w: no object %s in the image (deleted or packed away, or never made)", ErrNoTarget, oid)
		} else if err != nil {
			return 0, fmt.Errorf("target %s: %w", target, err)
		}
		return oid, nil
	}
	names, err := tx.RootNames()
	if err != nil {
		return 0, err
	}
	if oid, ok := names[target]; ok {
		return oid, nil
	}
	return 0, fmt.Errorf("%w: no root name %q (and not an OID like oid:7)", ErrNoTarget, target)
}
