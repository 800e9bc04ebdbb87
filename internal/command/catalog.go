package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"batos/internal/catalog"
	"batos/internal/catalog/library"
	"batos/internal/store"
)

// The catalog commands run on the image's knowledge catalog
// (catalog/library), opened by the process holding the image: files
// given by path are read there, and the embedding model, when the image
// records one, is reached through that process's mind. Every result says
// how the catalog chunks and searches (CatalogMode), with the note the
// CLI prints when there is no embedding model.

// Limits of the catalog's requests: metadata is a few labels, a name is
// a path.
const (
	// MaxCatalogMeta is the most metadata pairs a document or a search's
	// filter holds.
	MaxCatalogMeta = 64
	// MaxMetaKeyBytes and MaxMetaValueBytes bound a pair.
	MaxMetaKeyBytes   = 128
	MaxMetaValueBytes = 1024
	// MaxCatalogNameBytes bounds a path, a text's name or title, and a
	// document named by ID or path.
	MaxCatalogNameBytes = 4096
)

// CatalogMode is how the catalog chunks and searches, which every catalog
// result says: Mode is "hybrid" (full-text and vector search, with an
// embedding model) or "text"; Note says why not hybrid (no embedding
// model, or a query's embedding failed), or is empty.
type CatalogMode struct {
	Mode string `json:"mode"`
	Note string `json:"note,omitempty"`
}

func modeOf(lib *library.Library) CatalogMode {
	return CatalogMode{Mode: lib.Mode(), Note: lib.Note()}
}

// CatalogAddRequest is what to add: files and directories (Paths), or one
// text (Text under Name), never both.
type CatalogAddRequest struct {
	// Paths are absolute paths of files and directories, read by the
	// process holding the image; directories are walked, hidden names
	// skipped.
	Paths []string
	// Text is added as the document Name (its path in the catalog,
	// which adding again replaces), titled Title (Name when empty).
	Text, Name, Title string
	// Meta is recorded on every document added.
	Meta map[string]string
	// Progress, if set, is told after each file. Only a local service
	// reports it.
	Progress func(o CatalogOutcome, doneFiles, totalFiles int, doneBytes, totalBytes int64)
}

// Check refuses a request no server can carry out.
func (r CatalogAddRequest) Check() error {
	isText := r.Text != "" || r.Name != "" || r.Title != ""
	switch {
	case len(r.Paths) > 0 && isText:
		return badRequest("give paths or a text, not both")
	case len(r.Paths) == 0 && !isText:
		return badRequest("nothing to add: give paths, or a text and its name")
	case isText && r.Name == "":
		return badRequest("a text needs a name (its path in the catalog)")
	case isText && r.Text == "":
		return WithKind(ErrBadRequest, fmt.Errorf("%w: the text for %q is empty", catalog.ErrEmpty, clip(r.Name)))
	case len(r.Text) > catalog.DefaultMaxBytes:
		return fmt.Errorf("%w: the text for %q is %d bytes, over the limit of %d bytes", catalog.ErrTooLarge, clip(r.Name), len(r.Text), catalog.DefaultMaxBytes)
	}
	for i, p := range r.Paths {
		if err := checkName(fmt.Sprintf("path %d", i+1), p); err != nil {
			return err
		}
		if !filepath.IsAbs(p) {
			return badRequest("path %q: want an absolute path (the process holding the image reads it)", clip(p))
		}
	}
	if isText {
		if err := checkName("name", r.Name); err != nil {
			return err
		}
		if err := checkName("title", r.Title); err != nil {
			return err
		}
	}
	return checkMeta(r.Meta)
}

// checkName refuses a path or name that is not short UTF-8 text.
func checkName(what, s string) error {
	switch {
	case len(s) > MaxCatalogNameBytes:
		return badRequest("%s is %d bytes, over the limit of %d", what, len(s), MaxCatalogNameBytes)
	case !utf8.ValidString(s), strings.ContainsRune(s, 0):
		return badRequest("%s %q is not text (invalid UTF-8 or a NUL byte)", what, clip(s))
	case strings.HasPrefix(what, "path") && s == "":
		return badRequest("%s is empty", what)
	}
	return nil
}

