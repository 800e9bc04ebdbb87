package catalog

import "strings"

// markdown splits Markdown into headings, fenced code blocks and the
// sentences between them. A heading (ATX "# Title" or a setext underline)
// starts a new section. Indented code, lists and tables are split as prose.
func markdown(text string) []Unit {
	var units []Unit
	section := 0
	proseStart := -1 // start of prose not yet split
	paraStart := -1  // start of the current paragraph, for setext headings
	flush := func(end int) {
		if proseStart >= 0 && end > proseStart {
			units = append(units, prose(text, proseStart, end, section)...)
		}
		proseStart = -1
	}
	ls := lines(text, 0, len(text))
	for i := 0; i < len(ls); i++ {
		l := ls[i]
		s := text[l.Start:l.End]
		switch {
		case fenceOf(s) != "":
			flush(l.Start)
			paraStart = -1
			j := closingFence(text, ls, i)
			end := ls[len(ls)-1].End
			if j < len(ls) {
				end = ls[j].End
			}
			if sp, ok := trim(text, l.Start, end); ok {
				units = append(units, Unit{Kind: UnitCodeBlock, Text: text[sp.Start:sp.End], Span: sp, Section: section, Block: true})
			}
			i = j
		case isATX(s):
			flush(l.Start)
			paraStart = -1
			section++
			sp, _ := trim(text, l.Start, l.End)
			units = append(units, Unit{Kind: UnitHeading, Text: text[sp.Start:sp.End], Span: sp, Section: section, Block: true})
		case paraStart >= 0 && isSetextUnderline(s):
			flush(paraStart)
			section++
			sp, _ := trim(text, paraStart, ls[i-1].End)
			units = append(units, Unit{Kind: UnitHeading, Text: text[sp.Start:sp.End], Span: sp, Section: section, Block: true})
			paraStart = -1
		case blank(s):
			paraStart = -1
		default:
			if proseStart < 0 {
				proseStart = l.Start
			}
			if paraStart < 0 {
				paraStart = l.Start
			}
		}
	}
	flush(len(text))
	return units
}

// indent strips up to three leading spaces; ok is false for four or more,
// which CommonMark reads as indented code.
func indent(s string) (string, bool) {
	t := strings.TrimLeft(s, " ")
	return t, len(s)-len(t) <= 3
}

// fenceOf is the fence that line s opens ("```" or "~~~" and longer), or "".
func fenceOf(s string) string {
	t, ok := indent(s)
	if !ok || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return ""
	}
	n := len(t) - len(strings.TrimLeft(t, t[:1]))
	if n < 3 || (t[0] == '`' && strings.Contains(t[n:], "`")) {
		return ""
	}
	return t[:n]
}

// closingFence is the index of the line that closes the fence opened at
// line i, or len(ls) if the block runs to the end of the document.
func closingFence(text string, ls []line, i int) int {
	open := fenceOf(text[ls[i].Start:ls[i].End])
	for j := i + 1; j < len(ls); j++ {
		t, ok := indent(text[ls[j].Start:ls[j].End])
		t = strings.TrimRight(t, " \t\r")
		if ok && strings.HasPrefix(t, open) && strings.Trim(t, open[:1]) == "" {
			return j
		}
	}
	return len(ls)
}

// isATX reports whether s is an ATX heading: one to six '#' then a space
// or the end of the line.
func isATX(s string) bool {
	t, ok := indent(s)
	if !ok {
		return false
	}
	n := len(t) - len(strings.TrimLeft(t, "#"))
	return n >= 1 && n <= 6 && (len(t) == n || t[n] == ' ' || t[n] == '\t' || t[n] == '\r')
}

// isSetextUnderline reports whether s underlines the paragraph above it
// into a heading: a run of '=' or of '-'.
func isSetextUnderline(s string) bool {
	t, ok := indent(s)
	t = strings.TrimRight(t, " \t\r")
	return ok && t != "" && (strings.Trim(t, "=") == "" || strings.Trim(t, "-") == "")
}
