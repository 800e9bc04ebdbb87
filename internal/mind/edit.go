package mind

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"

	"batos/internal/image"
)

// Edit changes a persona; nil fields are left as they are.
type Edit struct {
	Role         *string
	SystemPrompt *string
	// Model names the server's model; an empty string means pLLM's default.
	Model       *string
	Temperature *float64
	// Adapter attaches an imported adapter; ClearAdapter removes it.
	Adapter      *Imported
	ClearAdapter bool
	// Create makes the persona if the image has none by that name.
	Create bool
}

// personaName is what a persona may be called: a slot name that reads
// well in prompts and in Ollama model names.
var personaName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,39}$`)

// Validate reports what is wrong with e on its own, before any
// transaction; callers that store an adapter first call it to refuse a
// bad edit before the copy.
func (e *Edit) Validate() error {
	if e.Temperature != nil {
		if t := *e.Temperature; math.IsNaN(t) || t < 0 || t > 2 {
			return fmt.Errorf("temperature %v: want a number from 0 to 2", t)
		}
	}
	if e.Adapter != nil && e.ClearAdapter {
		return errors.New("both an adapter and none given")
	}
	return nil
}

// EditPersona applies e to the named persona in one transaction.
func EditPersona(ctx context.Context, db *image.DB, name string, e Edit) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("persona %s: %w", name, err)
	}
	return db.Update(ctx, func(tx *image.Tx) error {
		tx.Note("mind: edit persona " + name)
		return e.Apply(tx, name)
	})
}

// Apply makes the edit to persona name in tx, creating the persona if
// e.Create says so; e must have passed Validate. It refuses an edit that
// would leave the persona unreadable.
func (e Edit) Apply(tx *image.Tx, name string) error {
	o, err := personaObject(tx, name)
	if errors.Is(err, ErrNoPersona) && e.Create {
		o, err = createPersona(tx, name)
	}
	if err != nil {
		return err
	}
	var sets []image.Slot
	if e.Role != nil {
		sets = append(sets, image.Slot{Name: "role", Value: image.String(*e.Role)})
	}
	if e.SystemPrompt != nil {
		sets = append(sets, image.Slot{Name: "system_prompt", Value: image.String(*e.SystemPrompt)})
	}
	if e.Model != nil {
		var v image.Value = image.String(*e.Model)
		if *e.Model == "" {
			v = image.None
		}
		sets = append(sets, image.Slot{Name: "model", Value: v})
	}
	if e.Temperature != nil {
		sets = append(sets, image.Slot{Name: "temperature", Value: image.Float(*e.Temperature)})
	}
	if e.Adapter != nil {
		sets = append(sets, image.Slot{Name: "adapter", Value: e.Adapter.Blob},
			image.Slot{Name: "adapter_file", Value: image.String(e.Adapter.File)},
			image.Slot{Name: "adapter_format", Value: image.String(e.Adapter.Format)})
	}
	if e.ClearAdapter {
		sets = append(sets, image.Slot{Name: "adapter", Value: image.None},
			image.Slot{Name: "adapter_file", Value: image.None},
			image.Slot{Name: "adapter_format", Value: image.None})
	}
	for _, s := range sets {
		if err := o.Set(s.Name, s.Value); err != nil {
			return err
		}
	}
	// Refuse an edit that leaves the persona unreadable.
	_, err = decodePersona(name, o)
	return err
}

func createPersona(tx *image.Tx, name string) (*image.Object, error) {
	if !personaName.MatchString(name) {
		return nil, fmt.Errorf("persona name %q: want a letter then up to 39 letters, digits or _", name)
	}
	ps, err := personasObject(tx)
	if err != nil {
		return nil, err
	}
	if v, taken := ps.Get(name); taken {
		return nil, fmt.Errorf("persona name %q: the personas object's slot %s holds %s, not a persona", name, name, image.Repr(v))
	}
	o, err := tx.New(
		image.Slot{Name: "name", Value: image.String(name)},
		image.Slot{Name: "role", Value: image.String("")},
		image.Slot{Name: "system_prompt", Value: image.String("")},
		image.Slot{Name: "model", Value: image.None},
		image.Slot{Name: "adapter", Value: image.None},
		image.Slot{Name: "temperature", Value: image.Float(0.3)},
	)
	if err != nil {
		return nil, err
	}
	return o, ps.Set(name, o.Ref())
}
