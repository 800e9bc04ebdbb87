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
		{"control characters", "a\tb\rc\x1b[2J", "eval: a b c [2J"},
	}
	for _, c := range cases {
		if got := evalNote(c.code); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
