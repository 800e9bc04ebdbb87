package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"batos/internal/image"
	"batos/internal/store"
)

// The catalog in the image: the root's knowledge_catalog object holds a
// dict, slot "documents", from document ID to document object; each
// document object lists its chunk objects in order. Nothing else refers to
// a chunk, so the chunks a document drops (on replace or remove) are
// unreachable and the next pack removes them.

// Errors of the catalog in the image.
var (
	// ErrTooLarge is returned by Add for content over Options.MaxBytes.
	ErrTooLarge = errors.New("catalog: document too large")
	// ErrEmpty is returned by Add for content with no text to chunk.
	ErrEmpty = errors.New("catalog: empty document")
	// ErrNoDocument is returned for a document ID the catalog lacks.
	ErrNoDocument = errors.New("catalog: no such document")
	// ErrCorrupt is returned when a catalog object in the image has a
	// slot missing or of the wrong kind.
	ErrCorrupt = errors.New("catalog: malformed catalog object")
)

// DefaultMaxBytes is the largest document Add takes by default: 16 MiB,
// about 200,000 chunks at the default bounds.
const DefaultMaxBytes = 16 << 20

const (
	catalogName   = "knowledge_catalog"
	slotDocuments = "documents"
)

// Slots of a document object.
const (
	slotID     = "id"
	slotTitle  = "title"
	slotPath   = "path"
	slotSHA    = "sha256"
	slotKind   = "kind"
	slotMeta   = "meta"
	slotChunks = "chunks"
	slotAdded  = "added"
	slotSize   = "size"
	slotTokens = "tokens"
	slotMin    = "min_tokens"
	slotMax    = "max_tokens"
	// slotChunking names the embedding model whose breakpoints chunked
	// the document ("": fixed-size windows), slotPercentile the
	// percentile it cut at, slotEmbedModel the model that embedded its
	// chunks ("": none).
	slotChunking   = "chunked_by"
	slotPercentile = "percentile"
	slotEmbedModel = "embed_model"
)

// Slots of a chunk object.
const (
	slotDocument = "document"
	slotPosition = "position"
	slotText     = "text"
	slotStart    = "start"
	slotEnd      = "end"
	// slotEmbedding holds the chunk's vector as little-endian float32s
	// (EncodeVector), or None.
	slotEmbedding = "embedding"
)

// Source is a document to add.
type Source struct {
	// Path names the document and is its identity: adding another
	// content at the same path replaces the document (see IDOf).
	Path string
	// Title defaults to Path.
	Title string
	Data  []byte
	// Kind KindAuto takes the kind from Path (KindOf).
	Kind Kind
	Meta map[string]string
}

