package fulltext

import (
	"fmt"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/registry"
)

// analyzer is the analysis of Title, Text and queries: this package's word
// splitter (scan), then bleve's English filters, those of its "en"
// analyzer: possessive 's stripped, lower case, stop words dropped, Porter
// stemming. It is safe for concurrent use.
//
// Each of those filters looks at one word alone, so the analysis of a word
// is remembered (up to maxCachedWords words, then forgotten all at once):
// prose repeats its words, and stemming them again was most of the cost of
// indexing and of fragments.
type analyzer struct {
	filters []analysis.TokenFilter

	mu    sync.RWMutex
	terms map[string][]byte // a word → its term; nil: dropped (a stop word)
}

// The cache's bounds: so many words, of at most so many bytes (a longer
// word is analysed each time), some 10 MB at worst.
const (
	maxCachedWords   = 1 << 17
	maxCachedWordLen = 64
)

func newAnalyzer() (*analyzer, error) {
	cache := registry.NewCache()
	a := &analyzer{terms: make(map[string][]byte)}
	for _, name := range []string{en.PossessiveName, lowercase.Name, en.StopName, porter.Name} {
		f, err := cache.TokenFilterNamed(name)
		if err != nil {
			return nil, fmt.Errorf("bleve token filter %s: %w", name, err)
		}
		a.filters = append(a.filters, f)
	}
	return a, nil
}

// Analyze returns the terms of input's words that are not dropped, with
// their byte spans. Their Term bytes are shared and must not be changed.
func (a *analyzer) Analyze(input []byte) analysis.TokenStream {
	slab := make([]analysis.Token, 0, len(input)/6+1)
	a.each(input, nil, func(start, end int, term []byte) {
		if term != nil {
			slab = append(slab, analysis.Token{Start: start, End: end, Term: term, Position: len(slab) + 1, Type: analysis.AlphaNumeric})
		}
	})
	ts := make(analysis.TokenStream, len(slab))
	for i := range slab {
		ts[i] = &slab[i]
	}
	return ts
}

// each calls fn with each word of input, in order: its span and its term
// (nil when the word is dropped, or when skip is not nil and says to skip
// the word's analysis). fn must not call a's methods: it may run with a
// lock held.
func (a *analyzer) each(input []byte, skip func(word []byte) bool, fn func(start, end int, term []byte)) {
	type miss struct{ start, end int }
	var misses []miss
	a.mu.RLock()
	for i := 0; ; {
		start, end := scan(input, i)
		if start == end {
			break
		}
		i = end
		if skip != nil && skip(input[start:end]) {
			if misses == nil {
				fn(start, end, nil)
			} else {
				misses = append(misses, miss{start, -end})
			}
			continue
		}
		if term, ok := a.terms[string(input[start:end])]; ok {
			// Calls for words not yet known wait, to keep the order.
			if misses == nil {
				fn(start, end, term)
				continue
			}
		}
		misses = append(misses, miss{start, end})
	}
	a.mu.RUnlock()
	if misses == nil {
		return
	}
	// Rare after the first texts: look up again what came after the first
	// unknown word, analysing what is still unknown.
	for _, m := range misses {
		if m.end < 0 { // skipped
			fn(m.start, -m.end, nil)
			continue
		}
		fn(m.start, m.end, a.term(input[m.start:m.end]))
	}
}

// term returns the term of one word, analysing and remembering it if
// needed.
func (a *analyzer) term(word []byte) []byte {
	a.mu.RLock()
	term, ok := a.terms[string(word)]
	a.mu.RUnlock()
	if ok {
		return term
	}
	// Filters may change the bytes they are given.
	ts := analysis.TokenStream{{Term: append([]byte(nil), word...), Position: 1, Type: analysis.AlphaNumeric}}
	for _, f := range a.filters {
		ts = f.Filter(ts)
	}
	if len(ts) == 1 && len(ts[0].Term) > 0 {
		term = ts[0].Term
	}
	if len(word) > maxCachedWordLen {
		return term
	}
	a.mu.Lock()
	if len(a.terms) >= maxCachedWords {
		clear(a.terms)
	}
	a.terms[string(word)] = term
	a.mu.Unlock()
	return term
}

// scan returns the span of the first word of input at or after i; start
// == end when there is none. A word is a run of letters, digits and
// combining marks, kept whole across an apostrophe between letters
// ("don't", "John's", which the possessive filter wants) and across a
// period or comma between digits ("3.14", "1,000"); each Han, Hiragana or
// Katakana character is a word by itself.
//
// It stands in for bleve's Unicode (UAX #29) tokenizer, which runs at
// about 10 MB/s and made word splitting most of the cost of analysis; this
// one is some ten times faster. It also differs where UAX #29 suits prose
// over code: a period, colon or underscore between letters splits
// ("fmt.Println", "describe_yourself" are two words each).
func scan(input []byte, i int) (start, end int) {
	for i < len(input) {
		r, size := decodeRune(input[i:])
		if ideographic(r) {
			return i, i + size
		}
		if wordRune(r) {
			break
		}
		i += size
	}
	start = i
	for i < len(input) {
		r, size := decodeRune(input[i:])
		if wordRune(r) && !ideographic(r) {
			i += size
			continue
		}
		if n := joiner(input, i, r, size); n > 0 {
			i += n
			continue
		}
		break
	}
	return start, i
}

// joiner returns the size of r, at input[i:], when it joins the word
// before it to the word after it, else 0.
func joiner(input []byte, i int, r rune, size int) int {
	var joins func(rune) bool
	switch r {
	case '\'', '\u2019', '\uff07':
		joins = unicode.IsLetter
	case '.', ',':
		joins = unicode.IsDigit
	default:
		return 0
	}
	before, _ := utf8.DecodeLastRune(input[:i])
	after, _ := decodeRune(input[i+size:])
	if joins(before) && joins(after) && !ideographic(after) {
		return size
	}
	return 0
}

func decodeRune(b []byte) (rune, int) {
	if len(b) > 0 && b[0] < utf8.RuneSelf {
		return rune(b[0]), 1
	}
	return utf8.DecodeRune(b)
}

func wordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

func ideographic(r rune) bool {
	return r >= 0x2e80 && (unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r))
}
