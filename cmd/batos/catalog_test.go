package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

const riversText = `The Nile is the longest river in Africa. It flows north through eleven countries
before it reaches the Mediterranean Sea. Its waters made farming possible in the desert.

The Amazon carries more water than any other river. Its basin holds the largest rainforest
on Earth, and thousands of species live nowhere else.`

const sailsText = `# Sailing

A sloop has one mast. The crew trims the sail as the wind rises, and reefs it in a storm.

## Knots

A bowline makes a fixed loop at the end of a line.`

// catalogDocs writes docs/ under dir: two texts, an empty file, a binary
// file and a hidden one, which add leaves out.
func catalogDocs(t *testing.T, dir string) string {
	t.Helper()
	docs := filepath.Join(dir, "docs")
	for name, data := range map[string]string{
		"rivers.txt": riversText, "sub/sails.md": sailsText, "empty.txt": "", "blob.bin": "\x00\x01\x02\x03binary", ".hidden.txt": "secret",
	} {
		path := filepath.Join(docs, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return docs
}

// hasLine reports whether text has a line matching the regular
// expression re.
func hasLine(text, re string) bool {
	return regexp.MustCompile(`(?m)` + re).MatchString(text)
}

// TestCatalogCLI: files and a directory are added (binary and empty files
// skipped, hidden ones left out), searched, added again unchanged,
// replaced when changed, shown, listed, counted, reindexed and removed;
// -json parses and the note of the catalog without an embedding model is
// printed, on standard error beside JSON.
func TestCatalogCLI(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	docs := catalogDocs(t, dir)
	t.Chdir(dir) // relative paths are added under their absolute paths
	rivers := filepath.Join(docs, "rivers.txt")

	out := mustRun(t, "-image", img, "catalog", "add", "docs", "-meta", "topic=nature", "-meta", "lang=en")
	for _, re := range []string{
		`^added +` + regexp.QuoteMeta(rivers) + `  \(1 chunk, `,
		`^added +` + regexp.QuoteMeta(filepath.Join(docs, "sub/sails.md")) + `  \(\d+ chunks?, `,
		`^skipped +` + regexp.QuoteMeta(filepath.Join(docs, "blob.bin")) + `: binary content`,
		`^skipped +` + regexp.QuoteMeta(filepath.Join(docs, "empty.txt")) + `: no text`,
		`^4 files: 2 added, 2 skipped; \d+ fixed-size chunks? written$`,
		`^note: ` + regexp.QuoteMeta(library.NoModelNote) + ` \(batos run -embed-model NAME records one\)$`,
	} {
		if !hasLine(out, re) {
			t.Errorf("catalog add: no line like %s in\n%s", re, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("catalog add took a hidden file:\n%s", out)
	}

	out = mustRun(t, "-image", img, "catalog", "search", "longest", "river")
	if !hasLine(out, `^1\. \d\.\d{4}  rivers\.txt#0  `+regexp.QuoteMeta(rivers)+`$`) || !strings.Contains(out, "The Nile is the **longest** **river**") {
		t.Errorf("catalog search:\n%s", out)
	}
	if out := mustRun(t, "-image", img, "catalog", "search", "-meta", "topic=other", "river"); !strings.HasPrefix(out, "no passages found\n") {
		t.Errorf("catalog search -meta topic=other:\n%s", out)
	}
	if out := mustRun(t, "-image", img, "catalog", "search", "-doc", "docs/sub/sails.md", "river", "wind"); !strings.Contains(out, "sails.md#") || strings.Contains(out, "rivers.txt") {
		t.Errorf("catalog search -doc with a relative path:\n%s", out)
	}
	if out := mustRun(t, "-image", img, "catalog", "search", "-methods", "describe"); !strings.Contains(out, ".describe  method of oid:") {
		t.Errorf("catalog search -methods:\n%s", out)
	}

	if out := mustRun(t, "-image", img, "catalog", "add", "docs/rivers.txt", "-meta", "topic=nature", "-meta", "lang=en"); !hasLine(out, `^unchanged +`+regexp.QuoteMeta(rivers)+`  \(d[0-9a-f]{16}\)$`) {
		t.Errorf("adding the same file again:\n%s", out)
	}
	if err := os.WriteFile(rivers, []byte(riversText+"\n\nThe Danube flows east to the Black Sea."), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "-image", img, "catalog", "add", rivers, "-meta", "topic=nature", "-meta", "lang=en"); !hasLine(out, `^replaced +`+regexp.QuoteMeta(rivers)) {
		t.Errorf("adding a changed file:\n%s", out)
	}

	out = mustRun(t, "-image", img, "catalog", "show", "docs/rivers.txt")
	if !strings.Contains(out, "path:      "+rivers) || !strings.Contains(out, "Danube") || !strings.Contains(out, "meta:      lang=en topic=nature") || !strings.Contains(out, "fixed-size sentence windows") {
		t.Errorf("catalog show:\n%s", out)
	}

	var list struct {
		Mode string `json:"mode"`
		Note string `json:"note"`
		Docs []struct {
			ID, Path string
			Chunks   int
		} `json:"docs"`
	}
	code, stdout, stderr := batos(t, "-image", img, "catalog", "list", "-json")
	if err := json.Unmarshal([]byte(stdout), &list); code != 0 || err != nil || len(list.Docs) != 2 || list.Docs[0].Path != rivers || list.Note != library.NoModelNote {
		t.Fatalf("catalog list -json: exit %d, %v: %+v\n%s", code, err, list, stdout)
	}
	if stderr != "note: "+library.NoModelNote+" (batos run -embed-model NAME records one)\n" {
		t.Errorf("catalog list -json: stderr %q, want the note", stderr)
	}
	if out := mustRun(t, "-image", img, "catalog", "show", list.Docs[1].ID); !strings.Contains(out, "bowline") {
		t.Errorf("catalog show by ID:\n%s", out)
	}
	if out := mustRun(t, "-image", img, "catalog", "list"); !hasLine(out, `^`+list.Docs[0].ID+` +\d+ +.* text +fixed-size +.*`+regexp.QuoteMeta(rivers)+`$`) {
		t.Errorf("catalog list:\n%s", out)
	}

	var hits struct {
		Hits []struct {
			Cite, Path, Fragment string
			Marks                []struct{ Start, End int }
		} `json:"hits"`
	}
	code, stdout, stderr = batos(t, "-image", img, "catalog", "search", "-json", "-k", "1", "Danube")
	if err := json.Unmarshal([]byte(stdout), &hits); code != 0 || err != nil || len(hits.Hits) != 1 || hits.Hits[0].Path != rivers || !strings.Contains(stderr, library.NoModelNote) {
		t.Fatalf("catalog search -json: exit %d, %v: %s\nstderr: %s", code, err, stdout, stderr)
	}
	if h := hits.Hits[0]; len(h.Marks) != 1 || h.Fragment[h.Marks[0].Start:h.Marks[0].End] != "Danube" {
		t.Errorf("search hit %+v: want Danube marked", h)
	}

	var stats struct {
		Documents, Chunks int
		EmbedModel        string `json:"embed_model"`
		Index             struct{ Chunks int }
	}
	code, stdout, _ = batos(t, "-image", img, "catalog", "stats", "-json")
	if err := json.Unmarshal([]byte(stdout), &stats); code != 0 || err != nil || stats.Documents != 2 || stats.Chunks == 0 || stats.Index.Chunks != stats.Chunks || stats.EmbedModel != "" {
		t.Errorf("catalog stats -json: exit %d, %v: %s", code, err, stdout)
	}
	if out := mustRun(t, "-image", img, "catalog", "stats"); !hasLine(out, `^documents +2$`) || !hasLine(out, `^embedding model +none \(search: text\)$`) {
		t.Errorf("catalog stats:\n%s", out)
	}
	if out := mustRun(t, "-image", img, "catalog", "reindex"); !hasLine(out, `^catalog index rebuilt in `) {
		t.Errorf("catalog reindex:\n%s", out)
	}
	if info, err := os.Stat(img + ".index"); err != nil || !info.IsDir() {
		t.Errorf("the index directory beside the image: %v", err)
	}

	if out := mustRun(t, "-image", img, "catalog", "remove", "docs/sub/sails.md"); !hasLine(out, `^removed d[0-9a-f]{16} `+regexp.QuoteMeta(filepath.Join(docs, "sub/sails.md"))+` \(\d+ chunks?\)$`) {
		t.Errorf("catalog remove:\n%s", out)
	}
	if code, _, errOut := batos(t, "-image", img, "catalog", "show", "docs/sub/sails.md"); code != 1 || !strings.Contains(errOut, "no such document") {
		t.Errorf("show of a removed document: exit %d, %q", code, errOut)
	}
	if code, _, errOut := batos(t, "-image", img, "catalog", "remove", "d0123456789abcdef"); code != 1 || !strings.Contains(errOut, "no such document") {
		t.Errorf("remove of an unknown ID: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "catalog", "search", "bowline"); !strings.HasPrefix(out, "no passages found") {
		t.Errorf("search for a removed document's words:\n%s", out)
	}
}

// TestCatalogAddFailures: a file that cannot be added fails alone and
// batos exits 1 (skipped files are no failure); a path that does not
// exist stops the add before anything is added.
func TestCatalogAddFailures(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "img.db")
	mustRun(t, "-image", img, "image", "init")
	docs := catalogDocs(t, dir)
	big := filepath.Join(docs, "big.txt")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, catalog.DefaultMaxBytes+1); err != nil { // sparse: refused by its size
		t.Fatal(err)
	}
	code, out, errOut := batos(t, "-image", img, "catalog", "add", docs)
	if code != 1 || !hasLine(out, `^failed +`+regexp.QuoteMeta(big)+`: catalog: document too large`) || !hasLine(out, `^added +`+regexp.QuoteMeta(filepath.Join(docs, "rivers.txt"))) ||
		!strings.Contains(out, "5 files: 2 added, 2 skipped, 1 failed") || !strings.Contains(errOut, "1 of 5 files could not be added") {
		t.Errorf("add with a file too large: exit %d\n%s\nstderr: %s", code, out, errOut)
	}
	var res struct {
		Files []struct{ Path, Result, Error string } `json:"files"`
	}
	code, stdout, _ := batos(t, "-image", img, "catalog", "add", "-json", big)
	if err := json.Unmarshal([]byte(stdout), &res); code != 1 || err != nil || len(res.Files) != 1 || res.Files[0].Result != "failed" || res.Files[0].Error == "" {
		t.Errorf("add -json of a file too large: exit %d, %v: %s", code, err, stdout)
	}
	missing := filepath.Join(dir, "nope.txt")
	knots := writeTemp(t, "knots.md", []byte("A clove hitch binds a line to a post."))
	if code, out, errOut := batos(t, "-image", img, "catalog", "add", knots, missing); code != 1 || out != "" || !strings.Contains(errOut, missing) || !strings.Contains(errOut, "no such file") {
		t.Errorf("add of a missing path: exit %d, %q, %q", code, out, errOut)
	}
	if out := mustRun(t, "-image", img, "catalog", "list"); strings.Contains(out, "knots.md") {
		t.Errorf("an add stopped by a missing path added a file:\n%s", out)
	}
}

func TestCatalogUsageErrors(t *testing.T) {
	img := filepath.Join(t.TempDir(), "x.db")
	mustRun(t, "-image", img, "image", "init")
	for name, args := range map[string][]string{
		"no subcommand":      {"catalog"},
		"unknown subcommand": {"catalog", "frob"},
		"add nothing":        {"catalog", "add"},
		"add bad meta":       {"catalog", "add", "-meta", "novalue", "x"},
		"add empty meta key": {"catalog", "add", "-meta", "=v", "x"},
		"add unknown flag":   {"catalog", "add", "-recursive", "x"},
		"search nothing":     {"catalog", "search"},
		"search blank":       {"catalog", "search", " "},
		"search k zero":      {"catalog", "search", "-k", "0", "x"},
		"search k huge":      {"catalog", "search", "-k", "100000", "x"},
		"search k word":      {"catalog", "search", "-k", "many", "x"},
		"show nothing":       {"catalog", "show"},
		"show two":           {"catalog", "show", "a", "b"},
		"remove nothing":     {"catalog", "remove"},
		"list argument":      {"catalog", "list", "x"},
		"stats argument":     {"catalog", "stats", "x"},
		"reindex argument":   {"catalog", "reindex", "x"},
		"run empty model":    {"run", "-embed-model", ""},
	} {
		if code, _, errOut := batos(t, append([]string{"-image", img}, args...)...); code != 2 || errOut == "" {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, errOut)
		}
	}
	if code, _, errOut := batos(t, "-image", img, "catalog", "search", "-methods", "-doc", "d1", "x"); code != 1 || !strings.Contains(errOut, "bad request") {
		t.Errorf("search -methods -doc: exit %d, %q", code, errOut)
	}
}

// TestCatalogThroughRun: while batos run holds the image, the catalog
// commands run in it, and its -embed-model is recorded and used: files
// are cut at semantic breakpoints and embedded, search is hybrid, and no
// note is printed. Once it stopped, the same commands here say the same,
// reaching the embedding model through the server the image records; run
// -embed-model none clears it.
func TestCatalogThroughRun(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	docs := catalogDocs(t, dir)
	respond := func(context.Context, *llm.ChatRequest) (llmtest.Reply, error) { return llmtest.Reply{Text: "OK"}, nil }
	model := &llmtest.Model{Respond: respond, Vectors: llmtest.WordVector, Dim: 64}
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: model, Models: []string{"tiny", "embedder"}})
	t.Chdir(t.TempDir()) // the server resolves nothing: paths go absolute

	_, _, logs, stop := startRunLogged(t, img, "-llm", fake.URL, "-llm-api", "ollama", "-model", "tiny", "-embed-model", "embedder")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if !strings.Contains(logs.String(), "catalog: embedding model embedder") {
		t.Errorf("batos run's log does not name the embedding model:\n%s", logs.String())
	}
	out := mustRun(t, "-image", img, "catalog", "add", docs)
	if !strings.Contains(out, "4 files: 2 added, 2 skipped;") || !strings.Contains(out, "semantic chunk") || strings.Contains(out, "note:") {
		t.Errorf("catalog add through batos run:\n%s", out)
	}
	if len(model.Embeds()) == 0 {
		t.Fatal("nothing was embedded")
	}
	if out := mustRun(t, "-image", img, "catalog", "add", docs); !strings.Contains(out, "4 files: 0 added, 2 unchanged, 2 skipped") {
		t.Errorf("catalog add again through batos run:\n%s", out)
	}
	commands := [][]string{
		{"catalog", "search", "longest", "river"},
		{"catalog", "search", "-json", "sail", "wind"},
		{"catalog", "list"},
		{"catalog", "list", "-json"},
		{"catalog", "show", filepath.Join(docs, "rivers.txt")},
		{"catalog", "show", "-json", filepath.Join(docs, "sub/sails.md")},
	}
	type output struct {
		Code        int
		Out, Stderr string
	}
	remote := map[string]output{}
	for _, args := range commands {
		code, out, errOut := batos(t, append([]string{"-image", img}, args...)...)
		remote[strings.Join(args, " ")] = output{code, out, errOut}
	}
	if out := remote["catalog search longest river"].Out; !strings.Contains(out, "rivers.txt#0") || !strings.Contains(out, "vector #") || strings.Contains(out, "note:") {
		t.Errorf("hybrid search through batos run:\n%s", out)
	}
	if out := remote["catalog show "+filepath.Join(docs, "rivers.txt")].Out; !strings.Contains(out, "semantic, at embedder's breakpoints") || !strings.Contains(out, "embedded:  by embedder") {
		t.Errorf("show through batos run:\n%s", out)
	}
	var stats struct {
		EmbedModel string `json:"embed_model"`
		Index      struct{ Vectors int }
	}
	code, stdout, _ := batos(t, "-image", img, "catalog", "stats", "-json")
	if err := json.Unmarshal([]byte(stdout), &stats); code != 0 || err != nil || stats.EmbedModel != "embedder" || stats.Index.Vectors == 0 {
		t.Errorf("catalog stats -json through batos run: exit %d, %v: %s", code, err, stdout)
	}
	stop()
	stopped = true

	for _, args := range commands {
		code, out, errOut := batos(t, append([]string{"-image", img}, args...)...)
		if diff := cmp.Diff(remote[strings.Join(args, " ")], output{code, out, errOut}); diff != "" {
			t.Errorf("%s (-through batos run +here):\n%s", args, diff)
		}
	}
	extra := writeTemp(t, "knots.md", []byte("# Knots\n\nA clove hitch binds a line to a post. A reef knot ties two ends."))
	before := len(model.Embeds())
	if out := mustRun(t, "-image", img, "catalog", "add", extra); !strings.Contains(out, "1 added") || !strings.Contains(out, "semantic chunk") {
		t.Errorf("catalog add here with the recorded embedding model:\n%s", out)
	}
	if len(model.Embeds()) == before {
		t.Error("catalog add here embedded nothing through the recorded server")
	}

	_, _, logs, stop = startRunLogged(t, img, "-llm", fake.URL, "-llm-api", "ollama", "-model", "tiny", "-embed-model", "none")
	if !strings.Contains(logs.String(), "catalog: "+library.NoModelNote) {
		t.Errorf("batos run -embed-model none: the log does not say there is no embedding model:\n%s", logs.String())
	}
	out = mustRun(t, "-image", img, "catalog", "search", "river")
	stop()
	if !strings.Contains(out, "note: "+library.NoModelNote) || strings.Contains(out, "vector #") {
		t.Errorf("search after -embed-model none:\n%s", out)
	}
}