// Options configures Add. Nil or zero fields give the defaults.
type Options struct {
	// Bounds are the chunk sizes; zero fields as in Bounds.
	Bounds Bounds
	// MaxBytes is the largest content Add accepts; 0 means
	// DefaultMaxBytes. The caller reading a file should check its size
	// against it before reading it.
	MaxBytes int
	// Now gives the time recorded as a document's Added; nil means
	// time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() Options {
	var d Options
	if o != nil {
		d = *o
	}
	if d.MaxBytes == 0 {
		d.MaxBytes = DefaultMaxBytes
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Bounds = d.Bounds.withDefaults()
	return d
}

// AddResult says what Add did.
type AddResult int

const (
	// Added is a document new to the catalog.
	Added AddResult = iota
	// Unchanged is a document already in the catalog with the same
	// content, title, kind, metadata and bounds: nothing was written.
	Unchanged
	// Replaced is a document whose path was in the catalog with other
	// content (or title, kind, metadata or bounds): its chunks were
	// replaced.
	Replaced
)

func (r AddResult) String() string {
	switch r {
	case Added:
		return "added"
	case Unchanged:
		return "unchanged"
	case Replaced:
		return "replaced"
	}
	return "AddResult(" + strconv.Itoa(int(r)) + ")"
}

// Doc is a document as recorded in the image.
type Doc struct {
	OID store.OID
	// Serial is the transaction that last wrote the document object.
	Serial store.TID
	ID     string
	Title  string
	Path   string
	// SHA256 is the hex SHA-256 of the content.
	SHA256 string
	Kind   Kind
	Meta   map[string]string
	// Chunks are the chunk objects, in order.
	Chunks []store.OID
	Added  time.Time
	// Size is the content's length in bytes; Tokens the sum of its chunks'.
	Size, Tokens int
	// Bounds are those the document was chunked with.
	Bounds Bounds
	// Chunking says how the chunks were cut: by fixed-size windows (the
	// zero value) or at a model's semantic breakpoints.
	Chunking Chunking
	// EmbedModel is the model whose vectors the chunks hold; empty for
	// none (text search only).
	EmbedModel string
}

// Chunking is how a document's chunks were cut.
type Chunking struct {
	// Model is the embedding model whose neighbour similarities placed
	// the breakpoints; empty for fixed-size windows.
	Model      string
	Percentile float64
}

// Semantic reports whether the chunks were cut at breakpoints.
func (c Chunking) Semantic() bool { return c.Model != "" }

// Passage is a chunk as recorded in the image.
type Passage struct {
	OID store.OID
	// Doc is the OID of the document object.
	Doc      store.OID
	Position int
	Text     string
	// Span is the chunk's bytes in the document's content.
	Span   Span
	Tokens int
	// Vector is the chunk's embedding, or nil.
	Vector []float32
}

// Summary counts what the catalog holds.
type Summary struct {
	Documents, Chunks int
	Bytes, Tokens     int
	// Malformed counts the entries that are not readable documents
	// (edited by hand), which Documents leaves out.
	Malformed int
}

// IDOf is the ID of the document at path: "d" and the first 16 hex digits
// of the SHA-256 of the path. A path keeps its ID across changes to its
// content, so a document is cited by the same ID after it is replaced.
func IDOf(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "d" + hex.EncodeToString(sum[:8])
}

// Prepared is a document parsed and chunked, ready to be written by
// Write. Preparing needs no transaction: the embedding calls a semantic
// chunking makes happen between Prepare and Write, never inside a
// transaction.
type Prepared struct {
	want   *Doc
	units  []Unit
	bounds Bounds
	chunks []Chunk
	// vectors are the chunks' embeddings, one per chunk, or nil.
	vectors [][]float32
}

// Prepare parses src and groups its units into chunks at fixed sizes
// (no breakpoints); Chunk regroups them at a semantic chunking's
// breakpoints. Content over the size limit (ErrTooLarge), binary
// content (ErrBinary) and content with no text (ErrEmpty) are refused.
// Prepare holds the whole document in memory, within the limit.
func Prepare(src Source, opts *Options) (*Prepared, error) {
	o := opts.withDefaults()
	if err := o.Bounds.Validate(); err != nil {
		return nil, err
	}
	if src.Path == "" {
		return nil, errors.New("catalog: add: a document needs a path")
	}
	if len(src.Data) > o.MaxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the limit of %d bytes", ErrTooLarge, src.Path, len(src.Data), o.MaxBytes)
	}
	parsed, err := Parse(src.Path, src.Data, src.Kind)
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", src.Path, err)
	}
	if len(parsed.Units) == 0 {
		return nil, fmt.Errorf("%w: %s has no text", ErrEmpty, src.Path)
	}
	sum := sha256.Sum256(src.Data)
	want := &Doc{
		ID: IDOf(src.Path), Title: src.Title, Path: src.Path,
		SHA256: hex.EncodeToString(sum[:]), Kind: parsed.Kind, Meta: cloneMeta(src.Meta),
		Size: len(src.Data), Bounds: o.Bounds, Added: o.Now().UTC(),
	}
	if want.Title == "" {
		want.Title = src.Path
	}
	p := &Prepared{want: want, units: parsed.Units, bounds: o.Bounds}
	p.chunks = Group(p.units, nil, p.bounds)
	return p, nil
}

// Doc is the document as Write would record it (its OID and chunks are
// set by Write).
func (p *Prepared) Doc() *Doc { return p.want }

// Units are the document's units, what a semantic chunking embeds.
func (p *Prepared) Units() []Unit { return p.units }

// Chunks are the document's chunks as grouped so far.
func (p *Prepared) Chunks() []Chunk { return p.chunks }

