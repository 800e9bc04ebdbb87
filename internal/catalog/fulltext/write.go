package fulltext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/document"
	index "github.com/blevesearch/bleve_index_api"
)

// Entry is one searchable thing: a chunk of a document or a method.
type Entry struct {
	ID     string            // unique key; Put with an existing ID replaces it
	Title  string            // searchable, weighted above Text (a document's title, a method's selector)
	Text   string            // the searchable body
	Fields map[string]string // keyword fields, matched exactly by Query.Filter; not analysed
}

// lengths are an entry's token counts after analysis.
type lengths struct{ title, text int }

// Field options. Text is stored for fragments; nothing keeps term vectors
// (fragments analyse the stored text again) or doc values (nothing sorts
// or facets), which would double the index.
const (
	titleOptions   = index.IndexField
	textOptions    = index.IndexField | index.StoreField
	keywordOptions = index.IndexField | index.SkipFreqNorm
)

// Put adds entries, replacing those with the same IDs, in one batch; of
// two entries with one ID the later wins. When Put returns nil the batch
// is applied, and durable once Flush returns nil (see the package
// comment). When it returns an error the batch may be applied or not:
// put it again, or rebuild.
func (ix *Index) Put(entries []Entry) error {
	for i, e := range entries {
		if e.ID == "" {
			return fmt.Errorf("put entries: entry %d has no ID", i)
		}
	}
	entries = lastByID(entries)
	if len(entries) == 0 {
		return nil
	}
	docs, lens := ix.documents(entries)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	st, err := ix.withoutLocked(ids)
	if err != nil {
		return fmt.Errorf("put entries: %w", err)
	}
	b := ix.bi.NewBatch()
	for i, d := range docs {
		if err := b.IndexAdvanced(d); err != nil {
			return fmt.Errorf("put entries: %w", err)
		}
		st.add(1, lens[i])
	}
	if err := ix.commitLocked(b, st); err != nil {
		return fmt.Errorf("put entries: %w", err)
	}
	return nil
}

// Delete removes the entries with the given IDs, in one batch; IDs the
// index does not hold are ignored. When Delete returns nil the removal is
// applied, and durable once Flush returns nil; when it returns an error,
// see Put.
func (ix *Index) Delete(ids []string) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed {
		return ErrClosed
	}
	ix.wmu.Lock()
	defer ix.wmu.Unlock()
	st, err := ix.withoutLocked(ids)
	if err != nil {
		return fmt.Errorf("delete entries: %w", err)
	}
	b := ix.bi.NewBatch()
	for _, id := range ids {
		b.Delete(id)
	}
	if err := ix.commitLocked(b, st); err != nil {
		return fmt.Errorf("delete entries: %w", err)
	}
	return nil
}

// withoutLocked returns the totals with the entries of ids the index
// holds counted out. wmu must be held.
func (ix *Index) withoutLocked(ids []string) (_ *stats, err error) {
	defer recoverDamage(&err, debug.SetPanicOnFault(true))
	st := *ix.stats.Load()
	r, err := ix.reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		d, err := r.Document(id)
		if err != nil {
			return nil, fmt.Errorf("read entry %q: %w", id, err)
		}
		if d == nil {
			continue
		}
		n, err := storedLengths(d)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: %v", ErrDamaged, id, err)
		}
		st.add(-1, n)
	}
	return &st, nil
}

// commitLocked applies b with st as the new totals, in the same batch so
// that the totals always count what the index holds. wmu must be held.
func (ix *Index) commitLocked(b *bleve.Batch, st *stats) (err error) {
	defer recoverDamage(&err, debug.SetPanicOnFault(true))
	st.Gen++
	b.SetInternal([]byte(statsKey), st.encode())
	if err := ix.batchLocked(b); err != nil {
		// The batch may be in (applied, not persisted): count what the
		// index holds now.
		if now, err := loadStats(ix.bi); err == nil {
			ix.stats.Store(now)
		}
		return err
	}
	ix.stats.Store(st)
	return nil
}

