package llmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// post sends body to the fake and returns the status, content type and
// body of the answer.
func post(t *testing.T, url, body string) (int, string, string) {
	t.Helper()
	return do(t, http.MethodPost, url, body)
}

func do(t *testing.T, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(data)
}

// dataLines returns the data of each event of a stream.
func dataLines(stream string) []string {
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(stream, "\n\n"), "\n\n") {
		out = append(out, strings.TrimPrefix(ev, "data: "))
	}
	return out
}

func TestOpenAIStreamWire(t *testing.T) {
	fake := NewOpenAI(t, &OpenAIOptions{Responder: Texts("hi there"), Flavor: VLLM, Models: []string{"tiny"}})
	status, ct, body := post(t, fake.URL+"/v1/chat/completions",
		`{"model":"tiny","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}`)
	if status != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("got %d %s, want 200 text/event-stream", status, ct)
	}
	events := dataLines(body)
	if len(events) != 5 || events[4] != "[DONE]" {
		t.Fatalf("events %q, want 2 text chunks, a finish, a usage, [DONE]", events)
	}
	type chunk struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Delta        map[string]string `json:"delta"`
			FinishReason *string           `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	var got []chunk
	for _, ev := range events[:4] {
		var c chunk
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		if c.Object != "chat.completion.chunk" || c.Model != "tiny" {
			t.Errorf("event %q: object %q model %q", ev, c.Object, c.Model)
		}
		got = append(got, c)
	}
	if d := got[0].Choices[0].Delta; d["role"] != "assistant" || d["content"] != "hi " {
		t.Errorf("first delta %v", d)
	}
	if d := got[1].Choices[0].Delta; d["content"] != "there" || got[1].Choices[0].FinishReason != nil {
		t.Errorf("second delta %v", d)
	}
	if f := got[2].Choices[0].FinishReason; f == nil || *f != "stop" {
		t.Errorf("finish chunk %q", events[2])
	}
	if len(got[3].Choices) != 0 || got[3].Usage == nil || got[3].Usage.Completion != 2 {
		t.Errorf("usage chunk %q", events[3])
	}
}

func TestOpenAIErrorMidStreamWire(t *testing.T) {
	for _, tt := range []struct {
		flavor Flavor
		last   string
	}{
		{LlamaServer, `{"error":{"code":500,"message":"boom","type":"server_error"}}`},
		{VLLM, "[DONE]"},
	} {
		fake := NewOpenAI(t, &OpenAIOptions{Responder: Texts("a b c"), Flavor: tt.flavor})
		fake.ErrorMidStream(1, "boom")
		_, _, body := post(t, fake.URL+"/v1/chat/completions", `{"model":"default","messages":[{"role":"user","content":"x"}],"stream":true}`)
		events := dataLines(body)
		if events[len(events)-1] != tt.last || len(events) < 2 || !strings.Contains(body, `"boom"`) {
			t.Errorf("%v: stream %q, want one chunk, the error, ending %s", tt.flavor, body, tt.last)
		}
	}
}

func TestOpenAIRuntimeLoRA(t *testing.T) {
	fake := NewOpenAI(t, &OpenAIOptions{Flavor: VLLM, Models: []string{"tiny"}, RuntimeLoRA: true, RestartDelay: 10 * time.Millisecond})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, ct, body := post(t, fake.URL+"/v1/load_lora_adapter", `{"lora_name":"bob","lora_path":"`+dir+`"}`)
	want := []any{http.StatusOK, "text/plain; charset=utf-8", "Success: LoRA adapter 'bob' added successfully."}
	if diff := cmp.Diff([]any{status, ct, body}, want); diff != "" {
		t.Errorf("load answer (-got +want):\n%s", diff)
	}
	// A restart on the same address forgets adapters loaded at run time,
	// as vLLM does.
	fake.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fake.URL+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not back: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(fake.Loaded(), []string(nil)); diff != "" {
		t.Errorf("loaded after restart (-got +want):\n%s", diff)
	}
	post(t, fake.URL+"/v1/load_lora_adapter", `{"lora_name":"bob","lora_path":"`+dir+`"}`)
	status, ct, body = post(t, fake.URL+"/v1/unload_lora_adapter", `{"lora_name":"bob"}`)
	if status != http.StatusOK || ct != "text/plain; charset=utf-8" || body != "Success: LoRA adapter 'bob' removed successfully." {
		t.Errorf("unload answer %d %s %q", status, ct, body)
	}
	if n := len(fake.Requests()); n < 3 {
		t.Errorf("%d requests recorded, want at least 3", n)
	}
}

func TestOpenAINotFound(t *testing.T) {
	for _, tt := range []struct {
		flavor Flavor
		ct     string
		body   string
	}{
		{LlamaServer, "application/json", `{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}` + "\n"},
		{VLLM, "application/json", `{"detail":"Not Found"}` + "\n"},
		{Generic, "text/plain; charset=utf-8", "404 page not found\n"},
	} {
		fake := NewOpenAI(t, &OpenAIOptions{Flavor: tt.flavor})
		status, ct, body := post(t, fake.URL+"/v1/load_lora_adapter", `{}`)
		if diff := cmp.Diff([]any{status, ct, body}, []any{404, tt.ct, tt.body}); diff != "" {
			t.Errorf("%v: (-got +want):\n%s", tt.flavor, diff)
		}
	}
}

func TestOpenAIFailNextAndAuth(t *testing.T) {
	fake := NewOpenAI(t, &OpenAIOptions{APIKey: "k"})
	fake.FailNext(http.StatusBadGateway, "upstream gone")
	// The health check needs no key; the injected failure comes first.
	status, ct, body := do(t, http.MethodGet, fake.URL+"/health", "")
	if status != http.StatusBadGateway || ct != "text/plain; charset=utf-8" || body != "upstream gone" {
		t.Errorf("got %d %s %q", status, ct, body)
	}
	if status, _, _ := do(t, http.MethodGet, fake.URL+"/health", ""); status != http.StatusOK {
		t.Errorf("health: %d", status)
	}
	if status, _, _ := do(t, http.MethodGet, fake.URL+"/lora-adapters", ""); status != http.StatusUnauthorized {
		t.Errorf("lora-adapters without a key: %d, want 401", status)
	}
	reqs := fake.Requests()
	if diff := cmp.Diff(len(reqs), 3); diff != "" {
		t.Errorf("requests recorded (-got +want):\n%s", diff)
	}
}
