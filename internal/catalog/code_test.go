package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCode(t *testing.T) {
	tests := map[string]struct {
		name, src string
		want      []unitSummary
	}{
		"go": {"x.go", "package x\n\nimport \"fmt\"\n\n// F prints.\n// Twice.\nfunc F() {\n\tfmt.Println()\n\n\tfmt.Println()\n}\n\ntype T struct {\n\tA int\n}\n\nfunc (T) M() {}\n",
			[]unitSummary{
				{UnitBlock, "package x\n\nimport \"fmt\"", 0},
				{UnitDefinition, "// F prints.\n// Twice.\nfunc F() {\n\tfmt.Println()\n\n\tfmt.Println()\n}", 0},
				{UnitDefinition, "type T struct {\n\tA int\n}", 0},
				{UnitDefinition, "func (T) M() {}", 0},
			}},
		"python": {"x.py", "import os\n\n@cache\n# doc\ndef f(x):\n    def g():\n        pass\n\n    return x\n\nclass C:\n    def m(self): pass\n\nasync def h(): pass\n",
			[]unitSummary{
				{UnitBlock, "import os", 0},
				{UnitDefinition, "@cache\n# doc\ndef f(x):\n    def g():\n        pass\n\n    return x", 0},
				{UnitDefinition, "class C:\n    def m(self): pass", 0},
				{UnitDefinition, "async def h(): pass", 0},
			}},
		"starlark": {"BUILD", "load(\"x\")\ndef rule(): pass\n", []unitSummary{
			{UnitBlock, "load(\"x\")", 0}, {UnitDefinition, "def rule(): pass", 0},
		}},
		"other": {"x.js", "const a = 1;\nconst b = 2;\n\n\nfunction f() {\n  return a; // e.g. this\n}\n", []unitSummary{
			{UnitBlock, "const a = 1;\nconst b = 2;", 0},
			{UnitBlock, "function f() {\n  return a; // e.g. this\n}", 0},
		}},
		"go without definitions": {"x.go", "package x\n\nvar v = 1\n", []unitSummary{{UnitBlock, "package x\n\nvar v = 1", 0}}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			doc := parse(t, tt.name, tt.src, KindAuto)
			if diff := cmp.Diff(summarize(doc.Units), tt.want); diff != "" {
				t.Errorf("units (-got +want):\n%s", diff)
			}
		})
	}
}
