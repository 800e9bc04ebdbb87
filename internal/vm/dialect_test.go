package vm_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"batos/internal/vm"
)

// lines hands out lines as a terminal would, then io.EOF; it counts the
// lines read.
type lines struct {
	in   []string
	read int
}

func (l *lines) readline() ([]byte, error) {
	if l.read == len(l.in) {
		return nil, io.EOF
	}
	l.read++
	return []byte(l.in[l.read-1] + "\n"), nil
}

// TestParseREPL: an input ends where the REPL must stop asking for
// lines: after one line for a simple statement, at an empty line after
// a compound one, top-level loops included (Eval's dialect runs them).
func TestParseREPL(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		read    int    // lines the input takes
		wantErr string // "" for none
	}{
		{"expression", []string{"1 + 2", "x"}, 1, ""},
		{"assignment", []string{"x = 1", "x = 2"}, 1, ""},
		{"def ends at an empty line", []string{"def f(x):", "    return x", "", "f(1)"}, 3, ""},
		{"top-level for", []string{"for i in range(3):", "    x = i", "", "y"}, 3, ""},
		{"top-level while", []string{"while False:", "    pass", ""}, 3, ""},
		{"if", []string{"if x:", "    y = 1", "else:", "    y = 2", ""}, 5, ""},
		{"open bracket continues", []string{"[1,", " 2]", "z"}, 2, ""},
		{"syntax error", []string{"x = = 1", "y"}, 1, "<input>:1:5"},
		{"end of input inside a def", []string{"def f():", "    return 1"}, 2, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lines{in: tt.in}
			err := vm.ParseREPL(l.readline)
			if l.read != tt.read {
				t.Errorf("read %d lines, want %d", l.read, tt.read)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
	if err := vm.ParseREPL(func() ([]byte, error) { return nil, io.EOF }); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("empty input: got %v, want a syntax error quoting EOF", err)
	}
}
