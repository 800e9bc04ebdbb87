package uvm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

// TestCatalogSearchFromMethods adds a document through the catalog and
// searches it from Starlark: from an eval, and from a method that uses
// knowledge_catalog.search, whose hits are dicts with the passage's text
// and citation.
func TestCatalogSearchFromMethods(t *testing.T) {
	ctx := t.Context()
	u := uvmtest.Open(t, nil)
	lib, err := u.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []struct{ name, text string }{
		{"rivers.txt", "The Danube flows through ten countries. It rises in the Black Forest."},
		{"bread.txt", "Sourdough bread needs a starter, flour, water and salt."},
	} {
		if o := lib.AddText(ctx, doc.name, []byte(doc.text), "", nil); !o.OK() {
			t.Fatalf("add %s: %+v", doc.name, o)
		}
	}
	res, err := u.Eval(ctx, `knowledge_catalog.search("danube countries", 3)`)
	if err != nil {
		t.Fatal(err)
	}
	hits, ok := res.Value.(*image.List)
	if !ok || len(hits.Elems) != 1 {
		t.Fatalf("search answered %s, want one hit", res.Repr)
	}
	hit := hits.Elems[0].(*image.Dict)
	for k, want := range map[string]image.Value{"title": image.String("rivers.txt"), "position": image.Int(0)} {
		if got, _ := hit.Get(image.String(k)); got != want {
			t.Errorf("hit %s = %s, want %s", k, image.Repr(got), image.Repr(want))
		}
	}
	if text, _ := hit.Get(image.String("text")); !strings.Contains(string(text.(image.String)), "ten countries") {
		t.Errorf("hit text %s", image.Repr(text))
	}

	// A method using the catalog answers from it.
	if err := setMethod(t, u, "genesis", "recall", "def recall(self, topic):\n    hits = knowledge_catalog.search(topic)\n    return [h[\"title\"] for h in hits]\n"); err != nil {
		t.Fatal(err)
	}
	got, err := u.Send(ctx, "genesis", "recall", []image.Value{image.String("sourdough starter")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Repr != `["bread.txt"]` {
		t.Errorf("recall answered %s", got.Repr)
	}

	for _, bad := range []struct{ code, want string }{
		{`knowledge_catalog.search(1)`, "want a string"},
		{`knowledge_catalog.search("x", 0)`, "want an int from 1 to 100"},
		{`knowledge_catalog.search()`, "takes a query"},
		{`knowledge_catalog.search("   ")`, "no words"},
	} {
		if _, err := u.Eval(ctx, bad.code); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one saying %q", bad.code, err, bad.want)
		}
	}
}

func setMethod(t *testing.T, u *uvm.UVM, target, name, source string) error {
	t.Helper()
	return u.DB().Update(t.Context(), func(tx *image.Tx) error {
		oid, err := tx.Resolve(target)
		if err != nil {
			return err
		}
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set(name, &image.Method{Source: source})
	})
}

// TestCatalogIndexBesideTheImage checks the catalog's indexes live in
// the image's path plus ".index", and come back after the directory is
// deleted.
func TestCatalogIndexBesideTheImage(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "live_image.db")
	u, _ := uvmtest.OpenAt(t, path, nil)
	lib, err := u.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := lib.AddText(ctx, "owls.txt", []byte("Owls hunt at night and sleep by day."), "", nil); !o.OK() {
		t.Fatalf("add: %+v", o)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(uvm.IndexDir(path), "state.json")); err != nil {
		t.Fatalf("no index beside the image: %v", err)
	}
	if err := os.RemoveAll(uvm.IndexDir(path)); err != nil {
		t.Fatal(err)
	}
	u, _ = uvmtest.OpenAt(t, path, nil)
	res, err := u.Eval(ctx, `knowledge_catalog.search("owls night")`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Repr, "Owls hunt at night") {
		t.Errorf("after the index was deleted, search answered %s", res.Repr)
	}
}
