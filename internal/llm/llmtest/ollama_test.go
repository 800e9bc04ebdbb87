package llmtest_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm/llmtest"
)

// do sends a request to the fake and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// lines decodes an NDJSON body.
func lines(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestOllamaChatWire(t *testing.T) {
	model := llmtest.NewModel(llmtest.Reply{Text: "a b", Chunks: []string{"a ", "b"}}, llmtest.Reply{Text: "whole"})
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: model, Models: []string{"llama3.2"}})

	// Streaming is the default; the model's name is as given.
	status, body := do(t, "POST", o.URL+"/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"format":"json","keep_alive":"10m"}`)
	if status != 200 {
		t.Fatalf("got %d %s", status, body)
	}
	ls := lines(t, body)
	if len(ls) != 3 || ls[0]["message"].(map[string]any)["content"] != "a " || ls[2]["done"] != true || ls[2]["done_reason"] != "stop" {
		t.Fatalf("got lines %v", ls)
	}
	for _, k := range []string{"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"} {
		if _, ok := ls[2][k]; !ok {
			t.Errorf("final line lacks %s: %v", k, ls[2])
		}
	}
	status, body = do(t, "POST", o.URL+"/api/chat", `{"model":"llama3.2:latest","messages":[{"role":"user","content":"hi"}],"stream":false}`)
	var one map[string]any
	if err := json.Unmarshal([]byte(body), &one); status != 200 || err != nil || one["message"].(map[string]any)["content"] != "whole" {
		t.Errorf("unstreamed: got %d %s", status, body)
	}
	calls := model.Calls()
	if len(calls) != 2 || calls[0].Schema != nil || calls[0].KeepAlive == nil || *calls[0].KeepAlive != 10*time.Minute {
		t.Errorf("got calls %+v, want format json as no schema and keep_alive 10m", calls)
	}
	if o.ChatCount("llama3.2") != 2 {
		t.Errorf("got %d chats, want 2", o.ChatCount("llama3.2"))
	}
}

func TestOllamaErrors(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts(), Models: []string{"m:1b"}})
	tests := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"unknown model", "POST", "/api/chat", `{"model":"x","messages":[{"role":"user","content":"hi"}]}`, 404, "model 'x' not found"},
		{"no body", "POST", "/api/chat", ``, 400, "missing request body"},
		{"bad format", "POST", "/api/chat", `{"model":"m:1b","messages":[],"format":"yaml"}`, 400, ""},
		{"script exhausted", "POST", "/api/chat", `{"model":"m:1b","messages":[{"role":"user","content":"hi"}]}`, 500, ""},
		{"delete unknown", "DELETE", "/api/delete", `{"name":"gone"}`, 404, "model 'gone' not found"},
		{"two adapters", "POST", "/api/create", `{"model":"p","from":"m:1b","adapters":{"a":"sha256:` + strings.Repeat("a", 64) + `","b":"sha256:` + strings.Repeat("b", 64) + `"}}`, 400, "only one adapter is currently supported"},
		{"unknown blob", "POST", "/api/create", `{"model":"p","files":{"m.gguf":"sha256:` + strings.Repeat("c", 64) + `"}}`, 400, ""},
		{"no source", "POST", "/api/create", `{"model":"p"}`, 400, ""},
		{"embed unknown", "POST", "/api/embed", `{"model":"x","input":"hi"}`, 404, "model 'x' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.method, o.URL+tt.path, tt.body)
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); status != tt.status || err != nil || e.Error == "" || tt.msg != "" && e.Error != tt.msg {
				t.Errorf("got %d %s, want %d %q", status, body, tt.status, tt.msg)
			}
		})
	}
}

