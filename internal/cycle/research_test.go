package cycle

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/image"
	"batos/internal/store"
	"batos/internal/vm"
)

// TestResearcherCitesTheCatalog runs a cycle whose plan routes a
// sub-question to BABS, with a catalog holding a passage that answers
// it: BABS's prompt quotes the passage with its number and citation, the
// step records the chunk, and the installed method keeps it as a source.
// ROBIN's similar methods come from the catalog's method search.
func TestResearcherCitesTheCatalog(t *testing.T) {
	b := &brain{plans: []string{goodPlan}, methods: []string{goodMethod}}
	db := personaImage(t)
	var answer store.OID
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		d, _, err := catalog.Add(tx, catalog.Source{Path: "/notes/display.md", Title: "display.md",
			Data: []byte("# Displaying objects\n\nAn object displays itself by naming itself and listing its slots, as genesis does.\n")}, nil)
		if err != nil {
			return err
		}
		answer = d.Chunks[0]
		if _, _, err := catalog.Add(tx, catalog.Source{Path: "/notes/taxes.txt",
			Data: []byte("Taxes are due in April. Receipts are kept for seven years.\n")}, nil); err != nil {
			return err
		}
		// A method elsewhere in the image, similar by its selector's words.
		root, err := tx.Root()
		if err != nil {
			return err
		}
		pet, err := tx.New(image.Slot{Name: "name", Value: image.String("Rex")},
			image.Slot{Name: "display_name", Value: &image.Method{Source: "def display_name(self):\n    return 'I am ' + self.name\n"}})
		if err != nil {
			return err
		}
		return root.Set("pet", pet.Ref())
	})
	if err != nil {
		t.Fatal(err)
	}
	lib, _, err := library.Open(t.Context(), db, &library.Options{IndexDir: filepath.Join(t.TempDir(), "index")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })

	m := newMachineOn(t, db, b, &Options{Catalog: func(context.Context) (*library.Library, error) { return lib, nil }})
	g := genesis(t, db)
	id, _, err := m.Start(t.Context(), Mission{Message: vm.Message{Receiver: g, Selector: "display_yourself"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	c := withPrompts(t, db, waitDone(t, m, id))
	if c.State != Complete {
		t.Fatalf("cycle ended %s: %s", c.State, c.Reason)
	}
	var babs, robin *Step
	for i := range c.Steps {
		switch c.Steps[i].Persona {
		case "BABS":
			babs = &c.Steps[i]
		case "ROBIN":
			robin = &c.Steps[i]
		}
	}
	if babs == nil || robin == nil {
		t.Fatalf("steps %+v", c.Steps)
	}
	prompt := babs.Prompt[len(babs.Prompt)-1].Content
	if !strings.Contains(prompt, "From the knowledge catalog:\n  [1] display.md#0: # Displaying objects") ||
		!strings.Contains(prompt, "Cite the catalog passages you rely on by their number") {
		t.Errorf("BABS's prompt does not quote the passage with its citation:\n%s", prompt)
	}
	if strings.Contains(prompt, "Taxes are due") {
		t.Errorf("BABS's prompt quotes a passage that does not bear on the question:\n%s", prompt)
	}
	if len(babs.Sources) == 0 || babs.Sources[0].Chunk != answer || babs.Sources[0].Title != "display.md" {
		t.Errorf("BABS's step records sources %+v, want chunk %s first", babs.Sources, answer)
	}
	// Only the researcher is shown passages.
	for _, s := range c.Steps {
		if s.Persona != "BABS" && len(s.Sources) > 0 {
			t.Errorf("%s's step records sources %+v", s.Persona, s.Sources)
		}
	}
	robinPrompt := robin.Prompt[len(robin.Prompt)-1].Content
	if !strings.Contains(robinPrompt, "pet.display_name:\n  def display_name(self)") {
		t.Errorf("ROBIN's similar methods lack pet.display_name from the catalog's search:\n%s", robinPrompt)
	}
	meth := installedMethod(t, db, g, "display_yourself")
	if meth == nil {
		t.Fatal("nothing installed")
	}
	v, _ := meth.Meta.Get(image.String("sources"))
	l, ok := v.(*image.List)
	if !ok || len(l.Elems) == 0 {
		t.Fatalf("installed method's sources: %s", image.Repr(v))
	}
	first := l.Elems[0].(*image.Dict)
	if chunk, _ := first.Get(image.String("chunk")); chunk != image.Ref(answer) {
		t.Errorf("installed method's first source %s, want chunk %s", image.Repr(first), answer)
	}
}