// checkMeta refuses metadata beyond the limits.
func checkMeta(meta map[string]string) error {
	if len(meta) > MaxCatalogMeta {
		return badRequest("%d metadata pairs, over the limit of %d", len(meta), MaxCatalogMeta)
	}
	for k, v := range meta {
		switch {
		case k == "":
			return badRequest("a metadata key is empty")
		case len(k) > MaxMetaKeyBytes:
			return badRequest("metadata key %q is %d bytes, over the limit of %d", clip(k), len(k), MaxMetaKeyBytes)
		case len(v) > MaxMetaValueBytes:
			return badRequest("metadata value of %q is %d bytes, over the limit of %d", clip(k), len(v), MaxMetaValueBytes)
		case !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0):
			return badRequest("metadata %q is not text (invalid UTF-8 or a NUL byte)", clip(k))
		}
	}
	return nil
}

// clip shortens a client's string for a message.
func clip(s string) string {
	if len(s) <= 60 {
		return s
	}
	cut := 60
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// CatalogResult is what became of one file or text given to add.
type CatalogResult string

// The results of an add.
const (
	CatalogAdded     CatalogResult = "added"     // new to the catalog
	CatalogUnchanged CatalogResult = "unchanged" // already there as given: nothing written
	CatalogReplaced  CatalogResult = "replaced"  // its path held other content, now replaced
	CatalogSkipped   CatalogResult = "skipped"   // not text (binary, empty): left out, no error
	CatalogFailed    CatalogResult = "failed"    // could not be added (Error says why)
)

// CatalogOutcome is what became of one file or text.
type CatalogOutcome struct {
	Path string `json:"path"`
	// Doc is the document's ID, when the file is in the catalog.
	Doc    string        `json:"doc,omitempty"`
	Result CatalogResult `json:"result"`
	// Reason says why a file was skipped; Error why it failed.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	Chunks int    `json:"chunks"`
	Bytes  int    `json:"bytes"`
	// Semantic says the chunks were cut at an embedding model's
	// breakpoints (else fixed-size sentence windows).
	Semantic bool `json:"semantic"`
	// EmbedCalls counts the embedding requests this add made for the
	// file; EmbedCached the texts the embedding cache answered.
	EmbedCalls  int `json:"embed_calls"`
	EmbedCached int `json:"embed_cached"`
}

// CatalogAddResult is what an add did, one outcome per file, in order.
type CatalogAddResult struct {
	CatalogMode
	Files []CatalogOutcome `json:"files"`
}

// Failed counts the files that could not be added.
func (r CatalogAddResult) Failed() int {
	n := 0
	for _, f := range r.Files {
		if f.Result == CatalogFailed {
			n++
		}
	}
	return n
}

func outcomeView(o library.Outcome) CatalogOutcome {
	v := CatalogOutcome{Path: o.Path, Chunks: o.Chunks, Bytes: o.Bytes, Semantic: o.Semantic,
		EmbedCalls: o.Embed.Requests, EmbedCached: o.Embed.Cached}
	switch {
	case o.Err != nil:
		v.Result, v.Error = CatalogFailed, o.Err.Error()
	case o.Skipped != "":
		v.Result, v.Reason = CatalogSkipped, o.Skipped
	default:
		v.Doc = o.ID
		switch o.Result {
		case catalog.Added:
			v.Result = CatalogAdded
		case catalog.Unchanged:
			v.Result = CatalogUnchanged
		case catalog.Replaced:
			v.Result = CatalogReplaced
		default:
			v.Result, v.Error = CatalogFailed, "unknown result "+o.Result.String()
		}
	}
	return v
}

// CatalogSearchRequest is a search of the catalog.
type CatalogSearchRequest struct {
	Query string
	// K bounds the hits: library.DefaultK when 0, library.MaxK at most.
	K int
	// Methods searches the image's methods instead of the documents.
	Methods bool
	// Doc restricts the search to one document (its ID or path), Meta to
	// the documents whose metadata holds every pair.
	Doc  string
	Meta map[string]string
}

// Check refuses a search no server can run.
func (r CatalogSearchRequest) Check() error {
	switch {
	case strings.TrimSpace(r.Query) == "":
		return badRequest("the query has no words")
	case len(r.Query) > library.MaxQueryBytes:
		return badRequest("the query is %d bytes, over the limit of %d", len(r.Query), library.MaxQueryBytes)
	case r.K < 0 || r.K > library.MaxK:
		return badRequest("k is %d, want 1 to %d (0: %d)", r.K, library.MaxK, library.DefaultK)
	case r.Methods && (r.Doc != "" || len(r.Meta) > 0):
		return badRequest("a search of methods takes no document or metadata filter")
	}
	if err := checkName("doc", r.Doc); err != nil {
		return err
	}
	return checkMeta(r.Meta)
}

// CatalogSpan is a range [Start, End) of bytes.
type CatalogSpan struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// CatalogHit is a passage or, for a search of methods, a method found.
type CatalogHit struct {
	// Score is the fused score (higher is better); TextRank and
	// VectorRank the hit's 1-based ranks in the full-text and vector
	// searches (0: not found there); Similarity its cosine similarity to
	// the query, when the vector search found it.
	Score      float64 `json:"score"`
	TextRank   int     `json:"text_rank"`
	VectorRank int     `json:"vector_rank"`
	Similarity float32 `json:"similarity"`
	// Cite names the hit: title#position for a passage,
	// receiver.selector for a method.
	Cite string `json:"cite"`
	// A passage: its chunk object, its document, its place and text;
	// Span is its bytes in the document's content.
	Chunk    string       `json:"chunk,omitempty"`
	Doc      string       `json:"doc,omitempty"`
	Title    string       `json:"title,omitempty"`
	Path     string       `json:"path,omitempty"`
	Position int          `json:"position"`
	Text     string       `json:"text,omitempty"`
	Span     *CatalogSpan `json:"span,omitempty"`
	// A method: the object holding it, named by a root name where one
	// names it, its selector and source.
	Object   string `json:"object,omitempty"`
	Receiver string `json:"receiver,omitempty"`
	Selector string `json:"selector,omitempty"`
	Source   string `json:"source,omitempty"`
	// Fragment is the text around the best match, Marks the bytes of the
	// matched words in it; for a hit found by its vector alone, the
	// start of the text and no marks.
	Fragment string        `json:"fragment"`
	Marks    []CatalogSpan `json:"marks"`
}

// CatalogSearchResult is a search's hits, best first.
type CatalogSearchResult struct {
	CatalogMode
	Hits []CatalogHit `json:"hits"`
}

func hitView(h *library.Hit) CatalogHit {
	v := CatalogHit{Score: h.Score, TextRank: h.TextRank, VectorRank: h.VectorRank, Similarity: h.Similarity,
		Cite: h.Cite(), Fragment: h.Fragment, Marks: []CatalogSpan{}}
	for _, m := range h.Marks {
		v.Marks = append(v.Marks, CatalogSpan{m.Start, m.End})
	}
	if h.Doc != nil {
		v.Chunk, v.Doc, v.Title, v.Path = h.Chunk.String(), h.Doc.ID, h.Doc.Title, h.Doc.Path
		v.Position, v.Text, v.Span = h.Position, h.Text, &CatalogSpan{h.Span.Start, h.Span.End}
		return v
	}
	v.Object, v.Receiver, v.Selector, v.Source = h.Object.String(), h.Receiver, h.Selector, h.Source
	return v
}

// CatalogDoc is a document in the catalog.
type CatalogDoc struct {
	ID    string `json:"id"`
	OID   string `json:"oid"`
	Title string `json:"title"`
	Path  string `json:"path"`
	// Kind is how it was split: text, markdown or code.
	Kind   string            `json:"kind"`
	SHA256 string            `json:"sha256"`
	Meta   map[string]string `json:"meta,omitempty"`
	Chunks int               `json:"chunks"`
	// Size is the content's bytes; Tokens the estimate over its chunks.
	Size   int       `json:"size"`
	Tokens int       `json:"tokens"`
	Added  time.Time `json:"added"`
	// Serial is the transaction that last wrote the document.
	Serial string `json:"serial"`
	// MinTokens and MaxTokens are the chunk bounds it was cut with.
	MinTokens int `json:"min_tokens"`
	MaxTokens int `json:"max_tokens"`
	// ChunkedBy is the embedding model whose breakpoints cut it, at
	// Percentile ("": fixed-size sentence windows); EmbedModel the one
	// whose vectors its chunks hold ("": none).
	ChunkedBy  string  `json:"chunked_by,omitempty"`
	Percentile float64 `json:"percentile,omitempty"`
	EmbedModel string  `json:"embed_model,omitempty"`
}

func docView(d *catalog.Doc) CatalogDoc {
	return CatalogDoc{ID: d.ID, OID: d.OID.String(), Title: d.Title, Path: d.Path, Kind: d.Kind.String(), SHA256: d.SHA256,
		Meta: d.Meta, Chunks: len(d.Chunks), Size: d.Size, Tokens: d.Tokens, Added: d.Added, Serial: tidText(d.Serial),
		MinTokens: d.Bounds.MinTokens, MaxTokens: d.Bounds.MaxTokens, ChunkedBy: d.Chunking.Model,
		Percentile: d.Chunking.Percentile, EmbedModel: d.EmbedModel}
}

// CatalogChunk is one chunk of a document.
type CatalogChunk struct {
	OID      string      `json:"oid"`
	Position int         `json:"position"`
	Span     CatalogSpan `json:"span"`
	Tokens   int         `json:"tokens"`
	// Embedded says the chunk holds a vector.
	Embedded bool   `json:"embedded"`
	Text     string `json:"text"`
}

// CatalogList is the catalog's documents, in the order they were first
// added.
type CatalogList struct {
	CatalogMode
	Docs []CatalogDoc `json:"docs"`
}

// CatalogDocument is one document and its chunks, in order.
type CatalogDocument struct {
	CatalogMode
	Doc    CatalogDoc     `json:"doc"`
	Chunks []CatalogChunk `json:"chunks"`
}

// CatalogRemoved is the document a remove took out.
type CatalogRemoved struct {
	CatalogMode
	Doc CatalogDoc `json:"doc"`
}

// CatalogReindexed is what a rebuild of the indexes did.
type CatalogReindexed struct {
	CatalogMode
	Rebuilt bool   `json:"rebuilt"`
	Reason  string `json:"reason,omitempty"`
	// Replayed counts transactions caught up from the log instead.
	Replayed int     `json:"replayed,omitempty"`
	TookMS   float64 `json:"took_ms"`
}

// CatalogStats is what the catalog and its indexes hold.
type CatalogStats struct {
	CatalogMode
	Documents int `json:"documents"`
	Chunks    int `json:"chunks"`
	Bytes     int `json:"bytes"`
	Tokens    int `json:"tokens"`
	// Malformed counts entries that are not readable documents (edited
	// by hand); catalog remove takes one out by its ID.
	Malformed int `json:"malformed,omitempty"`
	// EmbedModel is the embedding model ("": none, and Note says so).
	EmbedModel string            `json:"embed_model,omitempty"`
	Index      CatalogIndexStats `json:"index"`
	Usage      CatalogUsage      `json:"embedding_usage"`
}

// CatalogIndexStats is what the catalog's derived indexes hold.
type CatalogIndexStats struct {
	Documents int `json:"documents"`
	Chunks    int `json:"chunks"`
	Methods   int `json:"methods"`
	Vectors   int `json:"vectors"`
	Dims      int `json:"dims"`
	// Model is the embedding model of the vectors.
	Model string `json:"model,omitempty"`
	// Entries is the full-text index's count of entries; Bytes the
	// size of the index directory.
	Entries int64 `json:"entries"`
	Bytes   int64 `json:"bytes"`
	// LastTID is the last transaction the indexes hold.
	LastTID string `json:"last_tid"`
}

// CatalogUsage is the running total of the catalog's embedding calls.
type CatalogUsage struct {
	Calls        int64   `json:"calls"`
	Failures     int64   `json:"failures"`
	PromptTokens int64   `json:"prompt_tokens"`
	Texts        int64   `json:"texts"`
	Cached       int64   `json:"cached"`
	LatencyMS    float64 `json:"latency_ms"`
}

// catalogFor opens the runtime's catalog.
func (l *Local) catalogFor(ctx context.Context) (*library.Library, error) {
	return l.rt.Catalog(ctx)
}

// CatalogAdd adds files or a text. Each file is added whole in its own
// transaction or not at all; one file's failure is its outcome and does
// not stop the others. A path that does not exist stops the add before
// anything is added.
func (l *Local) CatalogAdd(ctx context.Context, req CatalogAddRequest) (CatalogAddResult, error) {
	if err := req.Check(); err != nil {
		return CatalogAddResult{}, err
	}
	ctx = withTopic(ctx, TopicCatalog)
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogAddResult{}, err
	}
	out := CatalogAddResult{CatalogMode: modeOf(lib), Files: []CatalogOutcome{}}
	if len(req.Paths) == 0 {
		o := lib.AddText(ctx, req.Name, []byte(req.Text), req.Title, req.Meta)
		out.Files = append(out.Files, outcomeView(o))
		return out, nil
	}
	var progress library.Progress
	if req.Progress != nil {
		progress = func(o library.Outcome, df, tf int, db, tb int64) { req.Progress(outcomeView(o), df, tf, db, tb) }
	}
	outcomes, err := lib.AddPaths(ctx, req.Paths, req.Meta, progress)
	for _, o := range outcomes {
		out.Files = append(out.Files, outcomeView(o))
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return CatalogAddResult{}, WithKind(ErrBadRequest, fileError("path", err))
	case len(outcomes) > 0:
		// The files done are returned with the error, for the caller to
		// say what they became.
		return out, fmt.Errorf("catalog add stopped after %d files (what they added is saved): %w", len(outcomes), err)
	}
	return CatalogAddResult{}, err
}

