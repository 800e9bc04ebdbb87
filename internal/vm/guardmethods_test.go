package vm

import (
	"strings"
	"testing"
	"unicode"

	"go.starlark.net/starlark"
)

// TestMethodSizesBoundResults: the sizes the guards reserve for split and
// the case changes are at least what the methods make, for Unicode
// spaces and bytes that are not UTF-8 too; for case changes, exactly.
func TestMethodSizesBoundResults(t *testing.T) {
	inputs := map[string]string{
		"ascii":     "Hello World\tand\nmore",
		"nbsp":      strings.Repeat("a\u00a0", 1000),
		"em spaces": strings.Repeat("b\u2003\u3000", 1000),
		"invalid":   strings.Repeat("\xff", 3000),
		"mixed":     strings.Repeat("ǆ ß \xc3 ﬁ İ", 500),
	}
	thread := &starlark.Thread{Name: "sizes"}
	for name, s := range inputs {
		recv := starlark.String(s)
		pieces, _, _, _ := sizeSplit(thread, recv, nil, nil)
		if got := uint64(len(strings.FieldsFunc(s, unicode.IsSpace))); pieces < got*boxedSize {
			t.Errorf("%s: split sized %d bytes, for %d pieces", name, pieces, got)
		}
		for _, method := range []string{"lower", "upper", "title", "capitalize"} {
			m, _ := recv.Attr(method)
			v, err := starlark.Call(thread, m, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, _, _, _ := sizeCase(thread, recv, nil, nil)
			if got := uint64(len(v.(starlark.String))); n < got {
				t.Errorf("%s: %s sized %d bytes, makes %d", name, method, n, got)
			}
		}
	}
	n, _, _, _ := sizeCase(thread, starlark.String(inputs["invalid"]), nil, nil)
	if n != 9000 {
		t.Errorf("3000 invalid bytes sized %d, want 9000", n)
	}
}
