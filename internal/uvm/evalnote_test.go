package uvm

import (
	"strings"
	"testing"
)

func TestEvalNote(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct{ name, code, want string }{
		{"one line", "genesis.describe()", "eval: genesis.describe()"},
		{"several lines", "\n  x = 1\ny = 2\nx + y\n", "eval: x = 1 (+2 lines)"},
		{"two lines", "x = 1\nx", "eval: x = 1 (+1 line)"},
		{"blank", " \n\t", "eval"},
		{"long line", long, "eval: " + strings.Repeat("x", evalNoteMax-1) + "…"},
		{"comment first", "# set q\nq = 1", "eval: q = 1 (+1 line)"},
		{"comments and blanks first", "  # set q\n\n   # to one\r\n\tq = 1\nq", "eval: q = 1 (+4 lines)"},
		{"only comments", "# nothing\n# to do", "eval: # nothing (+1 line)"},
		{"hash in code", `x = "#"`, `eval: x = "#"`},
		{"long line after a comment", "# long\n" + long, "eval: " + strings.Repeat("x", evalNoteMax-1) + "… (+1 line)"},
		{"multibyte cut after a comment", "#\n" + strings.Repeat("é", 100), "eval: " + strings.Repeat("é", evalNoteMax-1) + "… (+1 line)"},
		{"control characters", "a\tb\rc\x1b[2J", "eval: a b c [2J"},
	}
	for _, c := range cases {
		if got := evalNote(c.code); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
