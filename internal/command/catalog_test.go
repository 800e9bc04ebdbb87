package command_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/command"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/uvm"
	"batos/internal/uvm/uvmtest"
)

const rivers = `The Nile is the longest river in Africa. It flows north through eleven countries
before it reaches the Mediterranean Sea. Its waters made farming possible in the desert.

The Amazon carries more water than any other river. Its basin holds the largest rainforest
on Earth, and thousands of species live nowhere else.`

const sails = `# Sailing

A sloop has one mast. The crew trims the sail as the wind rises, and reefs it in a storm.

## Knots

A bowline makes a fixed loop at the end of a line.`

// catalogDir writes a directory of files to add: two texts, an empty
// file, a binary one and a hidden one (left out).
func catalogDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"rivers.txt": rivers, "sub/sails.md": sails, "empty.txt": "", "blob.bin": "\x00\x01\x02binary", ".hidden.txt": "secret",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// results is each outcome as "result path".
func results(r command.CatalogAddResult, dir string) []string {
	var out []string
	for _, f := range r.Files {
		out = append(out, string(f.Result)+" "+strings.TrimPrefix(f.Path, dir+"/"))
	}
	return out
}

// TestCatalogRemoteAsLocal: the catalog commands over the bridge answer
// what Local answers; files are read by the process holding the image;
// a re-add is unchanged, a changed file replaced; without an embedding
// model every result says so.
func TestCatalogRemoteAsLocal(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	local := command.NewLocal(u, "tester")
	remote, _ := serve(t, local)
	dir := catalogDir(t)

	var seen []string
	added, err := local.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{dir}, Meta: map[string]string{"topic": "nature"},
		Progress: func(o command.CatalogOutcome, df, tf int, db, tb int64) { seen = append(seen, string(o.Result)) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"skipped blob.bin", "skipped empty.txt", "added rivers.txt", "added sub/sails.md"}
	if diff := cmp.Diff(results(added, dir), want); diff != "" {
		t.Errorf("add (-got +want):\n%s", diff)
	}
	if len(seen) != 4 || added.Mode != library.ModeText || added.Note != library.NoModelNote || added.Failed() != 0 {
		t.Errorf("add: progress %v, mode %q, note %q, %d failed", seen, added.Mode, added.Note, added.Failed())
	}
	for _, f := range added.Files {
		if f.Result == command.CatalogAdded && (f.Doc == "" || f.Chunks == 0 || f.Bytes == 0 || f.Semantic) {
			t.Errorf("added %+v", f)
		}
		if f.Result == command.CatalogSkipped && f.Reason == "" {
			t.Errorf("skipped without a reason: %+v", f)
		}
	}

	again, err := remote.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{filepath.Join(dir, "rivers.txt")}, Meta: map[string]string{"topic": "nature"}})
	if err != nil || len(again.Files) != 1 || again.Files[0].Result != command.CatalogUnchanged || again.Note != library.NoModelNote {
		t.Fatalf("re-add through the bridge: %+v, %v", again, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rivers.txt"), []byte(rivers+"\n\nThe Danube flows east to the Black Sea."), 0o644); err != nil {
		t.Fatal(err)
	}
	replaced, err := remote.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{filepath.Join(dir, "rivers.txt")}, Meta: map[string]string{"topic": "nature"}})
	if err != nil || replaced.Files[0].Result != command.CatalogReplaced || replaced.Files[0].Doc != added.Files[2].Doc {
		t.Fatalf("changed file through the bridge: %+v, %v", replaced, err)
	}
	text, err := remote.CatalogAdd(ctx, command.CatalogAddRequest{Text: "Knots: a clove hitch binds a line to a post.", Name: "notes/knots", Title: "Knots"})
	if err != nil || text.Files[0].Result != command.CatalogAdded || text.Files[0].Path != "notes/knots" {
		t.Fatalf("text through the bridge: %+v, %v", text, err)
	}

	opts := cmp.Options{cmpopts.EquateEmpty(), cmpopts.EquateApproxTime(0)}
	same := func(what string, got, want any) {
		t.Helper()
		if diff := cmp.Diff(got, want, opts); diff != "" {
			t.Errorf("%s (-remote +local):\n%s", what, diff)
		}
	}
	for _, q := range []command.CatalogSearchRequest{
		{Query: "longest river"},
		{Query: "sail wind", K: 1},
		{Query: "river", Meta: map[string]string{"topic": "nature"}},
		{Query: "river", Meta: map[string]string{"topic": "other"}},
		{Query: "river", Doc: filepath.Join(dir, "sub/sails.md")},
		{Query: "describe", Methods: true},
	} {
		got, gerr := remote.CatalogSearch(ctx, q)
		want, werr := local.CatalogSearch(ctx, q)
		if gerr != nil || werr != nil {
			t.Fatalf("search %+v: remote %v, local %v", q, gerr, werr)
		}
		same("search "+q.Query, got, want)
	}
	res, err := local.CatalogSearch(ctx, command.CatalogSearchRequest{Query: "longest river"})
	if err != nil || len(res.Hits) == 0 || !strings.Contains(res.Hits[0].Text, "Nile") || res.Hits[0].Cite != "rivers.txt#0" || len(res.Hits[0].Marks) == 0 {
		t.Fatalf("search for the Nile: %+v, %v", res, err)
	}
	if h := res.Hits[0]; h.Fragment[h.Marks[0].Start:h.Marks[0].End] != "longest" || res.Note != library.NoModelNote || res.Mode != library.ModeText {
		t.Errorf("first hit %+v, note %q", h, res.Note)
	}
	if res, err := local.CatalogSearch(ctx, command.CatalogSearchRequest{Query: "describe", Methods: true}); err != nil || len(res.Hits) == 0 || res.Hits[0].Selector == "" || res.Hits[0].Source == "" {
		t.Errorf("search of methods: %+v, %v", res, err)
	}

	gotList, err := remote.CatalogList(ctx)
	wantList, _ := local.CatalogList(ctx)
	if err != nil || len(wantList.Docs) != 3 {
		t.Fatalf("list: %+v, %v", wantList, err)
	}
	same("list", gotList, wantList)
	for _, doc := range []string{wantList.Docs[0].ID, wantList.Docs[1].Path, "notes/knots"} {
		got, err := remote.CatalogShow(ctx, doc)
		want, _ := local.CatalogShow(ctx, doc)
		if err != nil || len(want.Chunks) == 0 || len(want.Chunks) != want.Doc.Chunks {
			t.Fatalf("show %s: %+v, %v", doc, want, err)
		}
		same("show "+doc, got, want)
	}
	gotStats, err := remote.CatalogStats(ctx)
	wantStats, _ := local.CatalogStats(ctx)
	if err != nil || wantStats.Documents != 3 || wantStats.Index.Chunks != wantStats.Chunks || wantStats.Note != library.NoModelNote || wantStats.Index.LastTID == "" {
		t.Fatalf("stats: %+v, %v", wantStats, err)
	}
	same("stats", gotStats, wantStats)

	rx, err := remote.CatalogReindex(ctx)
	if err != nil || !rx.Rebuilt || rx.Note != library.NoModelNote {
		t.Fatalf("reindex: %+v, %v", rx, err)
	}
	if res, err := remote.CatalogSearch(ctx, command.CatalogSearchRequest{Query: "clove hitch"}); err != nil || len(res.Hits) == 0 || res.Hits[0].Path != "notes/knots" {
		t.Errorf("search after the reindex: %+v, %v", res, err)
	}
	removed, err := remote.CatalogRemove(ctx, "notes/knots")
	if err != nil || removed.Doc.Path != "notes/knots" {
		t.Fatalf("remove: %+v, %v", removed, err)
	}
	for name, svc := range map[string]command.Service{"local": local, "remote": remote} {
		if _, err := svc.CatalogShow(ctx, "notes/knots"); command.KindOf(err) != command.KindNotFound {
			t.Errorf("%s: show of the removed text: %v, want not_found", name, err)
		}
		if _, err := svc.CatalogRemove(ctx, "notes/knots"); command.KindOf(err) != command.KindNotFound {
			t.Errorf("%s: remove twice: %v, want not_found", name, err)
		}
	}
}

