package zmqbridge_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/command"
	"batos/internal/image"
	"batos/internal/uvm/uvmtest"
	"batos/internal/zmqbridge"
)

// catalogService is fakeService with a catalog: it records each catalog
// call with its typed request and answers fixed results; document "d404"
// is unknown.
type catalogService struct {
	fakeService
	mu    sync.Mutex
	calls []string
}

func (c *catalogService) record(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
}

func (c *catalogService) called() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

var noModel = command.CatalogMode{Mode: "text", Note: "no embedding model"}

var riversDoc = command.CatalogDoc{ID: "d1", OID: "oid:40", Title: "rivers.txt", Path: "/srv/rivers.txt", Kind: "text", SHA256: "ab12",
	Meta: map[string]string{"topic": "nature"}, Chunks: 1, Size: 120, Tokens: 40, Added: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
	Serial: "18ec915f7ecc7987", MinTokens: 32, MaxTokens: 256}

var riversDocWire = map[string]any{"id": "d1", "oid": "oid:40", "title": "rivers.txt", "path": "/srv/rivers.txt", "kind": "text", "sha256": "ab12",
	"meta": map[string]any{"topic": "nature"}, "chunks": int64(1), "size": int64(120), "tokens": int64(40), "added": "2026-12-01T09:00:00Z",
	"serial": "18ec915f7ecc7987", "min_tokens": int64(32), "max_tokens": int64(256)}

func (c *catalogService) CatalogAdd(ctx context.Context, req command.CatalogAddRequest) (command.CatalogAddResult, error) {
	c.record("CatalogAdd paths=%q text=%q name=%q title=%q meta=%v", req.Paths, req.Text, req.Name, req.Title, req.Meta)
	return command.CatalogAddResult{CatalogMode: noModel, Files: []command.CatalogOutcome{
		{Path: "/srv/rivers.txt", Doc: "d1", Result: command.CatalogAdded, Chunks: 1, Bytes: 120},
		{Path: "/srv/blob.bin", Result: command.CatalogSkipped, Reason: "binary content, not indexed as text", Bytes: 9},
	}}, nil
}

func (c *catalogService) CatalogSearch(ctx context.Context, req command.CatalogSearchRequest) (command.CatalogSearchResult, error) {
	c.record("CatalogSearch %q k=%d methods=%v doc=%q meta=%v", req.Query, req.K, req.Methods, req.Doc, req.Meta)
	if req.Doc == "d404" {
		return command.CatalogSearchResult{}, fmt.Errorf("%w: %q", catalog.ErrNoDocument, req.Doc)
	}
	return command.CatalogSearchResult{CatalogMode: noModel, Hits: []command.CatalogHit{{
		Score: 0.5, TextRank: 1, Cite: "rivers.txt#0", Chunk: "oid:41", Doc: "d1", Title: "rivers.txt", Path: "/srv/rivers.txt",
		Text: "The Nile is long.", Span: &command.CatalogSpan{Start: 0, End: 17}, Fragment: "The Nile is long.",
		Marks: []command.CatalogSpan{{Start: 4, End: 8}},
	}}}, nil
}

func (c *catalogService) CatalogList(ctx context.Context) (command.CatalogList, error) {
	c.record("CatalogList")
	return command.CatalogList{CatalogMode: noModel, Docs: []command.CatalogDoc{riversDoc}}, nil
}

func (c *catalogService) CatalogShow(ctx context.Context, doc string) (command.CatalogDocument, error) {
	c.record("CatalogShow %q", doc)
	if doc == "d404" {
		return command.CatalogDocument{}, fmt.Errorf("%w: %q", catalog.ErrNoDocument, doc)
	}
	return command.CatalogDocument{CatalogMode: noModel, Doc: riversDoc, Chunks: []command.CatalogChunk{
		{OID: "oid:41", Position: 0, Span: command.CatalogSpan{Start: 0, End: 17}, Tokens: 6, Text: "The Nile is long."}}}, nil
}

func (c *catalogService) CatalogRemove(ctx context.Context, doc string) (command.CatalogRemoved, error) {
	c.record("CatalogRemove %q", doc)
	return command.CatalogRemoved{CatalogMode: noModel, Doc: riversDoc}, nil
}

func (c *catalogService) CatalogReindex(ctx context.Context) (command.CatalogReindexed, error) {
	c.record("CatalogReindex")
	return command.CatalogReindexed{CatalogMode: noModel, Rebuilt: true, Reason: "asked to", TookMS: 12.5}, nil
}

