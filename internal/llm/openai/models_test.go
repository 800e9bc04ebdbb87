package openai

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestLlamaServerAdapters(t *testing.T) {
	model := llmtest.Texts("plain", "as alice", "as both", "global")
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: model, Adapters: []string{"alice.gguf", "bob.gguf"}})
	c := newClient(t, fake.URL, nil)
	ctx := t.Context()

	list, err := c.LoRAAdapters(ctx)
	if err != nil {
		t.Fatalf("LoRAAdapters: %v", err)
	}
	want := []llm.AdapterInfo{{ID: 0, Path: "alice.gguf"}, {ID: 1, Path: "bob.gguf"}}
	if diff := cmp.Diff(list, want); diff != "" {
		t.Errorf("adapters (-got +want):\n%s", diff)
	}

	selections := [][]llm.LoRA{nil, {{ID: 0, Scale: 1}}, {{ID: 0, Scale: 0.5}, {ID: 1, Scale: 0.25}}}
	for _, lora := range selections {
		req := userChat("any", "hi")
		req.LoRA = lora
		if _, err := c.Chat(ctx, req); err != nil {
			t.Fatalf("Chat with %v: %v", lora, err)
		}
	}
	// Global scales apply to a request that selects none.
	if err := c.SetLoRAScales(ctx, []llm.LoRA{{ID: 1, Scale: 0.75}}); err != nil {
		t.Fatalf("SetLoRAScales: %v", err)
	}
	if _, err := c.Chat(ctx, userChat("any", "hi")); err != nil {
		t.Fatal(err)
	}
	wantUsed := append(selections, []llm.LoRA{{ID: 1, Scale: 0.75}})
	if diff := cmp.Diff(fake.LoRAUsed(), wantUsed); diff != "" {
		t.Errorf("adapters used (-got +want):\n%s", diff)
	}
	for i, call := range model.Calls() {
		if diff := cmp.Diff(call.LoRA, wantUsed[i]); diff != "" {
			t.Errorf("chat %d: adapters the model saw (-got +want):\n%s", i, diff)
		}
	}
	list, err = c.LoRAAdapters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want[1].Scale = 0.75
	if diff := cmp.Diff(list, want); diff != "" {
		t.Errorf("adapters after SetLoRAScales (-got +want):\n%s", diff)
	}

	req := userChat("any", "hi")
	req.LoRA = []llm.LoRA{{ID: 2, Scale: 1}}
	_, err = c.Chat(ctx, req)
	if api := asAPIError(t, err); api.Status != http.StatusBadRequest || api.Message != "invalid adapter id" {
		t.Errorf("unknown adapter: got %+v, want 400 invalid adapter id", api)
	}
	if err := c.SetLoRAScales(ctx, []llm.LoRA{{ID: 7, Scale: 1}}); asAPIError(t, err).Status != http.StatusBadRequest {
		t.Errorf("SetLoRAScales with an unknown id: got %v, want a 400", err)
	}
}

func TestLoRAAdaptersUnsupported(t *testing.T) {
	for _, flavor := range []llmtest.Flavor{llmtest.VLLM, llmtest.Generic} {
		fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: flavor})
		c := newClient(t, fake.URL, nil)
		if _, err := c.LoRAAdapters(t.Context()); !errors.Is(err, llm.ErrUnsupported) {
			t.Errorf("%v: LoRAAdapters: got %v, want llm.ErrUnsupported", flavor, err)
		}
		if err := c.SetLoRAScales(t.Context(), nil); !errors.Is(err, llm.ErrUnsupported) {
			t.Errorf("%v: SetLoRAScales: got %v, want llm.ErrUnsupported", flavor, err)
		}
	}
}

