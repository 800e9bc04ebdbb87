package fulltext

import (
	"math/bits"
	"slices"
	"unicode"
	"unicode/utf8"
)

// FragmentBytes is the most bytes a Hit.Fragment holds.
const FragmentBytes = 240

// A word is a word of a text and the query term it matches (-1: none).
type word struct {
	Span
	term int
}

// words splits text into its words, stop words included (they are word
// boundaries too), and marks those whose term is in terms (term → index).
func (ix *Index) words(text string, terms map[string]int) []word {
	// Analysis never changes a word's first letter (Porter rewrites
	// endings, the possessive filter drops one, and lower case is lower
	// case), so a word whose first letter starts no term, in ASCII where
	// lower-casing is plain, cannot match: most words, in a few lookups.
	var initials [utf8.RuneSelf]bool
	for t := range terms {
		if c := t[0]; c < utf8.RuneSelf {
			initials[c] = true
		}
	}
	skip := func(w []byte) bool {
		c := w[0]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c < utf8.RuneSelf && !initials[c]
	}
	ws := make([]word, 0, len(text)/6+1)
	ix.an.each([]byte(text), skip, func(start, end int, term []byte) {
		ws = append(ws, word{Span{start, end}, termIndex(terms, term)})
	})
	return ws
}

func termIndex(terms map[string]int, term []byte) int {
	if i, ok := terms[string(term)]; ok && term != nil {
		return i
	}
	return -1
}

// fragment cuts from text the passage of at most budget bytes that holds
// the most distinct matched words (then the most matches, then the
// earliest), with the matched words about centred, cut at word boundaries
// (ws, in order) and without surrounding space; it returns the passage
// and the spans of the matched words in it. A text with no match gives
// its beginning.
func fragment(text string, ws []word, budget int) (string, []Span) {
	if text == "" {
		return "", nil
	}
	var a, b int // the matched words to show, [a, b)
	if i, j := bestWindow(ws, budget); i < j {
		a, b = ws[i].Start, ws[j-1].End
	} else if len(ws) > 0 {
		a, b = ws[0].Start, ws[0].End
	}
	var lo, hi int
	switch {
	case len(ws) == 0:
		// Nothing but spaces and punctuation.
		lo, hi = 0, runeStart(text, budget)
	case b-a > budget:
		// One word longer than the budget: its head.
		lo, hi = a, runeStart(text, a+budget)
	default:
		slack := budget - (b - a)
		lo = max(0, a-slack/2)
		hi = min(len(text), lo+budget)
		lo = max(0, hi-budget)
		lo, hi = snap(text, ws, lo, hi, a, b, budget)
	}
	for lo < hi {
		r, size := utf8.DecodeRuneInString(text[lo:])
		if !unicode.IsSpace(r) {
			break
		}
		lo += size
	}
	for hi > lo {
		r, size := utf8.DecodeLastRuneInString(text[:hi])
		if !unicode.IsSpace(r) {
			break
		}
		hi -= size
	}
	var marks []Span
	for _, w := range ws {
		// A word over the budget is cut, and so is its mark.
		if w.term >= 0 && w.Start >= lo && w.Start < hi {
			marks = append(marks, Span{w.Start - lo, min(w.End, hi) - lo})
		}
	}
	return text[lo:hi], marks
}

// snap moves [lo, hi) inwards to word boundaries, keeping [a, b), then
// takes in punctuation that touches it (a closing period, an opening
// quote) while it fits the budget.
func snap(text string, ws []word, lo, hi, a, b, budget int) (int, int) {
	if lo > 0 {
		i, _ := slices.BinarySearchFunc(ws, lo, func(w word, start int) int { return w.Start - start })
		lo = min(ws[i].Start, a) // a is a word's start, so i is in range
	}
	if hi < len(text) {
		// The last word ending by hi; b is one.
		i, _ := slices.BinarySearchFunc(ws, hi+1, func(w word, end int) int { return w.End - end })
		hi = max(ws[i-1].End, b)
	}
	for hi < len(text) {
		r, size := utf8.DecodeRuneInString(text[hi:])
		if !unicode.IsPunct(r) || hi+size-lo > budget {
			break
		}
		hi += size
	}
	for lo > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:lo])
		if !unicode.IsPunct(r) || hi-(lo-size) > budget {
			break
		}
		lo -= size
	}
	return lo, hi
}

// bestWindow returns the run ws[i:j] of words, from a matched word to a
// matched word and spanning at most budget bytes, with the most distinct
// terms, then the most matches; i == j when nothing matched.
func bestWindow(ws []word, budget int) (int, int) {
	bi, bj, bestTerms, bestCount := 0, 0, 0, 0
	for i, w := range ws {
		if w.term < 0 {
			continue
		}
		var seen uint64 // a bit per term; there are at most maxQueryTerms
		count := 0
		for j := i; j < len(ws) && ws[j].End-w.Start <= budget; j++ {
			if ws[j].term < 0 {
				continue
			}
			seen |= 1 << (ws[j].term % 64)
			count++
			if n := bits.OnesCount64(seen); n > bestTerms || n == bestTerms && count > bestCount {
				bi, bj, bestTerms, bestCount = i, j+1, n, count
			}
		}
		if bj == bi { // the word alone is over the budget
			bi, bj, bestTerms, bestCount = i, i+1, 1, 1
		}
	}
	return bi, bj
}

// runeStart returns the largest rune boundary of s at or before i.
func runeStart(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return i
}