// Chunk regroups the units with a new chunk starting at each of breaks
// (unit indexes, as Breakpoints gives), and records that the document
// was chunked semantically by model at percentile. It drops vectors set
// before.
func (p *Prepared) Chunk(breaks []int, model string, percentile float64) {
	p.chunks = Group(p.units, breaks, p.bounds)
	p.want.Chunking = Chunking{Model: model, Percentile: percentile}
	p.vectors = nil
}

// PlanEmbedding records that the document is to be chunked at model's
// breakpoints at percentile and its chunks embedded by model, as Chunk
// and SetVectors will do: Current then compares with what is wanted
// before anything is paid for.
func (p *Prepared) PlanEmbedding(model string, percentile float64) {
	p.want.Chunking = Chunking{Model: model, Percentile: percentile}
	p.want.EmbedModel = model
}

// SetVectors gives the chunks their embeddings, one per chunk, by model
// (which also marks the document as embedded by it).
func (p *Prepared) SetVectors(model string, vectors [][]float32) error {
	if len(vectors) != len(p.chunks) {
		return fmt.Errorf("catalog: %d vectors for %d chunks", len(vectors), len(p.chunks))
	}
	p.vectors = vectors
	p.want.EmbedModel = model
	return nil
}

// Add adds src to the catalog in tx, chunked at fixed sizes: Prepare and
// Write.
func Add(tx *image.Tx, src Source, opts *Options) (*Doc, AddResult, error) {
	p, err := Prepare(src, opts)
	if err != nil {
		return nil, 0, err
	}
	return Write(tx, p)
}

// Current returns the catalog's document at p's path, if any, and
// whether writing p would change nothing: the same content, title,
// kind, metadata, bounds, chunking and embedding model. A caller checks
// it before paying for embeddings.
func Current(tx *image.Tx, p *Prepared) (*Doc, bool, error) {
	docs, err := documents(tx)
	if err != nil {
		return nil, false, err
	}
	v, ok := docs.Get(image.String(p.want.ID))
	if !ok {
		return nil, false, nil
	}
	old, err := loadDoc(tx, image.String(p.want.ID), v)
	if err != nil {
		return nil, false, err
	}
	return old, same(old, p.want), nil
}

// Write records p in the catalog in tx. Adding a path again with the
// same content, title, kind, metadata, bounds, chunking and embedding
// model writes nothing and reports Unchanged; with anything else it
// replaces the document's chunks and reports Replaced.
func Write(tx *image.Tx, p *Prepared) (*Doc, AddResult, error) {
	docs, err := documents(tx)
	if err != nil {
		return nil, 0, err
	}
	want := *p.want
	result := Added
	var obj *image.Object
	if v, ok := docs.Get(image.String(want.ID)); ok {
		if obj, err = tx.Deref(v); err != nil {
			return nil, 0, fmt.Errorf("document %s: %w", want.ID, err)
		}
		old, err := decodeDoc(obj)
		if err != nil {
			return nil, 0, err
		}
		if same(old, &want) {
			return old, Unchanged, nil
		}
		result = Replaced
	} else if obj, err = tx.New(); err != nil {
		return nil, 0, err
	}
	want.OID = obj.OID()
	if err := writeChunks(tx, obj, &want, p.chunks, p.vectors); err != nil {
		return nil, 0, fmt.Errorf("add %s: %w", want.Path, err)
	}
	if err := docs.Set(image.String(want.ID), obj.Ref()); err != nil {
		return nil, 0, err
	}
	if err := catalogSet(tx, docs); err != nil {
		return nil, 0, err
	}
	return &want, result, nil
}