// peftDir makes a directory that looks like a PEFT adapter.
func peftDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"adapter_config.json":       `{"peft_type":"LORA","r":8,"lora_alpha":16}`,
		"adapter_model.safetensors": "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVLLMAdapters(t *testing.T) {
	model := llmtest.Texts("from base", "from alice", "from bob")
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{
		Responder: model, Flavor: llmtest.VLLM, Models: []string{"tiny"},
		Adapters: []string{"alice=/adapters/alice"}, RuntimeLoRA: true,
	})
	c := newClient(t, fake.URL, nil)
	ctx := t.Context()
	bob := peftDir(t)

	if err := c.LoadLoRA(ctx, "bob", bob); err != nil {
		t.Fatalf("LoadLoRA: %v", err)
	}
	if diff := cmp.Diff(fake.Loaded(), []string{"bob"}); diff != "" {
		t.Errorf("loaded (-got +want):\n%s", diff)
	}
	models, err := c.Models(ctx)
	if err != nil {
		t.Fatalf("Models: %v", err)
	}
	wantModels := []llm.ModelInfo{
		{ID: "tiny", OwnedBy: "vllm", Root: "tiny"},
		{ID: "alice", OwnedBy: "vllm", Parent: "tiny", Root: "/adapters/alice"},
		{ID: "bob", OwnedBy: "vllm", Parent: "tiny", Root: bob},
	}
	if diff := cmp.Diff(models, wantModels); diff != "" {
		t.Errorf("models (-got +want):\n%s", diff)
	}

	// An adapter is chosen by naming it as the model.
	for _, name := range []string{"tiny", "alice", "bob"} {
		resp, err := c.Chat(ctx, userChat(name, "hi"))
		if err != nil {
			t.Fatalf("Chat with %s: %v", name, err)
		}
		if resp.Model != name {
			t.Errorf("answer from model %q, want %q", resp.Model, name)
		}
	}
	if diff := cmp.Diff(fake.ModelsUsed(), []string{"tiny", "alice", "bob"}); diff != "" {
		t.Errorf("models used (-got +want):\n%s", diff)
	}

	// Refusals are the server's errors, not a missing endpoint.
	refusals := []struct {
		name   string
		err    error
		status int
		typ    string
	}{
		{"load twice", c.LoadLoRA(ctx, "bob", bob), http.StatusBadRequest, "InvalidUserInput"},
		{"load a missing path", c.LoadLoRA(ctx, "carol", filepath.Join(t.TempDir(), "nope")), http.StatusNotFound, "NotFoundError"},
		{"load a directory without adapter_config.json", c.LoadLoRA(ctx, "dave", t.TempDir()), http.StatusNotFound, "NotFoundError"},
	}
	if err := c.UnloadLoRA(ctx, "bob"); err != nil {
		t.Fatalf("UnloadLoRA: %v", err)
	}
	refusals = append(refusals, struct {
		name   string
		err    error
		status int
		typ    string
	}{"unload twice", c.UnloadLoRA(ctx, "bob"), http.StatusNotFound, "NotFoundError"})
	for _, r := range refusals {
		if errors.Is(r.err, llm.ErrUnsupported) {
			t.Errorf("%s: %v wraps llm.ErrUnsupported", r.name, r.err)
		}
		if api := asAPIError(t, r.err); api.Status != r.status || api.Type != r.typ {
			t.Errorf("%s: got %d %s, want %d %s", r.name, api.Status, api.Type, r.status, r.typ)
		}
	}
	if len(fake.Loaded()) != 0 {
		t.Errorf("loaded after unload: %v", fake.Loaded())
	}
	_, err = c.Chat(ctx, userChat("bob", "hi"))
	if api := asAPIError(t, err); api.Status != http.StatusNotFound {
		t.Errorf("chat with an unloaded adapter: got %v, want a 404", err)
	}
	for _, r := range fake.Requests() {
		if r.Path == "/v1/load_lora_adapter" && !strings.Contains(string(r.Body), `"lora_name"`) {
			t.Errorf("load request body %s lacks lora_name", r.Body)
		}
	}
}

func TestVLLMRuntimeLoRAOff(t *testing.T) {
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.VLLM, Models: []string{"tiny"}})
	c := newClient(t, fake.URL, nil)
	err := c.LoadLoRA(t.Context(), "bob", peftDir(t))
	if !errors.Is(err, llm.ErrUnsupported) {
		t.Fatalf("got %v, want llm.ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True") {
		t.Errorf("error %q does not say how to turn runtime loading on", err)
	}
	if err := c.UnloadLoRA(t.Context(), "bob"); !errors.Is(err, llm.ErrUnsupported) {
		t.Errorf("UnloadLoRA: got %v, want llm.ErrUnsupported", err)
	}
	if err := c.LoadLoRA(t.Context(), "", "x"); err == nil {
		t.Error("LoadLoRA without a name succeeded")
	}
}

func TestModels(t *testing.T) {
	for _, tt := range []struct {
		flavor llmtest.Flavor
		want   []llm.ModelInfo
	}{
		{llmtest.LlamaServer, []llm.ModelInfo{{ID: "tiny", OwnedBy: "llamacpp"}}},
		{llmtest.Generic, []llm.ModelInfo{{ID: "tiny", OwnedBy: "system"}}},
	} {
		fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: tt.flavor, Models: []string{"tiny"}})
		got, err := newClient(t, fake.URL, nil).Models(t.Context())
		if err != nil {
			t.Fatalf("%v: Models: %v", tt.flavor, err)
		}
		if diff := cmp.Diff(got, tt.want); diff != "" {
			t.Errorf("%v: models (-got +want):\n%s", tt.flavor, diff)
		}
	}
}
