package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// ErrBinary is returned by Parse for content that is not text: it holds a
// NUL byte or too many bytes that are neither text nor UTF-8.
var ErrBinary = errors.New("catalog: binary content")

// binaryShare is the share of control and invalid UTF-8 bytes above which
// content is binary rather than text with a few bad bytes to repair.
const binaryShare = 0.10

// Span is a half-open range [Start, End) of byte offsets into a document's
// original bytes.
type Span struct {
	Start, End int
}

// Len is the number of bytes in the span.
func (s Span) Len() int { return s.End - s.Start }

// Unit is the smallest piece of a document that chunking keeps whole
// (unless it alone exceeds a chunk's maximum): a sentence, a heading, a
// fenced code block, a definition or a block of code.
type Unit struct {
	Kind UnitKind
	// Text is the unit's text without surrounding white space; it equals
	// the source bytes at Span, except that invalid UTF-8 is repaired.
	Text string
	Span Span
	// Section numbers the Markdown sections: 0 before the first heading,
	// then one more at each heading. Other kinds have one section, 0.
	Section int
	// Block reports that the unit begins a paragraph or block in the
	// source (a sentence that follows another in a paragraph does not).
	Block bool
}

// Document is a parsed document.
type Document struct {
	Kind  Kind
	Units []Unit
	// InvalidAt is the byte offset of the first invalid UTF-8 byte, which
	// like every other invalid byte was replaced by U+FFFD in the units'
	// text; -1 when the content was valid UTF-8.
	InvalidAt int
	// Invalid counts the invalid bytes that were replaced.
	Invalid int
}

// Parse splits the content of the document called name into units. Kind
// KindAuto takes the kind from the name (KindOf); name also picks the
// language of source code. It returns an error wrapping ErrBinary, with the
// reason and offset, for content that is not text. Empty content gives a
// document without units. Parse may be called concurrently.
func Parse(name string, data []byte, kind Kind) (*Document, error) {
	if err := checkText(data); err != nil {
		return nil, err
	}
	if kind == KindAuto {
		kind = KindOf(name)
	}
	text, fix := repair(data)
	var units []Unit
	switch kind {
	case KindText:
		units = prose(text, 0, len(text), 0)
	case KindMarkdown:
		units = markdown(text)
	case KindCode:
		units = code(text, langOf(name))
	default:
		return nil, fmt.Errorf("catalog: parse %s: unknown kind %v", name, kind)
	}
	for i := range units {
		units[i].Span = Span{fix.orig(units[i].Span.Start), fix.orig(units[i].Span.End)}
	}
	return &Document{Kind: kind, Units: units, InvalidAt: fix.first, Invalid: len(fix.at)}, nil
}

// checkText refuses binary content: a NUL byte anywhere, or more than
// binaryShare of the first 8 KiB being control bytes or invalid UTF-8.
func checkText(data []byte) error {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return fmt.Errorf("%w: NUL byte at offset %d", ErrBinary, i)
	}
	sample := data[:min(len(data), 8<<10)]
	bad := 0
	for i := 0; i < len(sample); {
		r, n := utf8.DecodeRune(sample[i:])
		if r == utf8.RuneError && n == 1 && len(sample)-i >= utf8.UTFMax {
			bad++ // a rune cut by the end of the sample is not bad
		} else if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' && r != '\v' {
			bad++
		}
		i += n
	}
	if len(sample) > 0 && float64(bad)/float64(len(sample)) > binaryShare {
		return fmt.Errorf("%w: %d of the first %d bytes are control bytes or invalid UTF-8", ErrBinary, bad, len(sample))
	}
	return nil
}

// offsets maps offsets in repaired text back to the original bytes.
type offsets struct {
	at    []int // offsets in the repaired text of each U+FFFD put in
	first int   // original offset of the first invalid byte, or -1
}

// orig is the original offset of offset p in the repaired text. p is never
// inside a replacement, since units begin and end on rune boundaries.
func (o offsets) orig(p int) int {
	k := sort.SearchInts(o.at, p) // replacements before p
	return p - k*(len(string(utf8.RuneError))-1)
}

// repair replaces each invalid UTF-8 byte with U+FFFD.
func repair(data []byte) (string, offsets) {
	if utf8.Valid(data) {
		return string(data), offsets{first: -1}
	}
	o := offsets{first: -1}
	var b strings.Builder
	b.Grow(len(data) + 64)
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			if o.first < 0 {
				o.first = i
			}
			o.at = append(o.at, b.Len())
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(data[i : i+n])
		}
		i += n
	}
	return b.String(), o
}