func TestOllamaBlobsAndCreate(t *testing.T) {
	fitsCalled := 0
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{
		Responder: llmtest.Texts(),
		AdapterFits: func(base, adapter []byte) error {
			fitsCalled++
			if string(base) != "weights" || string(adapter) != "adapter" {
				t.Errorf("AdapterFits(%q, %q)", base, adapter)
			}
			return nil
		},
	})
	push := func(content string) string {
		t.Helper()
		sum := sha256.Sum256([]byte(content))
		digest := "sha256:" + hex.EncodeToString(sum[:])
		if status, _ := do(t, "HEAD", o.URL+"/api/blobs/"+digest, ""); status != 404 {
			t.Errorf("HEAD before push: got %d, want 404", status)
		}
		if status, body := do(t, "POST", o.URL+"/api/blobs/"+digest, content); status != 201 {
			t.Errorf("POST: got %d %s, want 201", status, body)
		}
		if status, _ := do(t, "POST", o.URL+"/api/blobs/"+digest, content); status != 200 {
			t.Errorf("POST again: got %d, want 200", status)
		}
		if status, _ := do(t, "HEAD", o.URL+"/api/blobs/"+digest, ""); status != 200 {
			t.Errorf("HEAD after push: got %d, want 200", status)
		}
		return digest
	}
	w, a := push("weights"), push("adapter")
	if got, ok := o.Blob(w); !ok || string(got) != "weights" {
		t.Errorf("Blob: got %q, %v", got, ok)
	}
	if status, body := do(t, "POST", o.URL+"/api/blobs/"+w[:len(w)-1]+"0", "other"); status != 400 || !strings.Contains(body, "digest mismatch") {
		t.Errorf("wrong content: got %d %s", status, body)
	}
	status, body := do(t, "POST", o.URL+"/api/create", `{"model":"p","files":{"w.gguf":"`+w+`"},"adapters":{"a.gguf":"`+a+`"}}`)
	ls := lines(t, body)
	if status != 200 || len(ls) == 0 || ls[len(ls)-1]["status"] != "success" || fitsCalled != 1 {
		t.Errorf("create: got %d %v, AdapterFits called %d times", status, ls, fitsCalled)
	}
	if rec, ok := o.Created("p:latest"); !ok || rec.Adapters["a.gguf"] != a {
		t.Errorf("Created: got %+v, %v", rec, ok)
	}
	status, body = do(t, "POST", o.URL+"/api/create", `{"model":"q","from":"p","stream":false}`)
	if status != 200 || strings.TrimSpace(body) != `{"status":"success"}` {
		t.Errorf("create unstreamed: got %d %s", status, body)
	}
	status, body = do(t, "GET", o.URL+"/api/tags", "")
	var tags struct{ Models []struct{ Name string } }
	if err := json.Unmarshal([]byte(body), &tags); status != 200 || err != nil || len(tags.Models) != 2 || tags.Models[0].Name != "p:latest" {
		t.Errorf("tags: got %d %s", status, body)
	}
}

func TestOllamaEmbedAndPS(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: &llmtest.Model{Dim: 4}, Models: []string{"e"}})
	status, body := do(t, "POST", o.URL+"/api/embed", `{"model":"e","input":"one text"}`)
	var emb struct{ Embeddings [][]float32 }
	if err := json.Unmarshal([]byte(body), &emb); status != 200 || err != nil ||
		!cmp.Equal(emb.Embeddings, [][]float32{llmtest.HashVector("one text", 4)}) {
		t.Errorf("embed: got %d %s", status, body)
	}
	status, body = do(t, "GET", o.URL+"/api/ps", "")
	var ps struct {
		Models []struct {
			Name      string    `json:"name"`
			SizeVRAM  int64     `json:"size_vram"`
			ExpiresAt time.Time `json:"expires_at"`
		}
	}
	if err := json.Unmarshal([]byte(body), &ps); status != 200 || err != nil || len(ps.Models) != 1 ||
		ps.Models[0].Name != "e:latest" || ps.Models[0].SizeVRAM == 0 || time.Until(ps.Models[0].ExpiresAt) < 4*time.Minute {
		t.Errorf("ps: got %d %s, want e loaded for about 5 minutes", status, body)
	}
	if status, body := do(t, "POST", o.URL+"/api/chat", `{"model":"e","messages":[],"keep_alive":0}`); status != 200 || !strings.Contains(body, `"done_reason":"unload"`) {
		t.Errorf("unload: got %d %s", status, body)
	}
	if _, body := do(t, "GET", o.URL+"/api/ps", ""); strings.TrimSpace(body) != `{"models":[]}` {
		t.Errorf("ps after unload: got %s", body)
	}
}

