package mind

import (
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/ollama"
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

// TestNoDefaultModelChosen: through an OpenAI-compatible endpoint that
// lists several models (Ollama's /v1 lists an adapter model first), no
// default is guessed: a persona without a model is refused with the
// list to pick from, in its tier report and when asked. A given model
// is used; a server listing one base model needs none.
func TestNoDefaultModelChosen(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("hi"), Models: []string{"tiny"}})
	client, err := ollama.New(fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Create(ctx, &llm.CreateRequest{Model: "batos-robin-0123456789ab", From: "tiny"}); err != nil {
		t.Fatal(err)
	}
	server := connectTo(t, fake.URL, APIOpenAI, "")
	if server.API != APIOpenAI || server.DefaultModel != "" || len(server.Offered) != 2 || server.Offered[0] != "batos-robin-0123456789ab:latest" {
		t.Fatalf("server %+v: want no default, and both models offered with the adapter first", server)
	}
	m := New(db, server, nil)
	_, err = m.Ask(ctx, Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "plan"}}})
	if !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "batos-robin-0123456789ab:latest, tiny:latest") || !strings.Contains(err.Error(), "give the persona one of them") || strings.Contains(err.Error(), "batos ") {
		t.Errorf("Ask: %v, want ErrNoModel listing the models to pick from", err)
	}
	if pl := tierOf(t, m.Manager(), loadPersona(t, db, "BRICK")); !strings.Contains(pl.Problem, "tiny:latest") {
		t.Errorf("tier report %+v, want the problem with the list", pl)
	}
	if s := connectTo(t, fake.URL, APIOpenAI, "tiny:latest"); s.DefaultModel != "tiny:latest" || len(s.Offered) != 0 {
		t.Errorf("given model: %+v, want it as the default", s)
	}
	one := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Models: []string{"gpt"}})
	if s := connectTo(t, one.URL, APIOpenAI, ""); s.DefaultModel != "gpt" {
		t.Errorf("one model listed: default %q, want gpt", s.DefaultModel)
	}
}