func (c *catalogService) CatalogStats(ctx context.Context) (command.CatalogStats, error) {
	c.record("CatalogStats")
	return command.CatalogStats{CatalogMode: noModel, Documents: 1, Chunks: 1, Bytes: 120, Tokens: 40,
		Index: command.CatalogIndexStats{Documents: 1, Chunks: 1, Methods: 12, Entries: 13, Bytes: 4096, LastTID: "18ec915f7ecc7987"},
		Usage: command.CatalogUsage{Calls: 2, Texts: 5, Cached: 3, LatencyMS: 1.5}}, nil
}

// TestCatalogCommands: the catalog commands reach the service with the
// arguments the requests carry, and their results come back in their
// wire forms (docs/protocol.md).
func TestCatalogCommands(t *testing.T) {
	svc := &catalogService{}
	_, addr, _ := startServer(t, svc)
	d := dealer(t, addr)
	mode := func(m map[string]any) map[string]any {
		m["mode"], m["note"] = "text", "no embedding model"
		return m
	}
	cases := []struct {
		m    map[string]any
		call string
		want any
		kind command.Kind
	}{
		{map[string]any{"command": "catalog_add", "paths": []any{"/srv/rivers.txt", "/srv/blob.bin"}, "meta": map[string]any{"topic": "nature"}},
			`CatalogAdd paths=["/srv/rivers.txt" "/srv/blob.bin"] text="" name="" title="" meta=map[topic:nature]`,
			mode(map[string]any{"files": []any{
				map[string]any{"path": "/srv/rivers.txt", "doc": "d1", "result": "added", "chunks": int64(1), "bytes": int64(120), "semantic": false, "embed_calls": int64(0), "embed_cached": int64(0)},
				map[string]any{"path": "/srv/blob.bin", "result": "skipped", "reason": "binary content, not indexed as text", "chunks": int64(0), "bytes": int64(9), "semantic": false, "embed_calls": int64(0), "embed_cached": int64(0)},
			}}), ""},
		{map[string]any{"command": "catalog_add", "text": "Knots bind.", "name": "notes/knots", "title": "Knots"},
			`CatalogAdd paths=[] text="Knots bind." name="notes/knots" title="Knots" meta=map[]`, nil, ""},
		{map[string]any{"command": "catalog_search", "query": "long river"}, `CatalogSearch "long river" k=0 methods=false doc="" meta=map[]`,
			mode(map[string]any{"hits": []any{map[string]any{
				"score": 0.5, "text_rank": int64(1), "vector_rank": int64(0), "similarity": int64(0), "cite": "rivers.txt#0", "chunk": "oid:41", "doc": "d1",
				"title": "rivers.txt", "path": "/srv/rivers.txt", "position": int64(0), "text": "The Nile is long.",
				"span": map[string]any{"start": int64(0), "end": int64(17)}, "fragment": "The Nile is long.",
				"marks": []any{map[string]any{"start": int64(4), "end": int64(8)}},
			}}}), ""},
		{map[string]any{"command": "catalog_search", "query": "x", "k": int64(3), "methods": true}, `CatalogSearch "x" k=3 methods=true doc="" meta=map[]`, nil, ""},
		{map[string]any{"command": "catalog_search", "query": "x", "doc": "/srv/rivers.txt", "meta": map[string]any{"a": "b"}, "k": nil},
			`CatalogSearch "x" k=0 methods=false doc="/srv/rivers.txt" meta=map[a:b]`, nil, ""},
		{map[string]any{"command": "catalog_search", "query": "x", "doc": "d404"}, `CatalogSearch "x" k=0 methods=false doc="d404" meta=map[]`, nil, command.KindNotFound},
		{map[string]any{"command": "catalog_list"}, "CatalogList", mode(map[string]any{"docs": []any{riversDocWire}}), ""},
		{map[string]any{"command": "catalog_show", "doc": "d1"}, `CatalogShow "d1"`, mode(map[string]any{"doc": riversDocWire, "chunks": []any{map[string]any{
			"oid": "oid:41", "position": int64(0), "span": map[string]any{"start": int64(0), "end": int64(17)}, "tokens": int64(6), "embedded": false, "text": "The Nile is long.",
		}}}), ""},
		{map[string]any{"command": "catalog_show", "doc": "d404"}, `CatalogShow "d404"`, nil, command.KindNotFound},
		{map[string]any{"command": "catalog_remove", "doc": "/srv/rivers.txt"}, `CatalogRemove "/srv/rivers.txt"`, mode(map[string]any{"doc": riversDocWire}), ""},
		{map[string]any{"command": "catalog_reindex"}, "CatalogReindex", mode(map[string]any{"rebuilt": true, "reason": "asked to", "took_ms": 12.5}), ""},
		{map[string]any{"command": "catalog_stats"}, "CatalogStats", mode(map[string]any{
			"documents": int64(1), "chunks": int64(1), "bytes": int64(120), "tokens": int64(40),
			"index": map[string]any{"documents": int64(1), "chunks": int64(1), "methods": int64(12), "vectors": int64(0), "dims": int64(0),
				"entries": int64(13), "bytes": int64(4096), "last_tid": "18ec915f7ecc7987"},
			"embedding_usage": map[string]any{"calls": int64(2), "failures": int64(0), "prompt_tokens": int64(0), "texts": int64(5), "cached": int64(3), "latency_ms": 1.5},
		}), ""},
	}
	for i, tc := range cases {
		tc.m["id"] = int64(i)
		r := req(t, d, tc.m)
		if calls := svc.called(); len(calls) != i+1 || calls[i] != tc.call {
			t.Errorf("%d %v: the service was called %q, want last %q", i, tc.m, calls, tc.call)
		}
		if tc.kind != "" {
			if r["ok"] != false || errKind(r) != tc.kind {
				t.Errorf("%d %v: got %v, want %s", i, tc.m, r, tc.kind)
			}
			continue
		}
		if r["ok"] != true {
			t.Errorf("%d %v: got %v", i, tc.m, r)
			continue
		}
		if tc.want == nil {
			continue
		}
		if diff := cmp.Diff(r["result"], tc.want); diff != "" {
			t.Errorf("%d %v (-got +want):\n%s", i, tc.m, diff)
		}
	}
}