// TestCatalogRefused: requests no server can carry out are refused with
// the same kind and message by Local and through the bridge, and change
// nothing.
func TestCatalogRefused(t *testing.T) {
	ctx := context.Background()
	u := uvmtest.Open(t, nil)
	local := command.NewLocal(u, "tester")
	remote, _ := serve(t, local)
	dir := catalogDir(t)
	tooManyMeta := map[string]string{}
	for i := range command.MaxCatalogMeta + 1 {
		tooManyMeta[strings.Repeat("k", i+1)] = "v"
	}
	adds := []struct {
		name string
		req  command.CatalogAddRequest
		kind command.Kind
	}{
		{"nothing", command.CatalogAddRequest{}, command.KindBadRequest},
		{"paths and text", command.CatalogAddRequest{Paths: []string{dir}, Text: "x", Name: "x"}, command.KindBadRequest},
		{"relative path", command.CatalogAddRequest{Paths: []string{"rivers.txt"}}, command.KindBadRequest},
		{"empty path", command.CatalogAddRequest{Paths: []string{""}}, command.KindBadRequest},
		{"missing path", command.CatalogAddRequest{Paths: []string{filepath.Join(dir, "nope.txt")}}, command.KindBadRequest},
		{"text without a name", command.CatalogAddRequest{Text: "words"}, command.KindBadRequest},
		{"name without a text", command.CatalogAddRequest{Name: "x"}, command.KindBadRequest},
		{"text too large", command.CatalogAddRequest{Text: strings.Repeat("a", catalog.DefaultMaxBytes+1), Name: "big"}, command.KindLimit},
		{"name not text", command.CatalogAddRequest{Text: "words", Name: "a\x00b"}, command.KindBadRequest},
		{"name too long", command.CatalogAddRequest{Text: "words", Name: strings.Repeat("n", command.MaxCatalogNameBytes+1)}, command.KindBadRequest},
		{"too much meta", command.CatalogAddRequest{Paths: []string{dir}, Meta: tooManyMeta}, command.KindBadRequest},
		{"empty meta key", command.CatalogAddRequest{Paths: []string{dir}, Meta: map[string]string{"": "v"}}, command.KindBadRequest},
		{"long meta value", command.CatalogAddRequest{Paths: []string{dir}, Meta: map[string]string{"k": strings.Repeat("v", command.MaxMetaValueBytes+1)}}, command.KindBadRequest},
	}
	searches := []struct {
		name string
		req  command.CatalogSearchRequest
		kind command.Kind
	}{
		{"empty query", command.CatalogSearchRequest{}, command.KindBadRequest},
		{"blank query", command.CatalogSearchRequest{Query: " \n\t"}, command.KindBadRequest},
		{"huge query", command.CatalogSearchRequest{Query: strings.Repeat("word ", library.MaxQueryBytes)}, command.KindBadRequest},
		{"negative k", command.CatalogSearchRequest{Query: "x", K: -1}, command.KindBadRequest},
		{"huge k", command.CatalogSearchRequest{Query: "x", K: library.MaxK + 1}, command.KindBadRequest},
		{"methods in a doc", command.CatalogSearchRequest{Query: "x", Methods: true, Doc: "d1"}, command.KindBadRequest},
		{"unknown doc", command.CatalogSearchRequest{Query: "x", Doc: "/no/such/doc"}, command.KindNotFound},
	}
	before := u.DB().Store().LastTID()
	check := func(t *testing.T, kind command.Kind, call func(command.Service) error) {
		t.Helper()
		localErr := call(local)
		if command.KindOf(localErr) != kind {
			t.Fatalf("local: %v (kind %s), want %s", localErr, command.KindOf(localErr), kind)
		}
		remoteErr := call(remote)
		var re *command.Error
		if !errors.As(remoteErr, &re) || re.Kind != kind || re.Message != command.Message(localErr) {
			t.Errorf("remote: %v, want %s: %v", remoteErr, kind, localErr)
		}
	}
	for _, tc := range adds {
		t.Run("add "+tc.name, func(t *testing.T) {
			check(t, tc.kind, func(svc command.Service) error { _, err := svc.CatalogAdd(ctx, tc.req); return err })
		})
	}
	for _, tc := range searches {
		t.Run("search "+tc.name, func(t *testing.T) {
			check(t, tc.kind, func(svc command.Service) error { _, err := svc.CatalogSearch(ctx, tc.req); return err })
		})
	}
	for doc, kind := range map[string]command.Kind{"": command.KindBadRequest, "d0000000000000000": command.KindNotFound, "a\x00b": command.KindBadRequest} {
		t.Run("show "+doc, func(t *testing.T) {
			check(t, kind, func(svc command.Service) error { _, err := svc.CatalogShow(ctx, doc); return err })
			check(t, kind, func(svc command.Service) error { _, err := svc.CatalogRemove(ctx, doc); return err })
		})
	}
	if after := u.DB().Store().LastTID(); after != before {
		t.Errorf("refused requests committed (last TID %s, was %s)", after, before)
	}
}