// CatalogSearch runs a search, embedding the query when there is an
// embedding model (a failed embedding falls back to text search, which
// the note says).
func (l *Local) CatalogSearch(ctx context.Context, req CatalogSearchRequest) (CatalogSearchResult, error) {
	if err := req.Check(); err != nil {
		return CatalogSearchResult{}, err
	}
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogSearchResult{}, err
	}
	res, err := lib.Search(ctx, library.Query{Text: req.Query, K: req.K, Methods: req.Methods, Doc: req.Doc, Meta: req.Meta})
	if err != nil {
		return CatalogSearchResult{}, err
	}
	out := CatalogSearchResult{CatalogMode: CatalogMode{Mode: res.Mode, Note: res.Note}, Hits: []CatalogHit{}}
	for i := range res.Hits {
		out.Hits = append(out.Hits, hitView(&res.Hits[i]))
	}
	return out, nil
}

// CatalogList lists the documents.
func (l *Local) CatalogList(ctx context.Context) (CatalogList, error) {
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogList{}, err
	}
	docs, err := lib.List(ctx)
	if err != nil {
		return CatalogList{}, err
	}
	out := CatalogList{CatalogMode: modeOf(lib), Docs: []CatalogDoc{}}
	for _, d := range docs {
		out.Docs = append(out.Docs, docView(d))
	}
	return out, nil
}