// cloneMeta copies m, so the Doc shares nothing with its caller; nil for
// no entries, as decodeDoc gives.
func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// same reports whether adding want over old would change nothing.
func same(old, want *Doc) bool {
	if old.SHA256 != want.SHA256 || old.Title != want.Title || old.Path != want.Path ||
		old.Kind != want.Kind || old.Bounds != want.Bounds || len(old.Meta) != len(want.Meta) ||
		old.Chunking != want.Chunking || old.EmbedModel != want.EmbedModel {
		return false
	}
	for k, v := range want.Meta {
		if w, ok := old.Meta[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// writeChunks creates a chunk object for each chunk and writes d, with
// them, into obj. The chunk objects obj listed before are left
// unreferenced.
func writeChunks(tx *image.Tx, obj *image.Object, d *Doc, chunks []Chunk, vectors [][]float32) error {
	refs := make([]image.Value, 0, len(chunks))
	d.Chunks, d.Tokens = make([]store.OID, 0, len(chunks)), 0
	for i, c := range chunks {
		var vec image.Value = image.None
		if vectors != nil {
			vec = image.Bytes(EncodeVector(vectors[i]))
		}
		co, err := tx.New(
			image.Slot{Name: slotDocument, Value: obj.Ref()},
			image.Slot{Name: slotPosition, Value: image.Int(i)},
			image.Slot{Name: slotText, Value: image.String(c.Text)},
			image.Slot{Name: slotStart, Value: image.Int(c.Span.Start)},
			image.Slot{Name: slotEnd, Value: image.Int(c.Span.End)},
			image.Slot{Name: slotTokens, Value: image.Int(c.Tokens)},
			image.Slot{Name: slotEmbedding, Value: vec},
		)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		refs = append(refs, co.Ref())
		d.Chunks = append(d.Chunks, co.OID())
		d.Tokens += c.Tokens
	}
	// Sorted keys keep the object's encoding the same for the same metadata.
	meta := &image.Dict{}
	for _, k := range slices.Sorted(maps.Keys(d.Meta)) {
		if err := meta.Set(image.String(k), image.String(d.Meta[k])); err != nil {
			return err
		}
	}
	for _, s := range []image.Slot{
		{Name: slotID, Value: image.String(d.ID)},
		{Name: slotTitle, Value: image.String(d.Title)},
		{Name: slotPath, Value: image.String(d.Path)},
		{Name: slotSHA, Value: image.String(d.SHA256)},
		{Name: slotKind, Value: image.String(d.Kind.String())},
		{Name: slotMeta, Value: meta},
		{Name: slotChunks, Value: image.NewList(refs...)},
		{Name: slotAdded, Value: image.String(d.Added.Format(time.RFC3339Nano))},
		{Name: slotSize, Value: image.Int(d.Size)},
		{Name: slotTokens, Value: image.Int(d.Tokens)},
		{Name: slotMin, Value: image.Int(d.Bounds.MinTokens)},
		{Name: slotMax, Value: image.Int(d.Bounds.MaxTokens)},
		{Name: slotChunking, Value: image.String(d.Chunking.Model)},
		{Name: slotPercentile, Value: image.Float(d.Chunking.Percentile)},
		{Name: slotEmbedModel, Value: image.String(d.EmbedModel)},
	} {
		if err := obj.Set(s.Name, s.Value); err != nil {
			return fmt.Errorf("slot %s: %w", s.Name, err)
		}
	}
	return nil
}

// Remove takes the document id out of the catalog in tx. Its object and
// chunk objects become unreferenced, and the next pack removes them.
func Remove(tx *image.Tx, id string) error {
	docs, err := documents(tx)
	if err != nil {
		return err
	}
	if !docs.Delete(image.String(id)) {
		return fmt.Errorf("%w: %q", ErrNoDocument, id)
	}
	return catalogSet(tx, docs)
}

// List returns the catalog's documents in the order they were first added.
func List(tx *image.Tx) ([]*Doc, error) {
	docs, err := documents(tx)
	if err != nil {
		return nil, err
	}
	out := make([]*Doc, 0, docs.Len())
	for k, v := range docs.All() {
		d, err := loadDoc(tx, k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// BadDoc is a document object the catalog cannot read: edited by hand
// into another shape, or a reference to nothing.
type BadDoc struct {
	ID     string
	OID    store.OID // 0 when the entry refers to no object
	Serial store.TID
	Err    error
}

// Scan is List for those that must go on past a malformed document (the
// indexes): the documents it can read, and those it cannot, each with
// why. The error is for a catalog that cannot be read at all.
func Scan(tx *image.Tx) ([]*Doc, []BadDoc, error) {
	docs, err := documents(tx)
	if err != nil {
		return nil, nil, err
	}
	var good []*Doc
	var bad []BadDoc
	for k, v := range docs.All() {
		id, _ := k.(image.String)
		o, err := tx.Deref(v)
		if err != nil {
			bad = append(bad, BadDoc{ID: string(id), Err: fmt.Errorf("document %s: %w", image.Repr(k), err)})
			continue
		}
		d, err := decodeDoc(o)
		if err != nil {
			bad = append(bad, BadDoc{ID: string(id), OID: o.OID(), Serial: o.Serial(), Err: err})
			continue
		}
		good = append(good, d)
	}
	return good, bad, nil
}

// Listed reports whether the catalog has an entry for document id,
// readable or not.
func Listed(tx *image.Tx, id string) (bool, error) {
	docs, err := documents(tx)
	if err != nil {
		return false, err
	}
	_, ok := docs.Get(image.String(id))
	return ok, nil
}

// Get returns the document id and its chunks, in order.
func Get(tx *image.Tx, id string) (*Doc, []Passage, error) {
	docs, err := documents(tx)
	if err != nil {
		return nil, nil, err
	}
	v, ok := docs.Get(image.String(id))
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNoDocument, id)
	}
	d, err := loadDoc(tx, image.String(id), v)
	if err != nil {
		return nil, nil, err
	}
	ps := make([]Passage, 0, len(d.Chunks))
	for _, oid := range d.Chunks {
		o, err := tx.Object(oid)
		if err != nil {
			return nil, nil, fmt.Errorf("document %s: chunk %s: %w", id, oid, err)
		}
		p, err := decodePassage(o)
		if err != nil {
			return nil, nil, fmt.Errorf("document %s: %w", id, err)
		}
		ps = append(ps, p)
	}
	return d, ps, nil
}

// Stats counts the catalog's documents, chunks, bytes and tokens.
func Stats(tx *image.Tx) (Summary, error) {
	ds, bad, err := Scan(tx)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Documents: len(ds), Malformed: len(bad)}
	for _, d := range ds {
		s.Chunks += len(d.Chunks)
		s.Bytes += d.Size
		s.Tokens += d.Tokens
	}
	return s, nil
}

func loadDoc(tx *image.Tx, key, v image.Value) (*Doc, error) {
	o, err := tx.Deref(v)
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", image.Repr(key), err)
	}
	return decodeDoc(o)
}

// catalogObject returns the root's knowledge_catalog object.
func catalogObject(tx *image.Tx) (*image.Object, error) {
	root, err := tx.Root()
	if err != nil {
		return nil, err
	}
	v, ok := root.Get(catalogName)
	if !ok {
		return nil, fmt.Errorf("%w: the image has no %s object", ErrCorrupt, catalogName)
	}
	return tx.Deref(v)
}

// documents returns the catalog's dict of documents: in an Update the
// transaction's own, which catalogSet stores back; in a View the cached
// one, which the caller must not change.
func documents(tx *image.Tx) (*image.Dict, error) {
	cat, err := catalogObject(tx)
	if err != nil {
		return nil, err
	}
	// A read takes the dict as the image's cache holds it: Get would copy
	// it, and every read of a chunk looks its document up here.
	get := cat.Get
	if !tx.Writable() {
		get = cat.Peek
	}
	v, ok := get(slotDocuments)
	if !ok {
		return &image.Dict{}, nil
	}
	d, isDict := v.(*image.Dict)
	if !isDict {
		return nil, fmt.Errorf("%w: %s slot %s is %s, want a dict", ErrCorrupt, catalogName, slotDocuments, image.Repr(v))
	}
	return d, nil
}

func catalogSet(tx *image.Tx, docs *image.Dict) error {
	cat, err := catalogObject(tx)
	if err != nil {
		return err
	}
	return cat.Set(slotDocuments, docs)
}

// decoder reads slots of one object, gathering every problem.
type decoder struct {
	o    *image.Object
	errs []error
}

func (d *decoder) bad(slot string, v image.Value, ok bool, want string) {
	what := "missing"
	if ok {
		what = image.Repr(v)
	}
	d.errs = append(d.errs, fmt.Errorf("slot %s is %s, want %s", slot, what, want))
}

// slotOf reads slot as a T, reporting it (as want) when it is missing or
// of another kind.
func slotOf[T image.Value](d *decoder, slot, want string) T {
	v, ok := d.o.Peek(slot)
	x, is := v.(T)
	if !is {
		d.bad(slot, v, ok, want)
	}
	return x
}

func (d *decoder) str(slot string) string { return string(slotOf[image.String](d, slot, "a string")) }

func (d *decoder) int(slot string) int { return int(slotOf[image.Int](d, slot, "an int")) }

func (d *decoder) float(slot string) float64 {
	return float64(slotOf[image.Float](d, slot, "a float"))
}

func (d *decoder) ref(slot string) store.OID {
	return store.OID(slotOf[image.Ref](d, slot, "a reference"))
}

func (d *decoder) err(what string) error {
	if len(d.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s %s: %w", ErrCorrupt, what, d.o.OID(), errors.Join(d.errs...))
}

// decodeDoc reads a document object. Catalog objects are image objects a
// user can touch from the REPL: a slot of the wrong kind is reported by
// name.
func decodeDoc(o *image.Object) (*Doc, error) {
	dec := &decoder{o: o}
	doc := &Doc{
		OID: o.OID(), Serial: o.Serial(), ID: dec.str(slotID), Title: dec.str(slotTitle), Path: dec.str(slotPath),
		SHA256: dec.str(slotSHA), Size: dec.int(slotSize), Tokens: dec.int(slotTokens),
		Bounds: Bounds{MinTokens: dec.int(slotMin), MaxTokens: dec.int(slotMax)},
	}
	kind := dec.str(slotKind)
	doc.Kind = kindNamed(kind)
	if doc.Kind == KindAuto {
		dec.errs = append(dec.errs, fmt.Errorf("slot %s is %q, want text, markdown or code", slotKind, kind))
	}
	added := dec.str(slotAdded)
	if t, err := time.Parse(time.RFC3339Nano, added); err == nil {
		doc.Added = t
	} else {
		dec.errs = append(dec.errs, fmt.Errorf("slot %s: %w", slotAdded, err))
	}
	doc.Meta = dec.meta()
	doc.Chunks = dec.refs(slotChunks)
	// Documents written before semantic chunking have none of these slots.
	if _, ok := o.Peek(slotChunking); ok {
		doc.Chunking.Model = dec.str(slotChunking)
		doc.EmbedModel = dec.str(slotEmbedModel)
		doc.Chunking.Percentile = dec.float(slotPercentile)
	}
	return doc, dec.err("document")
}

func (d *decoder) meta() map[string]string {
	v, ok := d.o.Peek(slotMeta)
	m, isDict := v.(*image.Dict)
	if !isDict {
		d.bad(slotMeta, v, ok, "a dict")
		return nil
	}
	if m.Len() == 0 {
		return nil
	}
	out := make(map[string]string, m.Len())
	for k, v := range m.All() {
		ks, kok := k.(image.String)
		vs, vok := v.(image.String)
		if !kok || !vok {
			d.errs = append(d.errs, fmt.Errorf("slot %s holds %s: %s, want strings", slotMeta, image.Repr(k), image.Repr(v)))
			continue
		}
		out[string(ks)] = string(vs)
	}
	return out
}

func (d *decoder) refs(slot string) []store.OID {
	v, ok := d.o.Peek(slot)
	l, isList := v.(*image.List)
	if !isList {
		d.bad(slot, v, ok, "a list")
		return nil
	}
	out := make([]store.OID, 0, len(l.Elems))
	for i, e := range l.Elems {
		r, isRef := e.(image.Ref)
		if !isRef {
			d.errs = append(d.errs, fmt.Errorf("slot %s[%d] is %s, want a reference", slot, i, image.Repr(e)))
			continue
		}
		out = append(out, store.OID(r))
	}
	return out
}

// decodePassage reads a chunk object.
func decodePassage(o *image.Object) (Passage, error) {
	dec := &decoder{o: o}
	p := Passage{
		OID: o.OID(), Doc: dec.ref(slotDocument), Position: dec.int(slotPosition),
		Text: dec.str(slotText), Span: Span{dec.int(slotStart), dec.int(slotEnd)},
		Tokens: dec.int(slotTokens),
	}
	// A chunk written before embeddings were kept has no slot: no vector.
	switch v, ok := o.Peek(slotEmbedding); vec := v.(type) {
	case image.Bytes:
		var err error
		if p.Vector, err = DecodeVector([]byte(vec)); err != nil {
			dec.errs = append(dec.errs, fmt.Errorf("slot %s: %w", slotEmbedding, err))
		}
	case image.NoneType:
	default:
		if ok {
			dec.bad(slotEmbedding, v, ok, "bytes or None")
		}
	}
	return p, dec.err("chunk")
}

// kindNamed is the kind whose String is name; KindAuto for none.
func kindNamed(name string) Kind {
	for _, k := range []Kind{KindText, KindMarkdown, KindCode} {
		if k.String() == name {
			return k
		}
	}
	return KindAuto
}

// PassageAt reads the chunk object oid and the document that lists it.
// A chunk its document no longer lists (replaced, or a document removed
// since an index saw it) is ErrNoDocument: it is not in the catalog.
func PassageAt(tx *image.Tx, oid store.OID) (*Doc, Passage, error) {
	o, err := tx.Object(oid)
	if err != nil {
		return nil, Passage{}, err
	}
	p, err := decodePassage(o)
	if err != nil {
		return nil, Passage{}, err
	}
	do, err := tx.Object(p.Doc)
	if err != nil {
		return nil, Passage{}, fmt.Errorf("chunk %s: %w", oid, err)
	}
	d, err := decodeDoc(do)
	if err != nil {
		return nil, Passage{}, err
	}
	docs, err := documents(tx)
	if err != nil {
		return nil, Passage{}, err
	}
	if v, ok := docs.Get(image.String(d.ID)); !ok || v != image.Ref(d.OID) || !slices.Contains(d.Chunks, oid) {
		return nil, Passage{}, fmt.Errorf("%w: chunk %s is not in the catalog", ErrNoDocument, oid)
	}
	return d, p, nil
}

// EmbeddingUsage is the running total of the catalog's embedding calls,
// kept on the knowledge_catalog object as personas keep theirs.
type EmbeddingUsage struct {
	Calls, Failures, PromptTokens int64
	// Texts counts the texts embedded; Cached those a cache answered
	// without a call.
	Texts, Cached int64
	Latency       time.Duration
}

const slotEmbeddingUsage = "embedding_usage"

var embeddingUsageKeys = []string{"calls", "failures", "prompt_tokens", "texts", "cached", "latency_ms"}

// RecordEmbedding adds u to the catalog's embedding usage in tx.
func RecordEmbedding(tx *image.Tx, u EmbeddingUsage) error {
	cat, err := catalogObject(tx)
	if err != nil {
		return err
	}
	total, err := embeddingUsage(cat)
	if err != nil {
		return err
	}
	total.Calls += u.Calls
	total.Failures += u.Failures
	total.PromptTokens += u.PromptTokens
	total.Texts += u.Texts
	total.Cached += u.Cached
	total.Latency += u.Latency
	d := &image.Dict{}
	vals := []int64{total.Calls, total.Failures, total.PromptTokens, total.Texts, total.Cached, total.Latency.Milliseconds()}
	for i, k := range embeddingUsageKeys {
		if err := d.Set(image.String(k), image.Int(vals[i])); err != nil {
			return err
		}
	}
	return cat.Set(slotEmbeddingUsage, d)
}

// EmbeddingUsageOf reads the catalog's embedding usage.
func EmbeddingUsageOf(tx *image.Tx) (EmbeddingUsage, error) {
	cat, err := catalogObject(tx)
	if err != nil {
		return EmbeddingUsage{}, err
	}
	return embeddingUsage(cat)
}

func embeddingUsage(cat *image.Object) (EmbeddingUsage, error) {
	v, ok := cat.Peek(slotEmbeddingUsage)
	if !ok {
		return EmbeddingUsage{}, nil
	}
	d, isDict := v.(*image.Dict)
	if !isDict {
		return EmbeddingUsage{}, fmt.Errorf("%w: %s slot %s is %s, want a dict", ErrCorrupt, catalogName, slotEmbeddingUsage, image.Repr(v))
	}
	n := func(k string) int64 {
		v, _ := d.Get(image.String(k))
		i, _ := v.(image.Int)
		return int64(i)
	}
	return EmbeddingUsage{
		Calls: n("calls"), Failures: n("failures"), PromptTokens: n("prompt_tokens"),
		Texts: n("texts"), Cached: n("cached"), Latency: time.Duration(n("latency_ms")) * time.Millisecond,
	}, nil
}
