package main

import "testing"

// TestShownPath: a path with a control character is quoted, so that a
// file name cannot forge a line of output; others are shown as they are.
func TestShownPath(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/notes/rivers.txt":     "/tmp/notes/rivers.txt",
		"/tmp/caf\u00e9 notes.txt":  "/tmp/caf\u00e9 notes.txt",
		"/tmp/a\nadded /etc/passwd": `"/tmp/a\nadded /etc/passwd"`,
		"/tmp/bell\a":               `"/tmp/bell\a"`,
	} {
		if got := shownPath(in); got != want {
			t.Errorf("shownPath(%q) = %s, want %s", in, got, want)
		}
	}
}