func TestOllamaFaults(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("a b c", "a b c"), Models: []string{"m"}})
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

	o.FailNext(503, "busy")
	if status, body := do(t, "GET", o.URL+"/api/version", ""); status != 503 || strings.TrimSpace(body) != `{"error":"busy"}` {
		t.Errorf("FailNext: got %d %s", status, body)
	}
	o.ErrorMidStream(1, "oom")
	_, body := do(t, "POST", o.URL+"/api/chat", chat)
	ls := lines(t, body)
	if len(ls) != 2 || ls[1]["error"] != "oom" {
		t.Errorf("ErrorMidStream: got %v", ls)
	}
	o.CutStreamAfter(2)
	resp, err := http.Post(o.URL+"/api/chat", "application/json", strings.NewReader(chat))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || bytes.Count(got, []byte("\n")) != 2 {
		t.Errorf("CutStreamAfter: got %q, %v; want two lines and a read error", got, err)
	}

	o.Restart(t)
	if _, err := http.Get(o.URL + "/api/version"); err == nil {
		t.Error("the server answered while restarting")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(o.URL + "/api/version")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not come back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(o.Requests()); n != 4 {
		t.Errorf("got %d requests recorded, want 4 (state kept across the restart)", n)
	}
}

// TestOllamaLimits: the fake keeps Ollama's limits as a real one showed
// them: a prompt over num_ctx (2,048 unless sent) is cut with its count
// capped and no word to the client, num_predict cuts with done_reason
// "length", the repetition guard ends with "done": false, /api/show
// reports the context length, and /v1/models lists the newest model
// first.
func TestOllamaLimits(t *testing.T) {
	o := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("a b c d", "a b c d", "a b c d"), Models: []string{"tiny"}, ContextLength: 16384})
	long := strings.Repeat("x", 12000) // 3,004 tokens by the fake's count
	status, body := do(t, "POST", o.URL+"/api/chat", `{"model":"tiny","stream":false,"messages":[{"role":"user","content":"`+long+`"}]}`)
	var a map[string]any
	if err := json.Unmarshal([]byte(body), &a); status != 200 || err != nil || a["prompt_eval_count"] != 2048.0 || a["done"] != true {
		t.Errorf("long prompt: %d %v, want 200 with prompt_eval_count 2048", status, a)
	}
	if diff := cmp.Diff(o.PromptCuts(), []llmtest.PromptCut{{Model: "tiny:latest", Tokens: 3004, NumCtx: 2048}}); diff != "" {
		t.Errorf("cuts (-got +want):\n%s", diff)
	}
	_, body = do(t, "POST", o.URL+"/api/chat", `{"model":"tiny","stream":false,"options":{"num_predict":2,"num_ctx":4096},"messages":[{"role":"user","content":"`+long+`"}]}`)
	_ = json.Unmarshal([]byte(body), &a)
	if a["done_reason"] != "length" || a["eval_count"] != 2.0 || a["message"].(map[string]any)["content"] != "a b " || len(o.PromptCuts()) != 1 {
		t.Errorf("num_predict 2: %v, want the answer cut for length and no prompt cut", a)
	}
	o.RepetitionGuardNext(1)
	_, body = do(t, "POST", o.URL+"/api/chat", `{"model":"tiny","messages":[{"role":"user","content":"hi"}]}`)
	if ls := lines(t, body); len(ls) != 1 || ls[0]["done"] != false {
		t.Errorf("guarded stream: %v, want one line with done false and nothing after", ls)
	}
	_, body = do(t, "POST", o.URL+"/api/show", `{"model":"tiny"}`)
	if !strings.Contains(body, `"llama.context_length":16384`) || !strings.Contains(body, `"general.architecture":"llama"`) {
		t.Errorf("show: %s", body)
	}
	if status, _ := do(t, "POST", o.URL+"/api/show", `{"model":"absent"}`); status != 404 {
		t.Errorf("show of an absent model: %d, want 404", status)
	}
	time.Sleep(time.Millisecond)
	do(t, "POST", o.URL+"/api/create", `{"model":"batos-robin-0123456789ab","from":"tiny","stream":false}`)
	_, body = do(t, "GET", o.URL+"/v1/models", "")
	if i, j := strings.Index(body, "batos-robin"), strings.Index(body, "tiny:latest"); i < 0 || j < i || !strings.Contains(body, `"owned_by":"library"`) {
		t.Errorf("/v1/models: %s, want the adapter model first", body)
	}
}