// TestHostileCatalogArguments: wrong types, missing and contradicting
// arguments and values out of range are bad_request (a text over the
// catalog's size, limit), and nothing reaches the service.
func TestHostileCatalogArguments(t *testing.T) {
	svc := &catalogService{}
	// Room for a text over the catalog's limit in one request.
	s, err := zmqbridge.Listen(svc, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*",
		Limits: zmqbridge.Limits{MaxBytes: catalog.DefaultMaxBytes + 1<<20}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	addr, _ := s.Endpoints()
	d := dealer(t, addr)
	manyMeta := map[string]any{}
	for i := range command.MaxCatalogMeta + 1 {
		manyMeta[fmt.Sprint("k", i)] = "v"
	}
	add := func(kv ...any) map[string]any {
		m := map[string]any{"command": "catalog_add"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	search := func(kv ...any) map[string]any {
		m := add(kv...)
		m["command"] = "catalog_search"
		return m
	}
	cases := map[string]struct {
		m    map[string]any
		kind command.Kind
	}{
		"add nothing":               {add(), command.KindBadRequest},
		"add paths and text":        {add("paths", []any{"/a"}, "text", "x", "name", "x"), command.KindBadRequest},
		"add paths not a list":      {add("paths", "/a"), command.KindBadRequest},
		"add paths of ints":         {add("paths", []any{int64(1)}), command.KindBadRequest},
		"add paths of refs":         {add("paths", []any{image.Ref(3)}), command.KindBadRequest},
		"add paths empty":           {add("paths", []any{}), command.KindBadRequest},
		"add path relative":         {add("paths", []any{"notes/a.txt"}), command.KindBadRequest},
		"add path empty":            {add("paths", []any{""}), command.KindBadRequest},
		"add path with NUL":         {add("paths", []any{"/a\x00b"}), command.KindBadRequest},
		"add path huge":             {add("paths", []any{"/" + strings.Repeat("p", command.MaxCatalogNameBytes)}), command.KindBadRequest},
		"add paths with a name":     {add("paths", []any{"/a"}, "name", "x"), command.KindBadRequest},
		"add paths with a title":    {add("paths", []any{"/a"}, "title", "x"), command.KindBadRequest},
		"add text without name":     {add("text", "words"), command.KindBadRequest},
		"add text with empty name":  {add("text", "words", "name", ""), command.KindBadRequest},
		"add text empty":            {add("text", "", "name", "n"), command.KindBadRequest},
		"add text binary":           {add("text", []byte("words"), "name", "n"), command.KindBadRequest},
		"add text int":              {add("text", int64(4), "name", "n"), command.KindBadRequest},
		"add text ref":              {add("text", image.Ref(3), "name", "n"), command.KindBadRequest},
		"add name ref":              {add("text", "words", "name", image.Ref(3)), command.KindBadRequest},
		"add name int":              {add("text", "words", "name", int64(3)), command.KindBadRequest},
		"add title map":             {add("text", "words", "name", "n", "title", map[string]any{}), command.KindBadRequest},
		"add text too large":        {add("text", strings.Repeat("a", catalog.DefaultMaxBytes+1), "name", "big"), command.KindLimit},
		"add meta not a map":        {add("paths", []any{"/a"}, "meta", []any{"k", "v"}), command.KindBadRequest},
		"add meta string":           {add("paths", []any{"/a"}, "meta", "k=v"), command.KindBadRequest},
		"add meta int value":        {add("paths", []any{"/a"}, "meta", map[string]any{"k": int64(1)}), command.KindBadRequest},
		"add meta nil value":        {add("paths", []any{"/a"}, "meta", map[string]any{"k": nil}), command.KindBadRequest},
		"add meta nested":           {add("paths", []any{"/a"}, "meta", map[string]any{"k": map[string]any{}}), command.KindBadRequest},
		"add meta empty key":        {add("paths", []any{"/a"}, "meta", map[string]any{"": "v"}), command.KindBadRequest},
		"add meta long key":         {add("paths", []any{"/a"}, "meta", map[string]any{strings.Repeat("k", command.MaxMetaKeyBytes+1): "v"}), command.KindBadRequest},
		"add meta long value":       {add("paths", []any{"/a"}, "meta", map[string]any{"k": strings.Repeat("v", command.MaxMetaValueBytes+1)}), command.KindBadRequest},
		"add meta too many":         {add("paths", []any{"/a"}, "meta", manyMeta), command.KindBadRequest},
		"search no query":           {search(), command.KindBadRequest},
		"search empty query":        {search("query", ""), command.KindBadRequest},
		"search blank query":        {search("query", " \t\n"), command.KindBadRequest},
		"search query int":          {search("query", int64(1)), command.KindBadRequest},
		"search query list":         {search("query", []any{"x"}), command.KindBadRequest},
		"search query huge":         {search("query", strings.Repeat("word ", 10000)), command.KindBadRequest},
		"search k huge":             {search("query", "x", "k", int64(math.MaxInt64)), command.KindBadRequest},
		"search k over max":         {search("query", "x", "k", int64(1001)), command.KindBadRequest},
		"search k max int32":        {search("query", "x", "k", int64(math.MaxInt32)), command.KindBadRequest},
		"search k negative":         {search("query", "x", "k", int64(-1)), command.KindBadRequest},
		"search k float":            {search("query", "x", "k", 2.5), command.KindBadRequest},
		"search k string":           {search("query", "x", "k", "5"), command.KindBadRequest},
		"search methods string":     {search("query", "x", "methods", "yes"), command.KindBadRequest},
		"search methods int":        {search("query", "x", "methods", int64(1)), command.KindBadRequest},
		"search methods with doc":   {search("query", "x", "methods", true, "doc", "d1"), command.KindBadRequest},
		"search methods with meta":  {search("query", "x", "methods", true, "meta", map[string]any{"a": "b"}), command.KindBadRequest},
		"search doc int":            {search("query", "x", "doc", int64(1)), command.KindBadRequest},
		"search doc ref":            {search("query", "x", "doc", image.Ref(1)), command.KindBadRequest},
		"search meta not a map":     {search("query", "x", "meta", "a=b"), command.KindBadRequest},
		"search meta bool value":    {search("query", "x", "meta", map[string]any{"a": true}), command.KindBadRequest},
		"search meta too many":      {search("query", "x", "meta", manyMeta), command.KindBadRequest},
		"show no doc":               {map[string]any{"command": "catalog_show"}, command.KindBadRequest},
		"show empty doc":            {map[string]any{"command": "catalog_show", "doc": ""}, command.KindBadRequest},
		"show doc int":              {map[string]any{"command": "catalog_show", "doc": int64(1)}, command.KindBadRequest},
		"show doc list":             {map[string]any{"command": "catalog_show", "doc": []any{"d1"}}, command.KindBadRequest},
		"show doc huge":             {map[string]any{"command": "catalog_show", "doc": strings.Repeat("d", command.MaxCatalogNameBytes+1)}, command.KindBadRequest},
		"remove no doc":             {map[string]any{"command": "catalog_remove"}, command.KindBadRequest},
		"remove doc nil":            {map[string]any{"command": "catalog_remove", "doc": nil}, command.KindBadRequest},
		"remove doc map":            {map[string]any{"command": "catalog_remove", "doc": map[string]any{"id": "d1"}}, command.KindBadRequest},
		"remove doc with NUL":       {map[string]any{"command": "catalog_remove", "doc": "d\x001"}, command.KindBadRequest},
		"add paths and text nil":    {add("paths", nil, "text", nil), command.KindBadRequest},
		"add text with paths empty": {add("paths", []any{}, "text", "x", "name", "n"), command.KindBadRequest},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.m["id"] = name
			r := req(t, d, tc.m)
			if r["ok"] != false || errKind(r) != tc.kind || r["id"] != name {
				t.Errorf("got %v, want %s", r, tc.kind)
			}
		})
	}
	if got := svc.called(); len(got) != 0 {
		t.Errorf("refused catalog commands reached the service: %q", got)
	}
}

// TestHostileCatalogRealImage: command.Local over an image answers
// hostile catalog requests with the client's kinds, never internal, and
// a file the server cannot read is that file's failure, not the add's.
func TestHostileCatalogRealImage(t *testing.T) {
	u := uvmtest.Open(t, nil)
	_, addr, _ := startServer(t, command.NewLocal(u, ""))
	d := dealer(t, addr)
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "locked.txt")
	if err := os.WriteFile(unreadable, []byte("You cannot read me."), 0o000); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		m    map[string]any
		kind command.Kind
	}{
		{map[string]any{"command": "catalog_add", "paths": []any{filepath.Join(dir, "missing")}}, command.KindBadRequest},
		{map[string]any{"command": "catalog_add", "paths": []any{"/proc/self/status"}}, ""},
		{map[string]any{"command": "catalog_add", "paths": []any{dir}}, ""},
		{map[string]any{"command": "catalog_add", "text": "\x00\x01\x02", "name": "bin"}, ""},
		{map[string]any{"command": "catalog_add", "text": " \n ", "name": "blank"}, ""},
		{map[string]any{"command": "catalog_add", "text": "Valid words here.", "name": "\xff\xfe"}, command.KindBadRequest},
		{map[string]any{"command": "catalog_search", "query": "\xff\xfe"}, command.KindBadRequest}, // strings are UTF-8
		{map[string]any{"command": "catalog_search", "query": "((( AND OR NOT *:* \"", "k": int64(1000)}, ""},
		{map[string]any{"command": "catalog_search", "query": "x", "doc": "../../etc/passwd"}, command.KindNotFound},
		{map[string]any{"command": "catalog_show", "doc": "d0000000000000000"}, command.KindNotFound},
		{map[string]any{"command": "catalog_remove", "doc": "/no/such/file"}, command.KindNotFound},
		{map[string]any{"command": "catalog_list"}, ""},
		{map[string]any{"command": "catalog_stats"}, ""},
		{map[string]any{"command": "catalog_reindex"}, ""},
	}
	for i, tc := range cases {
		tc.m["id"] = int64(i)
		r := req(t, d, tc.m)
		if tc.kind == "" && r["ok"] != true {
			t.Errorf("%v: got %v, want ok", tc.m, r)
		}
		if tc.kind != "" && errKind(r) != tc.kind {
			t.Errorf("%v: got %v, want %s", tc.m, r, tc.kind)
		}
	}
	// The directory's unreadable file failed alone (unless run as root,
	// who reads it).
	r := req(t, d, map[string]any{"id": int64(99), "command": "catalog_add", "paths": []any{unreadable}})
	res, _ := r["result"].(map[string]any)
	files, _ := res["files"].([]any)
	if r["ok"] != true || len(files) != 1 {
		t.Fatalf("add of an unreadable file: %v", r)
	}
	if f := files[0].(map[string]any); os.Geteuid() != 0 && (f["result"] != "failed" || !strings.Contains(f["error"].(string), "permission denied")) {
		t.Errorf("unreadable file: %v, want failed with permission denied", f)
	}
}
