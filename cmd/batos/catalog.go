package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"batos/internal/catalog/index"
	"batos/internal/catalog/library"
	"batos/internal/command"
	"batos/internal/mind"
)

func init() {
	g := &group{name: "catalog", about: "The knowledge catalog: documents the mind searches.", subs: []subcommand{
		{"add", "PATH... [-meta KEY=VALUE]... [-json]", "add files, and the files under directories", runCatalogAdd, false},
		{"search", "QUERY... [-k N] [-methods] [-doc DOC] [-meta KEY=VALUE]... [-json]", "the passages that best match the query", runCatalogSearch, false},
		{"list", "[-json]", "list the documents", runCatalogList, false},
		{"show", "DOC [-json]", "show a document and its chunks", runCatalogShow, false},
		{"remove", "DOC", "take a document out of the catalog", runCatalogRemove, false},
		{"reindex", "", "rebuild the indexes from the image", runCatalogReindex, false},
		{"stats", "[-json]", "count what the catalog holds", runCatalogStats, false},
	}}
	commands["catalog"] = cliCommand{"the knowledge catalog: catalog add PATH... | search QUERY | list | show DOC | remove DOC | reindex | stats", g.run}
}

// catalogSession opens the session the catalog commands run in: batos
// run's, while it holds the image (its mind embeds), else the image
// opened here. An image opened here that records an embedding model
// reaches it through the inference server batos run recorded (else one
// on the default ports), connected only once something is to be
// embedded.
func catalogSession(ctx context.Context, e *env) (*session, error) {
	sess, err := openSession(ctx, e, readWrite)
	if err != nil || sess.local == nil {
		return sess, err
	}
	// The indexes are opened now, so that a rebuild (a damaged or deleted
	// index) is said here: batos run logs it, a command must print it.
	if _, err := sess.local.Catalog(ctx); err != nil {
		sess.Close()
		return nil, err
	}
	if rep := sess.local.CatalogReport(); rep.Rebuilt && (rep.Reason != index.NoIndexYet || rep.Documents > 0) {
		fmt.Fprintf(e.stderr, "batos: catalog: %s\n", rep)
	}
	db := sess.local.DB()
	model, err := mind.LoadEmbedModel(ctx, db)
	if err != nil {
		sess.Close()
		return nil, err
	}
	if model == "" {
		return sess, nil
	}
	cfg, err := mind.LoadServerConfig(ctx, db)
	if err != nil {
		sess.Close()
		return nil, err
	}
	connectOnDemand(e, sess.local, cfg)
	return sess, nil
}

// printNote prints what a catalog result says of its mode (that there is
// no embedding model): after the text, or on standard error beside JSON.
func printNote(e *env, m command.CatalogMode, asJSON bool) {
	if m.Note == "" {
		return
	}
	w := e.stdout
	if asJSON {
		w = e.stderr
	}
	note := m.Note
	if note == library.NoModelNote {
		note += " (batos run -embed-model NAME records one)"
	}
	fmt.Fprintln(w, "note: "+note)
}

// shownPath is a document's path for a line of text output: quoted when
// it holds a control character (a newline in a file name would forge a
// line of output), as it is otherwise.
func shownPath(p string) string {
	if strings.IndexFunc(p, unicode.IsControl) >= 0 {
		return strconv.Quote(p)
	}
	return p
}

// docID matches a document ID, which is never retried as a path.
var docID = regexp.MustCompile(`^d[0-9a-f]{16}$`)

// onDoc runs fn on the document doc names and, when nothing has that ID
// or path and doc is a relative path, on its absolute path: a file is in
// the catalog under the absolute path it was added from.
func onDoc(doc string, fn func(doc string) error) error {
	if id := strings.TrimSpace(doc); docID.MatchString(id) {
		doc = id // pasted with space around it; a path keeps its own
	}
	err := fn(doc)
	if command.KindOf(err) != command.KindNotFound || filepath.IsAbs(doc) || docID.MatchString(doc) {
		return err
	}
	abs, aerr := filepath.Abs(doc)
	if aerr != nil || abs == doc {
		return err
	}
	if err2 := fn(abs); command.KindOf(err2) != command.KindNotFound {
		return err2
	}
	return err
}

// metaFlag collects -meta KEY=VALUE flags.
type metaFlag map[string]string

func (m metaFlag) String() string { return metaText(m) }

func (m metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if old, dup := m[k]; dup && old != v {
		return fmt.Errorf("%s is given twice (%q and %q): a key has one value", k, old, v)
	}
	m[k] = v
	return nil
}

// pairs is the metadata given, or nil for none.
func (m metaFlag) pairs() map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// chunkingText says how a document was cut.
func chunkingText(d command.CatalogDoc) string {
	if d.ChunkedBy == "" {
		return "fixed-size"
	}
	return "semantic"
}

// count is n things, said as English does: 1 chunk, 2 chunks.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
