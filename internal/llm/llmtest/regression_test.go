package llmtest

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"batos/internal/llm"
)

// waitServing polls url until the fake answers it again after a restart.
func waitServing(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not back: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOllamaRestartUnloadsModels: a restarted Ollama keeps its models and
// blobs on disk but has nothing loaded. Before, the fake's /api/ps still
// listed the models loaded before the restart.
func TestOllamaRestartUnloadsModels(t *testing.T) {
	o := NewOllama(t, &OllamaOptions{Responder: Texts("hi"), Models: []string{"tiny"}, RestartDelay: time.Millisecond})
	if status, _, body := do(t, http.MethodPost, o.URL+"/api/chat", `{"model":"tiny","stream":false,"messages":[{"role":"user","content":"x"}]}`); status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, body)
	}
	if _, _, body := do(t, http.MethodGet, o.URL+"/api/ps", ""); !strings.Contains(body, "tiny") {
		t.Fatalf("ps before the restart: %s, want tiny loaded", body)
	}
	o.Restart(t)
	waitServing(t, o.URL+"/api/version")
	if _, _, body := do(t, http.MethodGet, o.URL+"/api/ps", ""); strings.Contains(body, "tiny") {
		t.Errorf("ps after the restart: %s, want nothing loaded", body)
	}
	if _, _, body := do(t, http.MethodGet, o.URL+"/api/tags", ""); !strings.Contains(body, "tiny") {
		t.Errorf("tags after the restart: %s, want tiny still there", body)
	}
}

// TestLlamaServerRestartResetsScales: global adapter scales set with POST
// /lora-adapters do not outlive a llama-server restart.
func TestLlamaServerRestartResetsScales(t *testing.T) {
	fake := NewOpenAI(t, &OpenAIOptions{Responder: Texts("a"), Flavor: LlamaServer, Adapters: []string{"a.gguf"}, RestartDelay: time.Millisecond})
	if status, _, body := post(t, fake.URL+"/lora-adapters", `[{"id":0,"scale":1}]`); status != http.StatusOK {
		t.Fatalf("set scales: %d %s", status, body)
	}
	fake.Restart(t)
	waitServing(t, fake.URL+"/health")
	if status, _, body := post(t, fake.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`); status != http.StatusOK {
		t.Fatalf("chat: %d %s", status, body)
	}
	if used := fake.LoRAUsed(); len(used) != 1 || len(used[0]) != 0 {
		t.Errorf("adapters used after a restart %v, want none", used)
	}
}

func TestPersona(t *testing.T) {
	for _, c := range []struct {
		msgs []llm.Message
		want string
	}{
		{[]llm.Message{{Role: llm.RoleSystem, Content: "You are BRICK, the architect."}, {Role: llm.RoleUser, Content: "x"}}, "BRICK"},
		{[]llm.Message{{Role: llm.RoleSystem, Content: "You are ROBIN."}}, "ROBIN"},
		{[]llm.Message{{Role: llm.RoleSystem, Content: "You are BABS"}}, "BABS"},
		{[]llm.Message{{Role: llm.RoleUser, Content: "You are BRICK."}}, ""},
		{[]llm.Message{{Role: llm.RoleSystem, Content: "Be brief."}}, ""},
		{nil, ""},
	} {
		if got := Persona(&llm.ChatRequest{Messages: c.msgs}); got != c.want {
			t.Errorf("Persona(%v) = %q, want %q", c.msgs, got, c.want)
		}
	}
}
