package vm

import (
	"errors"
	"strings"
	"testing"
)

// Source over the size limit is refused for its size alone, without a
// parse: 256 KiB of one-statement lines used to give a violation per
// line, a 16 MB error that a cycle then recorded and quoted to its model.
func TestAuditHostileHugeSourceNotParsed(t *testing.T) {
	src := strings.Repeat("x\n", 128<<10)
	err := Audit(src, AuditOptions{Selector: "foo", Args: 0})
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *AuditError", err)
	}
	if len(ae.Violations) != 2 || !strings.Contains(ae.Violations[0].Msg, "bytes") || !strings.Contains(ae.Violations[1].Msg, "lines") {
		t.Errorf("violations %v, want the size and the line count only", ae.Violations)
	}
}

// Within the size limit, a flood of violations (x;x;x... on one line) is
// listed up to maxViolations and the rest counted.
func TestAuditHostileViolationFloodCapped(t *testing.T) {
	src := "def foo(self):\n    return 1\n" + strings.Repeat("1;", 7000) + "\n"
	err := Audit(src, AuditOptions{Selector: "foo", Args: 0})
	var ae *AuditError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want an *AuditError", err)
	}
	if len(ae.Violations) != maxViolations+1 {
		t.Fatalf("%d violations listed, want %d", len(ae.Violations), maxViolations+1)
	}
	if last := ae.Violations[maxViolations].String(); last != "… and 6950 more violations" {
		t.Errorf("last violation %q", last)
	}
	if n := len(err.Error()); n > 10<<10 {
		t.Errorf("error of %d bytes", n)
	}
}

func TestAuditHostileIsSelector(t *testing.T) {
	for name, want := range map[string]bool{"foo": true, "_x": true, "None": true, "if": false, "lambda": false, "a b": false,
		"a # c": false, "a\n": false, "": false, "1a": false, "parent*": false, "x.y": false} {
		if got := IsSelector(name); got != want {
			t.Errorf("IsSelector(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAuditForbid(t *testing.T) {
	forbid := map[string]string{"method": "no code from code"}
	src := "def f(self, x):\n    m = method(x)\n    return m\n"
	err := Audit(src, AuditOptions{Selector: "f", Args: 1, Forbid: forbid})
	var ae *AuditError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "method may not be used here: no code from code") {
		t.Fatalf("Audit with method(): %v", err)
	}
	// A parameter or local of the same name is the code's own.
	own := "def f(self, method):\n    return method + 1\n"
	if err := Audit(own, AuditOptions{Selector: "f", Args: 1, Forbid: forbid}); err != nil {
		t.Errorf("a parameter named method: %v", err)
	}
	if err := Audit(src, AuditOptions{Selector: "f", Args: 1}); err != nil {
		t.Errorf("without Forbid: %v", err)
	}
}
