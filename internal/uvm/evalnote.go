package uvm

import (
	"fmt"
	"strings"
	"unicode"
)

// evalNoteMax bounds the code an eval's transaction note quotes, in
// characters.
const evalNoteMax = 60

// evalNote is the note of an eval's transaction, which batos log shows:
// "eval: " and the code's first line that is neither blank nor only a
// comment (the first non-blank line when every line is a comment), cut to
// evalNoteMax characters, with the count of the other lines. Control
// characters become spaces, so the note stays one line.
func evalNote(code string) string {
	lines := strings.Split(strings.TrimSpace(code), "\n")
	first := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(lines[firstCodeLine(lines)]))
	if first == "" {
		return "eval"
	}
	if r := []rune(first); len(r) > evalNoteMax {
		first = string(r[:evalNoteMax-1]) + "…"
	}
	note := "eval: " + first
	if n := len(lines) - 1; n == 1 {
		note += " (+1 line)"
	} else if n > 1 {
		note += fmt.Sprintf(" (+%d lines)", n)
	}
	return note
}

// firstCodeLine is the index of the first of lines that is neither blank
// nor only a comment, or 0 when there is none.
func firstCodeLine(lines []string) int {
	for i, line := range lines {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return i
		}
	}
	return 0
}
