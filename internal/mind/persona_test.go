package mind

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/image"
)

// TestPersonaSlotsValidated: personas are user-editable data, so a slot
// of the wrong kind is reported by name rather than misread.
func TestPersonaSlotsValidated(t *testing.T) {
	cases := []struct {
		slot  string
		value image.Value
		want  string
	}{
		{"temperature", image.String("hot"), "slot temperature"},
		{"temperature", image.Float(7), "slot temperature"},
		{"model", image.Int(3), "slot model"},
		{"adapter", image.String("x.gguf"), "slot adapter"},
		{"options", image.Int(1), "slot options"},
		{"options", dict(t, "bogus", image.Int(1)), `unknown option "bogus"`},
		{"options", dict(t, "top_p", image.Float(1.5)), "top_p"},
		{"options", dict(t, "max_tokens", image.Int(0)), "max_tokens"},
		{"options", dict(t, "stop", image.Int(0)), "stop"},
	}
	for _, c := range cases {
		t.Run(c.slot+"="+image.Repr(c.value), func(t *testing.T) {
			db, _ := testImage(t)
			err := db.Update(t.Context(), func(tx *image.Tx) error {
				o, err := personaObject(tx, "BRICK")
				if err != nil {
					return err
				}
				return o.Set(c.slot, c.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.View(t.Context(), func(tx *image.Tx) error { _, err := LoadPersona(tx, "BRICK"); return err })
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "BRICK") {
				t.Errorf("LoadPersona: %v, want an error naming BRICK and %q", err, c.want)
			}
		})
	}
}

func dict(t *testing.T, k string, v image.Value) *image.Dict {
	d := &image.Dict{}
	if err := d.Set(image.String(k), v); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEditPersona(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	if err := EditPersona(ctx, db, "BRICK", Edit{Model: ptr("tiny"), Temperature: ptr(0.7), SystemPrompt: ptr("Plan.")}); err != nil {
		t.Fatal(err)
	}
	var p *Persona
	if err := db.View(ctx, func(tx *image.Tx) (err error) { p, err = LoadPersona(tx, "BRICK"); return }); err != nil {
		t.Fatal(err)
	}
	if p.Model != "tiny" || *p.Temperature != 0.7 || p.SystemPrompt != "Plan." {
		t.Errorf("after edit: %+v", p)
	}
	for _, c := range []struct {
		name string
		edit Edit
		want error
	}{
		{"NOBODY", Edit{Model: ptr("x")}, ErrNoPersona},
		{"BRICK", Edit{Temperature: ptr(-1.0)}, nil},
		{"BRICK", Edit{Temperature: ptr(2.5)}, nil},
		{"bad name!", Edit{Create: true, Model: ptr("x")}, nil},
	} {
		err := EditPersona(ctx, db, c.name, c.edit)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("EditPersona(%q, %+v) = %v, want an error (%v)", c.name, c.edit, err, c.want)
		}
	}
	if err := EditPersona(ctx, db, "NEWBIE", Edit{Create: true, Role: ptr("helps")}); err != nil {
		t.Fatal(err)
	}
	var all []*Persona
	if err := db.View(ctx, func(tx *image.Tx) (err error) { all, err = LoadPersonas(tx); return }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range all {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "BRICK,ROBIN,NEWBIE" {
		t.Errorf("personas %v, want BRICK, ROBIN, NEWBIE", names)
	}
}

// TestCreatePersonaNamedLikeASlot: a persona may not be called after the
// personas object's own slots. Before, "-create name" replaced the
// object's name with a persona nobody could list.
func TestCreatePersonaNamedLikeASlot(t *testing.T) {
	db, _ := testImage(t)
	if err := EditPersona(t.Context(), db, "name", Edit{Create: true, Role: ptr("x")}); err == nil {
		t.Fatal("created a persona called name")
	}
	err := db.View(t.Context(), func(tx *image.Tx) error {
		ps, err := personasObject(tx)
		if err != nil {
			return err
		}
		if v, _ := ps.Get("name"); !image.Equal(v, image.String("personas")) {
			t.Errorf("personas' name slot is %s", image.Repr(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(t.Context(), db, "name", Edit{Role: ptr("x")}); !errors.Is(err, ErrNoPersona) {
		t.Errorf("editing persona name: %v, want ErrNoPersona", err)
	}
}
