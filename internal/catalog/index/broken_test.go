package index_test

import (
	"slices"
	"testing"

	"batos/internal/catalog/index"
	"batos/internal/image"
)

// TestMalformedDocumentDoesNotStopTheIndex edits a document object into
// a shape the catalog cannot read, as a user may from the REPL: the
// other documents are still searched (at a rebuild and at a catch-up),
// the malformed one is not, and mending it brings it back.
func TestMalformedDocumentDoesNotStopTheIndex(t *testing.T) {
	f := newFixture(t)
	owls := f.add("owls.txt", sentences("owl", 6), nil)
	f.add("foxes.txt", sentences("fox", 6), nil)
	setTitle := func(v image.Value) {
		f.update(func(tx *image.Tx) error {
			o, err := tx.Object(owls.OID)
			if err != nil {
				return err
			}
			return o.Set("title", v)
		})
	}
	setTitle(image.Int(7))

	// A rebuild over the malformed document.
	ix, rep := f.open(nil)
	if !rep.Rebuilt {
		t.Fatalf("first open: %+v", rep)
	}
	if got := docsFound(search(t, ix, index.Query{Text: "fox"}), "foxes.txt"); !slices.Equal(got, []string{"foxes.txt"}) {
		t.Errorf("fox found in %v", got)
	}
	if got := search(t, ix, index.Query{Text: "owl"}); len(got) != 0 {
		t.Errorf("the malformed document is searched: %v", docsFound(got))
	}

	// Mended, it is indexed again at the next catch-up.
	setTitle(image.String("owls.txt"))
	if got := docsFound(search(t, ix, index.Query{Text: "owl"}), "owls.txt"); !slices.Equal(got, []string{"owls.txt"}) {
		t.Errorf("after mending, owl found in %v", got)
	}

	// Broken again during a catch-up: the others are still searched.
	setTitle(image.None)
	if got := search(t, ix, index.Query{Text: "owl"}); len(got) != 0 {
		t.Errorf("the malformed document is searched after a catch-up: %v", docsFound(got))
	}
	if got := docsFound(search(t, ix, index.Query{Text: "fox"}), "foxes.txt"); !slices.Equal(got, []string{"foxes.txt"}) {
		t.Errorf("after a catch-up over a malformed document, fox found in %v", got)
	}
}