// CheckDoc refuses a document reference (an ID or a path, for show and
// remove) that cannot name a document.
func CheckDoc(doc string) error {
	if doc == "" {
		return badRequest("a document ID or path is required")
	}
	return checkName("doc", doc)
}

// CatalogShow shows a document, named by its ID or its path, with its
// chunks.
func (l *Local) CatalogShow(ctx context.Context, doc string) (CatalogDocument, error) {
	if err := CheckDoc(doc); err != nil {
		return CatalogDocument{}, err
	}
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogDocument{}, err
	}
	d, ps, err := lib.Show(ctx, doc)
	if err != nil {
		return CatalogDocument{}, err
	}
	out := CatalogDocument{CatalogMode: modeOf(lib), Doc: docView(d), Chunks: []CatalogChunk{}}
	for _, p := range ps {
		out.Chunks = append(out.Chunks, CatalogChunk{OID: p.OID.String(), Position: p.Position, Span: CatalogSpan{p.Span.Start, p.Span.End},
			Tokens: p.Tokens, Embedded: p.Vector != nil, Text: p.Text})
	}
	return out, nil
}

// CatalogRemove takes a document, named by its ID or its path, out of
// the catalog in one transaction.
func (l *Local) CatalogRemove(ctx context.Context, doc string) (CatalogRemoved, error) {
	if err := CheckDoc(doc); err != nil {
		return CatalogRemoved{}, err
	}
	ctx = withTopic(ctx, TopicCatalog)
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogRemoved{}, err
	}
	d, err := lib.Remove(ctx, doc)
	if err != nil {
		return CatalogRemoved{}, err
	}
	return CatalogRemoved{CatalogMode: modeOf(lib), Doc: docView(d)}, nil
}

