package uvm

import (
	"fmt"

	"batos/internal/heartbeat"

	"batos/internal/image"
)

// SystemVersion is recorded in the root's "system_version" slot; an image
// awakened by a newer batos has its system objects upgraded.
const SystemVersion = 1

// traitsMethods is the shared behaviour every object reaches through
// traits (genesis delegates to it). Methods batos installs carry
// origin=batos in their metadata; one a user replaced is never upgraded.
var traitsMethods = []struct{ name, source string }{
	{"clone", `def clone(self, **slots):
    """A new object with a copy of my slots (parents included), then slots."""
    return clone_object(self, **slots)
`},
	{"describe", `def describe(self):
    """One line naming me and my own slots."""
    name = self.name if has_slot(self, "name") else "an object"
    return "%s (%s): %s" % (name, oid(self), ", ".join(slots(self)))
`},
	{"responds_to", `def responds_to(self, selector):
    """Whether I, or something I delegate to, has the slot."""
    return has_slot(self, selector)
`},
	{"slot_names", `def slot_names(self):
    """My own slot names, in order."""
    return slots(self)
`},
}

// persona is a seeded persona: editable data, written once.
type persona struct {
	name, role, prompt string
	temperature        float64
}

var seededPersonas = []persona{
	{"BRICK", "deconstructs a mission into a plan", `You are BRICK, the architect of BAT OS, a living image of persistent prototype objects.
When an object receives a message nothing understands, you receive the mission: the receiver, the
selector, the arguments, the receiver's slots, parents and methods with their source, and similar
methods found in the image. Deconstruct it into a plan: state the intent in one sentence, list the
sub-questions that must be answered (each addressed to BABS for research, ROBIN for synthesis or
ALFRED for review), give the method's signature, and write test cases as concrete calls with
expected results. Be precise and literal; prefer the smallest method that does the job. Answer only
with the JSON the schema asks for.`, 0.2},
	{"ROBIN", "weaves partial answers into the final method", `You are ROBIN, the synthesizer of BAT OS. You receive a plan from BRICK and the answers to its
sub-questions, and you write the one method the mission needs, in Starlark (a Python dialect):
exactly one function, named like the selector, whose first parameter is self, with no load
statements, no top-level code but a docstring, and only the built-ins the task lists. Read slots as
self.name, write them as self.name = value. The plan's tests run with yours; add your own only for
what they miss. If an earlier attempt failed, the failure is given verbatim with a hint where one
applies: fix what it reports. Answer only with the JSON the schema asks for.`, 0.4},
	{"BABS", "researches: catalog retrieval and existing methods", `You are BABS, the researcher of BAT OS. You answer one sub-question of a mission from what the
image already knows: documents in the knowledge catalog and the methods objects already have.
Quote what you rely on, name the objects and slots it comes from, and say plainly when the image
does not know something rather than guessing. Keep answers short and factual.`, 0.3},
	{"ALFRED", "steward: audits code and the system's own efficiency", `You are ALFRED, the steward of BAT OS. You review generated methods before they are installed and
the system's own history afterwards: correctness against the tests, needless complexity, methods
that fail or run slowly, and cycles that cost more than they give. Be brief and concrete: name the
method, the problem and the smallest fix. Approve only what you would maintain yourself.`, 0.1},
}

// awaken brings tx's image to the primordial state: root and system
// objects, traits behaviour, seeded personas. Everything missing is
// created; batos's own methods are upgraded; what users changed is left.
func awaken(tx *image.Tx) (created bool, err error) {
	root, created, err := tx.EnsureRoot()
	if err != nil {
		return false, err
	}
	if err := image.EnsureSystemObjects(tx, root); err != nil {
		return false, err
	}
	if v, ok := root.Get("system_version"); ok {
		if n, isInt := v.(image.Int); isInt && n > SystemVersion {
			return false, fmt.Errorf("image system version %d is newer than this batos (%d): upgrade batos", n, SystemVersion)
		}
	}
	traits, err := systemObject(tx, root, "traits")
	if err != nil {
		return false, err
	}
	for _, m := range traitsMethods {
		if err := installMethod(traits, m.name, m.source); err != nil {
			return false, err
		}
	}
	// knowledge_catalog.search(query, k) reaches the catalog from methods.
	cat, err := systemObject(tx, root, "knowledge_catalog")
	if err != nil {
		return false, err
	}
	if _, ok := cat.Get("search"); !ok {
		if err := cat.Set("search", image.Primitive{Name: catalogSearchPrimitive}); err != nil {
			return false, err
		}
	}
	if err := heartbeat.Awaken(tx); err != nil {
		return false, err
	}
	personas, err := systemObject(tx, root, "personas")
	if err != nil {
		return false, err
	}
	for _, p := range seededPersonas {
		if err := seedPersona(tx, personas, p); err != nil {
			return false, err
		}
	}
	return created, root.Set("system_version", image.Int(SystemVersion))
}

func systemObject(tx *image.Tx, root *image.Object, name string) (*image.Object, error) {
	v, _ := root.Get(name)
	o, err := tx.Deref(v)
	if err != nil {
		return nil, fmt.Errorf("system object %s: %w", name, err)
	}
	return o, nil
}

// installMethod sets a batos method unless the slot holds something a
// user put there.
func installMethod(o *image.Object, name, source string) error {
	if v, ok := o.Get(name); ok {
		m, isMethod := v.(*image.Method)
		if !isMethod || m.Meta == nil {
			return nil
		}
		if origin, _ := m.Meta.Get(image.String("origin")); !image.Equal(origin, image.String("batos")) {
			return nil
		}
		if m.Source == source {
			return nil
		}
	}
	meta := &image.Dict{}
	if err := meta.Set(image.String("origin"), image.String("batos")); err != nil {
		return err
	}
	return o.Set(name, &image.Method{Source: source, Meta: meta})
}

func seedPersona(tx *image.Tx, personas *image.Object, p persona) error {
	if _, ok := personas.Get(p.name); ok {
		return nil // personas are the user's to edit once seeded
	}
	o, err := tx.New(
		image.Slot{Name: "name", Value: image.String(p.name)},
		image.Slot{Name: "role", Value: image.String(p.role)},
		image.Slot{Name: "system_prompt", Value: image.String(p.prompt)},
		image.Slot{Name: "model", Value: image.None},
		image.Slot{Name: "adapter", Value: image.None},
		image.Slot{Name: "temperature", Value: image.Float(p.temperature)},
	)
	if err != nil {
		return err
	}
	return personas.Set(p.name, o.Ref())
}
