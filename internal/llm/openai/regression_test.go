package openai

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

// TestChatLoRAEmptyList: an empty, non-nil LoRA list is sent as
// "lora": [] (no adapter for this request), and nil sends no field
// (llama-server's global scales apply). Before, both sent nothing, so a
// persona without an adapter could not turn one off.
func TestChatLoRAEmptyList(t *testing.T) {
	for _, tt := range []struct {
		name string
		lora []llm.LoRA
		want any // the "lora" field, nil when absent
	}{
		{"nil", nil, nil},
		{"empty", []llm.LoRA{}, []any{}},
		{"one", []llm.LoRA{{ID: 1, Scale: 0.5}}, []any{map[string]any{"id": 1.0, "scale": 0.5}}},
	} {
		fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), Flavor: llmtest.LlamaServer, Adapters: []string{"a.gguf", "b.gguf"}})
		req := userChat("m", "hi")
		req.LoRA = tt.lora
		if _, err := newClient(t, fake.URL, nil).Chat(t.Context(), req); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(wireBody(t, fake)["lora"], tt.want); diff != "" {
			t.Errorf("%s: lora field (-got +want):\n%s", tt.name, diff)
		}
	}
}
