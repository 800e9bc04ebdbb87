package image

import (
	"context"
	"errors"
	"fmt"

	"batos/internal/store"
)

// FormatVersion is recorded in the root's "image_format" slot.
const FormatVersion = 1

// SystemNames are the system objects the root names, in slot order.
var SystemNames = []string{
	"traits", "genesis", "pLLM", "orchestrator", "memory_manager",
	"knowledge_catalog", "personas", "cycles", "heartbeat", "audits", "telemetry",
}

// Init creates the root and the system objects in one transaction if the
// image has no root yet; it reports whether it created them. On an image
// that has a root it only adds system objects the root lacks.
func (db *DB) Init(ctx context.Context) (created bool, err error) {
	_, err = db.UpdateTID(ctx, func(tx *Tx) error {
		tx.SetUser("batos")
		root, made, err := tx.EnsureRoot()
		if err != nil {
			return err
		}
		created = made
		if made {
			tx.Note("create the image")
		}
		return EnsureSystemObjects(tx, root)
	})
	if err != nil {
		return false, fmt.Errorf("init image: %w", err)
	}
	return created, nil
}

// EnsureRoot returns the root, creating it in this transaction if the
// image has none; created says which.
func (tx *Tx) EnsureRoot() (root *Object, created bool, err error) {
	if err := tx.check(true); err != nil {
		return nil, false, err
	}
	root, err = tx.Object(RootOID)
	if errors.Is(err, store.ErrNotFound) {
		root = &Object{tx: tx, oid: RootOID, created: true}
		tx.objects.put(root)
		return root, true, nil
	}
	return root, false, err
}

// EnsureSystemObjects checks the image format and gives the root every
// system object it lacks (an object with a name slot; genesis delegates
// to traits). Objects the root already names are left as they are.
func EnsureSystemObjects(tx *Tx, root *Object) error {
	if v, ok := root.Get("image_format"); ok {
		if n, isInt := v.(Int); !isInt || n > FormatVersion {
			return fmt.Errorf("image format %s is newer than this batos reads (%d): upgrade batos", Repr(v), FormatVersion)
		}
	} else {
		if err := root.Set("image_format", Int(FormatVersion)); err != nil {
			return err
		}
	}
	for _, name := range SystemNames {
		if _, ok := root.Get(name); ok {
			continue
		}
		slots := []Slot{{Name: "name", Value: String(name)}}
		if name == "genesis" {
			traits, _ := root.Get("traits")
			slots = append(slots, Slot{Name: "parent*", Value: traits})
		}
		o, err := tx.New(slots...)
		if err != nil {
			return err
		}
		if err := root.Set(name, o.Ref()); err != nil {
			return err
		}
	}
	return nil
}
