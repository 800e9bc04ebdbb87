package mind

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"batos/internal/llm/llmtest"
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

// TestProbeKeepsTheGivenAPI: "-llm-api vllm" without a URL probes the
// default ports and keeps calling the server vLLM. Before, it became
// llama-server because of the port it answered on.
func TestProbeKeepsTheGivenAPI(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.VLLM, Models: []string{"base"}})
	saved := DefaultEndpoints
	t.Cleanup(func() { DefaultEndpoints = saved })
	DefaultEndpoints = []Endpoint{{APIOllama, "http://127.0.0.1:1"}, {APILlamaServer, fake.URL}}
	s, err := Connect(t.Context(), ServerConfig{API: APIVLLM})
	if err != nil {
		t.Fatal(err)
	}
	if s.API != APIVLLM {
		t.Errorf("API %s, want vllm", s.API)
	}
}
