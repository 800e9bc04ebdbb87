package catalog

import (
	"strings"
	"sync"
	"unicode"

	"github.com/neurosnap/sentences"
	"github.com/neurosnap/sentences/english"
)

// punkt is the English punkt tokenizer, loaded once (its model is 400 kB
// of JSON). Tokenize only reads the model, so it is safe concurrently.
var punkt = sync.OnceValues(func() (*sentences.DefaultSentenceTokenizer, error) {
	return english.NewSentenceTokenizer(nil)
})

// prose splits text[lo:hi] into paragraphs at blank lines and each
// paragraph into sentences, with spans into text.
func prose(text string, lo, hi, section int) []Unit {
	var units []Unit
	for _, p := range paragraphs(text, lo, hi) {
		first := true
		for _, s := range splitSentences(text[p.Start:p.End]) {
			units = append(units, Unit{
				Kind:    UnitSentence,
				Text:    text[p.Start+s.Start : p.Start+s.End],
				Span:    Span{p.Start + s.Start, p.Start + s.End},
				Section: section,
				Block:   first,
			})
			first = false
		}
	}
	return units
}

// splitSentences gives the spans of the sentences of a paragraph, trimmed
// of white space, in order and within the paragraph.
func splitSentences(para string) []Span {
	tok, err := punkt()
	if err != nil {
		// The model is compiled into the binary: failing to load it is
		// a broken build.
		panic("catalog: load English punkt model: " + err.Error())
	}
	var spans []Span
	last := 0
	for _, s := range tok.Tokenize(para) {
		// Defend against a tokenizer position out of order or range.
		end := min(max(s.End, last), len(para))
		if sp, ok := trim(para, last, end); ok {
			spans = append(spans, sp)
		}
		last = end
	}
	if sp, ok := trim(para, last, len(para)); ok {
		spans = append(spans, sp)
	}
	return spans
}

// trim narrows text[lo:hi] to exclude surrounding white space; ok is false
// if nothing remains.
func trim(text string, lo, hi int) (Span, bool) {
	s := text[lo:hi]
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	lo += len(s) - len(t)
	t = strings.TrimRightFunc(t, unicode.IsSpace)
	hi = lo + len(t)
	return Span{lo, hi}, hi > lo
}

// line is one line of text: [Start, End) without its newline; Next is the
// offset of the following line.
type line struct {
	Start, End, Next int
}

// lines splits text[lo:hi] into lines.
func lines(text string, lo, hi int) []line {
	var ls []line
	for lo < hi {
		end := hi
		next := hi
		if i := strings.IndexByte(text[lo:hi], '\n'); i >= 0 {
			end, next = lo+i, lo+i+1
		}
		ls = append(ls, line{lo, end, next})
		lo = next
	}
	return ls
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// paragraphs gives the runs of non-blank lines of text[lo:hi].
func paragraphs(text string, lo, hi int) []Span {
	var ps []Span
	start := -1
	end := 0
	for _, l := range lines(text, lo, hi) {
		if blank(text[l.Start:l.End]) {
			if start >= 0 {
				ps = append(ps, Span{start, end})
				start = -1
			}
			continue
		}
		if start < 0 {
			start = l.Start
		}
		end = l.End
	}
	if start >= 0 {
		ps = append(ps, Span{start, end})
	}
	return ps
}