// batchLocked applies b, counting it unpersisted until scorch persists
// it; it waits first while too many are. wmu must be held.
func (ix *Index) batchLocked(b *bleve.Batch) error {
	ix.persist.room()
	s := ix.persist.track(b)
	if err := ix.bi.Batch(b); err != nil {
		return err
	}
	ix.persist.applied(s)
	return nil
}

// storedLengths reads the token counts Put stored with an entry.
func storedLengths(d index.Document) (lengths, error) {
	var raw []byte
	d.VisitFields(func(f index.Field) {
		if f.Name() == fieldLengths {
			raw = f.Value()
		}
	})
	title, n := binary.Uvarint(raw)
	if n <= 0 {
		return lengths{}, errors.New("no token counts")
	}
	text, m := binary.Uvarint(raw[n:])
	if m <= 0 {
		return lengths{}, errors.New("no token counts")
	}
	return lengths{title: int(title), text: int(text)}, nil
}

// lastByID returns entries without those a later entry with the same ID
// replaces, in their order.
func lastByID(entries []Entry) []Entry {
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[e.ID] = i
	}
	if len(last) == len(entries) {
		return entries
	}
	out := make([]Entry, 0, len(last))
	for i, e := range entries {
		if last[e.ID] == i {
			out = append(out, e)
		}
	}
	return out
}

// documents builds bleve's documents for entries, analysing them on all
// CPUs: analysis is most of the cost of indexing.
func (ix *Index) documents(entries []Entry) ([]*document.Document, []lengths) {
	docs := make([]*document.Document, len(entries))
	lens := make([]lengths, len(entries))
	workers := min(runtime.GOMAXPROCS(0), (len(entries)+15)/16)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(entries); i += workers {
				docs[i], lens[i] = ix.document(entries[i])
			}
		})
	}
	wg.Wait()
	return docs, lens
}

// document builds the bleve document for e. Title and Text are analysed
// here rather than by scorch, so that their lengths are known before the
// batch goes in with the totals that count them; scorch then takes the
// tokens as they are (preAnalyzed).
func (ix *Index) document(e Entry) (*document.Document, lengths) {
	d := document.NewDocument(e.ID)
	tb, xb := []byte(valid(e.Title)), []byte(valid(e.Text))
	title, body := ix.an.Analyze(tb), ix.an.Analyze(xb)
	n := lengths{title: len(title), text: len(body)}
	d.AddField(document.NewTextFieldCustom(fieldTitle, nil, tb, titleOptions, preAnalyzed(title)))
	d.AddField(document.NewTextFieldCustom(fieldText, nil, xb, textOptions, preAnalyzed(body)))
	raw := binary.AppendUvarint(nil, uint64(n.title))
	raw = binary.AppendUvarint(raw, uint64(n.text))
	d.AddField(document.NewTextFieldWithIndexingOptions(fieldLengths, nil, raw, index.StoreField))
	for k, v := range e.Fields {
		// A nil analyzer indexes the whole value as one term.
		d.AddField(document.NewTextFieldCustom(fieldPrefix+k, nil, []byte(v), keywordOptions, nil))
	}
	return d, n
}

// preAnalyzed is an analyzer that gives tokens computed before.
type preAnalyzed analysis.TokenStream

func (p preAnalyzed) Analyze([]byte) analysis.TokenStream { return analysis.TokenStream(p) }

// valid returns s with each byte that is not valid UTF-8 replaced by
// U+FFFD, as the catalog repairs documents.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// recoverDamage, deferred with the fault setting it replaced
// (debug.SetPanicOnFault(true)), turns a panic in bleve, or a fault
// reading a damaged file through its memory map, into an ErrDamaged error
// in *err. It covers the calling goroutine only.
func recoverDamage(err *error, faults bool) {
	debug.SetPanicOnFault(faults)
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: bleve panicked: %v", ErrDamaged, r)
	}
}