// CatalogReindex rebuilds the catalog's indexes from the image.
func (l *Local) CatalogReindex(ctx context.Context) (CatalogReindexed, error) {
	ctx = withTopic(ctx, TopicCatalog)
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogReindexed{}, err
	}
	rep, err := lib.Reindex(ctx)
	if err != nil {
		return CatalogReindexed{}, err
	}
	return CatalogReindexed{CatalogMode: modeOf(lib), Rebuilt: rep.Rebuilt, Reason: rep.Reason, Replayed: rep.Replayed, TookMS: ms(rep.Took)}, nil
}

// CatalogStats counts what the catalog and its indexes hold.
func (l *Local) CatalogStats(ctx context.Context) (CatalogStats, error) {
	lib, err := l.catalogFor(ctx)
	if err != nil {
		return CatalogStats{}, err
	}
	s, err := lib.Stats(ctx)
	if err != nil {
		return CatalogStats{}, err
	}
	return CatalogStats{
		CatalogMode: modeOf(lib), Documents: s.Documents, Chunks: s.Chunks, Bytes: s.Bytes, Tokens: s.Tokens, Malformed: s.Malformed, EmbedModel: s.Model,
		Index: CatalogIndexStats{Documents: s.Index.Documents, Chunks: s.Index.Chunks, Methods: s.Index.Methods, Vectors: s.Index.Vectors,
			Dims: s.Index.Dims, Model: s.Index.Model, Entries: int64(s.Index.Entries), Bytes: s.Index.Bytes, LastTID: tidText(s.Index.LastTID)},
		Usage: CatalogUsage{Calls: s.Usage.Calls, Failures: s.Usage.Failures, PromptTokens: s.Usage.PromptTokens,
			Texts: s.Usage.Texts, Cached: s.Usage.Cached, LatencyMS: ms(s.Usage.Latency)},
	}, nil
}

func tidText(t store.TID) string {
	if t == 0 {
		return ""
	}
	return t.String()
}
