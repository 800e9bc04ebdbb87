package protocol

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryCommandListsItsFields: a command added without its list of
// fields would take any field, typos included.
func TestEveryCommandListsItsFields(t *testing.T) {
	for name := range commands {
		if _, ok := commandFields[name]; !ok {
			t.Errorf("command %s has no entry in commandFields", name)
		}
	}
	for name := range commandFields {
		if _, ok := commands[name]; !ok {
			t.Errorf("commandFields lists %s, which is no command", name)
		}
	}
}

// TestDocumentedFieldsAreAccepted: every argument the commands table of
// docs/protocol.md names is one its command accepts.
func TestDocumentedFieldsAreAccepted(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|([^|]*)\\|")
	// A name after "as" is prose ("as `log` gives"), and so is `self`.
	field := regexp.MustCompile("(as )?`([a-z_]+)`")
	rows := 0
	for line := range strings.Lines(string(doc)) {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		accepted, ok := commandFields[name]
		if _, isCommand := commands[name]; !ok || !isCommand {
			continue // another table's row (an error kind), or a command still to come
		}
		rows++
		for _, f := range field.FindAllStringSubmatch(m[2], -1) {
			if f[1] == "" && f[2] != "self" && !slices.Contains(accepted, f[2]) {
				t.Errorf("docs/protocol.md documents %q for %s, which refuses it (accepts %v)", f[2], name, accepted)
			}
		}
	}
	if rows < len(commands)*3/4 {
		t.Errorf("read %d rows of the commands table, want most of the %d commands", rows, len(commands))
	}
}
