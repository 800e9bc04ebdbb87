package protocol

import (
	"errors"
	"testing"

	"batos/internal/catalog"
	"batos/internal/command"
)

// FuzzCatalogArgs checks that the catalog commands' arguments, decoded
// from any request, never panic, are refused only with
// command.ErrBadRequest (or catalog.ErrTooLarge for a text over the
// limit), and when accepted are requests the command layer accepts.
func FuzzCatalogArgs(f *testing.F) {
	for _, m := range []map[string]any{
		{"paths": []any{"/srv/a.txt", "/srv/docs"}, "meta": map[string]any{"topic": "rivers"}},
		{"text": "The Nile is long.", "name": "notes/nile", "title": "Nile", "query": "nile", "k": int64(5)},
		{"paths": []any{"rel"}, "text": "", "query": " ", "k": int64(-1), "doc": "d1", "methods": true},
		{"paths": "x", "meta": []any{}, "query": int64(3), "k": 1.5, "doc": nil, "methods": "yes"},
		{"text": "x", "name": "", "meta": map[string]any{"": int64(1)}, "query": "q", "doc": ""},
	} {
		f.Add(mustEncode(f, m))
	}
	ok := func(err error) bool {
		return errors.Is(err, command.ErrBadRequest) || errors.Is(err, catalog.ErrTooLarge)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, decoded := decodeRequest(b)
		if !decoded {
			return
		}
		add, err := catalogAddArgs(req)
		if err != nil && !ok(err) {
			t.Fatalf("catalogAddArgs error %v is neither bad_request nor too large", err)
		}
		if err == nil && add.Check() != nil {
			t.Fatalf("catalogAddArgs accepted %+v, which Check refuses", add)
		}
		search, err := catalogSearchArgs(req)
		if err != nil && !errors.Is(err, command.ErrBadRequest) {
			t.Fatalf("catalogSearchArgs error %v does not wrap command.ErrBadRequest", err)
		}
		if err == nil && (search.Check() != nil || search.K < 0) {
			t.Fatalf("catalogSearchArgs accepted %+v", search)
		}
		doc, err := docArg(req)
		if err != nil && !errors.Is(err, command.ErrBadRequest) {
			t.Fatalf("docArg error %v does not wrap command.ErrBadRequest", err)
		}
		if err == nil && doc == "" {
			t.Fatal("docArg accepted an empty document")
		}
	})
}
