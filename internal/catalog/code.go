package catalog

import "strings"

// code splits source code into units: for Go and Python (Starlark) the
// preamble and each top-level definition with the comments and decorators
// directly above it; for other languages the blocks between blank lines.
func code(text string, lg lang) []Unit {
	if lg == langOther {
		var units []Unit
		for _, p := range paragraphs(text, 0, len(text)) {
			units = append(units, Unit{Kind: UnitBlock, Text: text[p.Start:p.End], Span: p, Block: true})
		}
		return units
	}
	ls := lines(text, 0, len(text))
	var starts []int // line indexes where a unit starts
	for i, l := range ls {
		if !definesAt(text[l.Start:l.End], lg) {
			continue
		}
		j := i
		for j > 0 && attaches(text[ls[j-1].Start:ls[j-1].End], lg) {
			j--
		}
		if len(starts) == 0 || j > starts[len(starts)-1] {
			starts = append(starts, j)
		}
	}
	var units []Unit
	add := func(kind UnitKind, from, to int) { // lines [from, to)
		if sp, ok := trim(text, ls[from].Start, ls[to-1].End); ok {
			units = append(units, Unit{Kind: kind, Text: text[sp.Start:sp.End], Span: sp, Block: true})
		}
	}
	if len(starts) == 0 {
		if len(ls) > 0 {
			add(UnitBlock, 0, len(ls))
		}
		return units
	}
	if starts[0] > 0 {
		add(UnitBlock, 0, starts[0])
	}
	for k, s := range starts {
		end := len(ls)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		add(UnitDefinition, s, end)
	}
	return units
}

// definesAt reports whether line s starts a top-level definition.
func definesAt(s string, lg lang) bool {
	switch lg {
	case langGo:
		return strings.HasPrefix(s, "func ") || strings.HasPrefix(s, "func(") || strings.HasPrefix(s, "type ")
	case langPython:
		return strings.HasPrefix(s, "def ") || strings.HasPrefix(s, "class ") || strings.HasPrefix(s, "async def ")
	}
	return false
}

// attaches reports whether line s, directly above a definition, belongs to
// it: a comment, or in Python a decorator.
func attaches(s string, lg lang) bool {
	switch lg {
	case langGo:
		return strings.HasPrefix(s, "//")
	case langPython:
		return strings.HasPrefix(s, "#") || strings.HasPrefix(s, "@")
	}
	return false
}
