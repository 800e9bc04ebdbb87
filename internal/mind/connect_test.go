package mind

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyConnectNamesClients checks that connect.go is the one file of
// mind that imports a concrete client: the memory manager and the
// personas speak through llm's interfaces.
func TestOnlyConnectNamesClients(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "connect.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "batos/internal/llm/") {
				t.Errorf("%s imports %s: only connect.go may name a concrete client", f, path)
			}
		}
	}
}
