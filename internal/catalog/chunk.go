package catalog

import (
	"batos/internal/llm"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// bytesPerToken is the rate the mind sizes prompts by (llm.BytesPerToken):
// English prose runs near four bytes a token and code near three, so
// three errs towards smaller chunks.
const bytesPerToken = llm.BytesPerToken

// Tokens estimates the tokens in s, as the mind does (llm.TextTokens).
func Tokens(s string) int { return llm.TextTokens(s) }

// Bounds are the sizes of chunks in tokens (estimated by Tokens).
type Bounds struct {
	// MinTokens is the size under which a chunk joins a neighbour in its
	// section when the two fit under MaxTokens; 0 means 32.
	MinTokens int
	// MaxTokens is the largest chunk; a unit over it is cut at word
	// boundaries. 0 means 256, which fits small embedding models.
	MaxTokens int
}

// DefaultBounds are the bounds that zero fields stand for.
var DefaultBounds = Bounds{MinTokens: 32, MaxTokens: 256}

// ErrBounds is returned by Bounds.Validate for bounds that cannot hold.
var ErrBounds = errors.New("catalog: invalid chunk bounds")

func (b Bounds) withDefaults() Bounds {
	if b.MinTokens == 0 {
		b.MinTokens = DefaultBounds.MinTokens
	}
	if b.MaxTokens == 0 {
		b.MaxTokens = DefaultBounds.MaxTokens
	}
	return b
}

// Validate checks that the bounds, with defaults for zero fields, are
// positive and that MinTokens is at most half of MaxTokens, so that two
// chunks under the minimum can always be joined.
func (b Bounds) Validate() error {
	d := b.withDefaults()
	if d.MinTokens < 1 || d.MaxTokens < 1 || 2*d.MinTokens > d.MaxTokens {
		return fmt.Errorf("%w: min %d and max %d tokens (want 1 <= 2*min <= max)", ErrBounds, b.MinTokens, b.MaxTokens)
	}
	return nil
}

// Chunk is a run of consecutive units of one section.
type Chunk struct {
	// Text is the units' text joined by a blank line before a unit that
	// begins a block and a space before a sentence within a paragraph.
	Text string
	// Span runs from the first unit's start to the last unit's end.
	Span    Span
	Section int
	// From and To are the indexes [From, To) of the units given to Group
	// that the chunk holds, whole or (for a unit cut to fit) in part.
	From, To int
	Tokens   int
}

// piece is a unit or, for a unit over the maximum, a part of one.
type piece struct {
	Unit
	index int // of the unit in Group's input
	brk   bool
}

// Group gathers units into chunks. Chunks follow the units' order, cover
// every unit, never hold units of two sections, and hold at most
// b.MaxTokens. A chunk starts at each unit whose index is in breaks (where
// a topic shifts) unless the chunk before it would hold less than
// b.MinTokens; a chunk under b.MinTokens joins the smaller neighbour in
// its section that can take it. Group panics if b is not valid (see
// Bounds.Validate).
func Group(units []Unit, breaks []int, b Bounds) []Chunk {
	if err := b.Validate(); err != nil {
		panic(err)
	}
	b = b.withDefaults()
	isBreak := make(map[int]bool, len(breaks))
	for _, i := range breaks {
		isBreak[i] = true
	}
	var ps []piece
	for i, u := range units {
		for k, part := range cut(u, b.MaxTokens*bytesPerToken) {
			ps = append(ps, piece{Unit: part, index: i, brk: k == 0 && isBreak[i]})
		}
	}
	var chunks []Chunk
	for lo := 0; lo < len(ps); {
		hi := lo + 1
		for hi < len(ps) && ps[hi].Section == ps[lo].Section {
			hi++
		}
		for _, g := range merge(ps, greedy(ps, lo, hi, b), b) {
			chunks = append(chunks, g.chunk(ps))
		}
		lo = hi
	}
	return chunks
}

// group is a run [from, to) of pieces and the bytes of their joined text.
type group struct {
	from, to, size int
}

func sep(p piece) string {
	if p.Block {
		return "\n\n"
	}
	return " "
}

// greedy fills chunks from pieces [lo, hi) of one section up to the
// maximum, starting a new one at a break once the current one is big
// enough.
func greedy(ps []piece, lo, hi int, b Bounds) []group {
	maxBytes := b.MaxTokens * bytesPerToken
	var gs []group
	cur := group{from: lo, to: lo + 1, size: len(ps[lo].Text)}
	for i := lo + 1; i < hi; i++ {
		grown := cur.size + len(sep(ps[i])) + len(ps[i].Text)
		if grown > maxBytes || (ps[i].brk && ceilDiv(cur.size, bytesPerToken) >= b.MinTokens) {
			gs = append(gs, cur)
			cur = group{from: i, to: i + 1, size: len(ps[i].Text)}
			continue
		}
		cur.to, cur.size = i+1, grown
	}
	return append(gs, cur)
}

// merge joins each group under the minimum to the smaller neighbour that
// can take it without passing the maximum.
func merge(ps []piece, gs []group, b Bounds) []group {
	maxBytes := b.MaxTokens * bytesPerToken
	joined := func(a, c group) group {
		return group{a.from, c.to, a.size + len(sep(ps[c.from])) + c.size}
	}
	for i := 0; i < len(gs); {
		if len(gs) == 1 || ceilDiv(gs[i].size, bytesPerToken) >= b.MinTokens {
			i++
			continue
		}
		left, right := -1, -1
		if i > 0 && joined(gs[i-1], gs[i]).size <= maxBytes {
			left = i - 1
		}
		if i+1 < len(gs) && joined(gs[i], gs[i+1]).size <= maxBytes {
			right = i + 1
		}
		if left >= 0 && right >= 0 && gs[right].size < gs[left].size {
			left = -1
		}
		switch {
		case left >= 0:
			gs[left] = joined(gs[left], gs[i])
			gs = append(gs[:i], gs[i+1:]...)
			i = left // the joined group may still be small
		case right >= 0:
			gs[i] = joined(gs[i], gs[right])
			gs = append(gs[:right], gs[right+1:]...)
		default:
			i++
		}
	}
	return gs
}

func (g group) chunk(ps []piece) Chunk {
	var b strings.Builder
	b.Grow(g.size)
	for i := g.from; i < g.to; i++ {
		if i > g.from {
			b.WriteString(sep(ps[i]))
		}
		b.WriteString(ps[i].Text)
	}
	first, last := ps[g.from], ps[g.to-1]
	return Chunk{
		Text:    b.String(),
		Span:    Span{first.Span.Start, last.Span.End},
		Section: first.Section,
		From:    first.index,
		To:      last.index + 1,
		Tokens:  Tokens(b.String()),
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// cut splits a unit longer than maxBytes into nearly equal parts of at
// most maxBytes, at white space (preferring a line break) when there is
// some in the second half of a part, else at a rune boundary.
func cut(u Unit, maxBytes int) []Unit {
	if len(u.Text) <= maxBytes {
		return []Unit{u}
	}
	n := ceilDiv(len(u.Text), maxBytes)
	target := ceilDiv(len(u.Text), n)
	var parts []Unit
	s := u.Text
	pos := 0
	for pos < len(s) {
		end := len(s)
		if len(s)-pos > maxBytes {
			end = cutAt(s, pos, min(pos+target, len(s)), pos+maxBytes)
		}
		if sp, ok := trim(s, pos, end); ok {
			p := u
			p.Text = s[sp.Start:sp.End]
			p.Span = Span{sourceAt(u, sp.Start), sourceAt(u, sp.End)}
			p.Block = u.Block && len(parts) == 0
			parts = append(parts, p)
		}
		pos = end
	}
	return parts
}

// cutAt picks where to end a part that starts at pos, aiming at target and
// ending by limit.
func cutAt(s string, pos, target, limit int) int {
	half := pos + (target-pos)/2
	if i := strings.LastIndexByte(s[half:target], '\n'); i >= 0 {
		return half + i + 1
	}
	if i := strings.LastIndexFunc(s[half:target], unicode.IsSpace); i >= 0 {
		return afterRune(s, half+i)
	}
	if i := strings.IndexFunc(s[target:limit], unicode.IsSpace); i >= 0 {
		return afterRune(s, target+i)
	}
	end := limit
	for end > pos+1 && !utf8.RuneStart(s[end]) {
		end--
	}
	return end
}

// afterRune is the offset after the rune at i.
func afterRune(s string, i int) int {
	_, n := utf8.DecodeRuneInString(s[i:])
	return i + n
}

// sourceAt maps offset off in u.Text to the source. Text is longer than
// its span by two bytes for each invalid byte repaired to U+FFFD; those are
// taken to be the first U+FFFDs in Text, which is exact unless the unit
// also holds a U+FFFD that was in the source.
func sourceAt(u Unit, off int) int {
	repaired := (len(u.Text) - u.Span.Len()) / (len(string(utf8.RuneError)) - 1)
	if repaired <= 0 {
		return u.Span.Start + off
	}
	n := min(strings.Count(u.Text[:off], string(utf8.RuneError)), repaired)
	return min(u.Span.Start+off-n*(len(string(utf8.RuneError))-1), u.Span.End)
}