// TestCatalogSemantic: with an embedding model recorded in the image and
// a mind to reach it, documents are cut at breakpoints and embedded,
// search is hybrid and no note is given; a re-add costs no call.
func TestCatalogSemantic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live_image.db")
	u, _ := uvmtest.OpenAt(t, path, nil)
	if err := mind.SaveEmbedModel(ctx, u.DB(), "embedder"); err != nil {
		t.Fatal(err)
	}
	model := &llmtest.Model{Vectors: llmtest.WordVector, Dim: 64}
	if err := u.EnableMind(ctx, &mind.Server{API: mind.APIOpenAI, DefaultModel: "chat", Client: model}, nil, nil); err != nil {
		t.Fatal(err)
	}
	local := command.NewLocal(u, "tester")
	dir := catalogDir(t)
	added, err := local.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{filepath.Join(dir, "rivers.txt")}})
	if err != nil || added.Mode != library.ModeHybrid || added.Note != "" {
		t.Fatalf("add: %+v, %v", added, err)
	}
	if f := added.Files[0]; f.Result != command.CatalogAdded || !f.Semantic || f.EmbedCalls == 0 {
		t.Errorf("added %+v, want semantic chunks and embedding calls", f)
	}
	again, err := local.CatalogAdd(ctx, command.CatalogAddRequest{Paths: []string{filepath.Join(dir, "rivers.txt")}})
	if err != nil || again.Files[0].Result != command.CatalogUnchanged || again.Files[0].EmbedCalls != 0 {
		t.Errorf("re-add: %+v, %v", again, err)
	}
	res, err := local.CatalogSearch(ctx, command.CatalogSearchRequest{Query: "Which river is the longest?"})
	if err != nil || res.Mode != library.ModeHybrid || res.Note != "" || len(res.Hits) == 0 || res.Hits[0].VectorRank == 0 {
		t.Fatalf("search: %+v, %v", res, err)
	}
	st, err := local.CatalogStats(ctx)
	if err != nil || st.EmbedModel != "embedder" || st.Index.Vectors == 0 || st.Note != "" {
		t.Errorf("stats: %+v, %v", st, err)
	}
}

// A uvm without the catalog's runtime is not a concern here: uvm.UVM is
// the runtime the commands run on.
var _ command.Runtime = (*uvm.UVM)(nil)
