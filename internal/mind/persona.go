package mind

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/store"
)

// ErrNoPersona is returned for a persona name the image does not have.
var ErrNoPersona = errors.New("mind: no such persona")

// Persona is a persona as read from the image.
type Persona struct {
	OID          store.OID
	Name         string
	Role         string
	SystemPrompt string
	// Model is the server's model name; empty means pLLM's default.
	Model string
	// Adapter is the LoRA adapter blob; a zero Digest means none.
	Adapter       image.BlobRef
	AdapterFile   string // the file name it was imported from
	AdapterFormat string // FormatGGUF or FormatPEFT
	Temperature   *float64
	Options       llm.Options
	Usage         Usage
}

// HasAdapter reports whether the persona has an adapter.
func (p *Persona) HasAdapter() bool { return p.Adapter.Digest != (store.Digest{}) }

// personasObject returns the root's "personas" object.
func personasObject(tx *image.Tx) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	v, ok := root.Get("personas")
	if !ok {
		return nil, errors.New("mind: the image has no personas object")
	}
	return tx.Deref(v)
}

// personaObject finds the named persona's object.
func personaObject(tx *image.Tx, name string) (*image.Object, error) {
	ps, err := personasObject(tx)
	if err != nil {
		return nil, err
	}
	v, ok := ps.Get(name)
	if _, isRef := v.(image.Ref); !ok || !isRef || image.IsParentSlot(name) || name == "name" {
		// Only what names lists is a persona ("name" is the object's own).
		return nil, fmt.Errorf("%w: %q (have %s)", ErrNoPersona, name, list(names(ps)))
	}
	o, err := tx.Deref(v)
	if err != nil {
		return nil, fmt.Errorf("persona %s: %w", name, err)
	}
	return o, nil
}

func names(ps *image.Object) []string {
	var out []string
	for _, s := range ps.Slots() {
		if _, ok := s.Value.(image.Ref); ok && !image.IsParentSlot(s.Name) && s.Name != "name" {
			out = append(out, s.Name)
		}
	}
	return out
}

// list is names as a message shows them: "BRICK, ROBIN", or "none".
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// LoadPersona reads the named persona in tx.
func LoadPersona(tx *image.Tx, name string) (*Persona, error) {
	o, err := personaObject(tx, name)
	if err != nil {
		return nil, err
	}
	return decodePersona(name, o)
}

// LoadPersonas reads every persona, in the order the image lists them.
func LoadPersonas(tx *image.Tx) ([]*Persona, error) {
	ps, err := personasObject(tx)
	if err != nil {
		return nil, err
	}
	var out []*Persona
	for _, name := range names(ps) {
		p, err := LoadPersona(tx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// decodePersona reads a persona object's slots, refusing values of the
// wrong kind with the slot's name: personas are user-editable data.
func decodePersona(name string, o *image.Object) (*Persona, error) {
	p := &Persona{OID: o.OID(), Name: name}
	bad := func(slot string, v image.Value, want string) error {
		return fmt.Errorf("persona %s: slot %s is %s, want %s", name, slot, image.Repr(v), want)
	}
	for _, s := range []struct {
		slot string
		dst  *string
	}{{"role", &p.Role}, {"system_prompt", &p.SystemPrompt}, {"model", &p.Model}, {"adapter_file", &p.AdapterFile}, {"adapter_format", &p.AdapterFormat}} {
		v, ok := o.Get(s.slot)
		if !ok || v == image.None {
			continue
		}
		str, isStr := v.(image.String)
		if !isStr {
			return nil, bad(s.slot, v, "a string")
		}
		*s.dst = string(str)
	}
	if v, ok := o.Get("adapter"); ok && v != image.None {
		b, isBlob := v.(image.BlobRef)
		if !isBlob {
			return nil, bad("adapter", v, "an adapter blob or None")
		}
		p.Adapter = b
		if p.AdapterFormat == "" {
			p.AdapterFormat = FormatGGUF
		}
	}
	if v, ok := o.Get("temperature"); ok && v != image.None {
		t, err := number(v)
		if err != nil || t < 0 || t > 2 {
			return nil, bad("temperature", v, "a number from 0 to 2")
		}
		p.Temperature = &t
	}
	if v, ok := o.Get("options"); ok && v != image.None {
		d, isDict := v.(*image.Dict)
		if !isDict {
			return nil, bad("options", v, "a dict")
		}
		opts, err := decodeOptions(d)
		if err != nil {
			return nil, fmt.Errorf("persona %s: options: %w", name, err)
		}
		p.Options = opts
	}
	if v, ok := o.Get("usage"); ok && v != image.None {
		d, isDict := v.(*image.Dict)
		if !isDict {
			return nil, bad("usage", v, "a dict")
		}
		p.Usage = decodeUsage(d)
	}
	p.Options.Temperature = p.Temperature
	return p, nil
}

func number(v image.Value) (float64, error) {
	switch n := v.(type) {
	case image.Int:
		return float64(n), nil
	case image.Float:
		if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return 0, errors.New("not finite")
		}
		return float64(n), nil
	}
	return 0, errors.New("not a number")
}

// optionKeys are the sampling options a persona's options dict may set.
var optionKeys = []string{"seed", "max_tokens", "top_k", "top_p", "stop", "num_ctx"}

func decodeOptions(d *image.Dict) (llm.Options, error) {
	var o llm.Options
	for k, v := range d.All() {
		key, ok := k.(image.String)
		if !ok {
			return o, fmt.Errorf("key %s is not a string", image.Repr(k))
		}
		var err error
		switch key {
		case "seed":
			var n int64
			n, err = integer(v, math.MinInt64)
			o.Seed = &n
		case "max_tokens":
			var n int64
			n, err = integer(v, 1)
			o.MaxTokens = int(n)
		case "top_k":
			var n int64
			n, err = integer(v, 1)
			o.TopK = int(n)
		case "num_ctx":
			var n int64
			n, err = integer(v, 1)
			o.ContextSize = int(n)
		case "top_p":
			o.TopP, err = number(v)
			if err == nil && (o.TopP <= 0 || o.TopP > 1) {
				err = errors.New("must be in (0, 1]")
			}
		case "stop":
			o.Stop, err = stringList(v)
		default:
			return o, fmt.Errorf("unknown option %q (known: %s)", key, list(optionKeys))
		}
		if err != nil {
			return o, fmt.Errorf("%s = %s: %w", key, image.Repr(v), err)
		}
	}
	return o, nil
}

func integer(v image.Value, min int64) (int64, error) {
	n, ok := v.(image.Int)
	if !ok {
		return 0, errors.New("not an integer")
	}
	if int64(n) < min {
		return 0, fmt.Errorf("must be at least %d", min)
	}
	return int64(n), nil
}

func stringList(v image.Value) ([]string, error) {
	l, ok := v.(*image.List)
	if !ok {
		return nil, errors.New("not a list of strings")
	}
	var out []string
	for _, e := range l.Elems {
		s, ok := e.(image.String)
		if !ok {
			return nil, errors.New("not a list of strings")
		}
		out = append(out, string(s))
	}
	return out, nil
}
