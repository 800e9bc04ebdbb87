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
// "eval: " and the code's first non-blank line, cut to evalNoteMax
// characters, with the count of the lines left out. Control characters
// become spaces, so the note stays one line.
func evalNote(code string) string {
	lines := strings.Split(strings.TrimSpace(code), "\n")
	first := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(lines[0]))
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
