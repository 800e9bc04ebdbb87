//go:build integration

// These tests run the Ollama client against a real server:
//
//	BATOS_TEST_OLLAMA=http://127.0.0.1:11434 go test -tags integration -run Integration -v ./internal/llm/ollama
//
// They generate a tiny random-weight llama model and a LoRA adapter for
// it (internal/gguf/gguftest), push both as blobs, create models from
// them, and chat, embed and list against what they created. Models they
// create are named batos-it-*; at the end every one is unloaded (an
// empty chat with keep_alive 0) and deleted, and none may stay loaded.
// The blobs stay: Ollama has no call to delete one, and prunes blobs no
// model uses when it starts.
package ollama_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"batos/internal/gguf/gguftest"
	"batos/internal/llm"
	"batos/internal/llm/ollama"
)

func realServer(t *testing.T) *ollama.Client {
	t.Helper()
	url := os.Getenv("BATOS_TEST_OLLAMA")
	if url == "" {
		t.Skip("BATOS_TEST_OLLAMA is not set (e.g. http://127.0.0.1:11434)")
	}
	c, err := ollama.New(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Version(t.Context()); err != nil {
		t.Fatalf("BATOS_TEST_OLLAMA=%s: %v", url, err)
	}
	return c
}

func pushData(t *testing.T, c *ollama.Client, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	if err := c.PushBlob(t.Context(), digest, open, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	ok, err := c.HasBlob(t.Context(), digest)
	if err != nil || !ok {
		t.Fatalf("HasBlob after push: %v, %v", ok, err)
	}
	return "sha256:" + digest
}

// releaseModels registers a cleanup that unloads each model and deletes
// it (one the test deleted already is no error), then checks that none
// of them is still loaded.
func releaseModels(t *testing.T, c *ollama.Client, models ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, m := range models {
			if err := c.Unload(ctx, m); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
				t.Errorf("unload %s: %v", m, err)
			}
			if err := c.Delete(ctx, m); err != nil && !errors.Is(err, llm.ErrModelNotFound) {
				t.Errorf("delete %s: %v", m, err)
			}
		}
		if still := stillLoaded(ctx, c, models); len(still) > 0 {
			t.Errorf("still loaded after unloading: %v", still)
		}
	})
}

// stillLoaded waits up to 30 s for the models to leave memory (Ollama
// unloads a runner just after it answers keep_alive 0) and returns those
// still listed by /api/ps.
func stillLoaded(ctx context.Context, c *ollama.Client, models []string) []string {
	var still []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		running, err := c.PS(ctx)
		if err != nil {
			return []string{"(ps: " + err.Error() + ")"}
		}
		still = still[:0]
		for _, r := range running {
			for _, m := range models {
				if strings.TrimSuffix(r.Name, ":latest") == m {
					still = append(still, r.Name)
				}
			}
		}
		if len(still) == 0 || time.Now().After(deadline) {
			return still
		}
	}
}

// answerSchema bounds the structured answer: one string of at most 16
// characters and no other property. Written out with the grammar's
// whitespace (at most 22 bytes in each of the 5 places it may go) and
// every character escaped (\uXXXX), it is 219 bytes, so at most 219
// tokens: answerBudget holds the longest answer the schema allows.
const (
	answerSchema = `{"type":"object","properties":{"answer":{"type":"string","maxLength":16}},"required":["answer"],"additionalProperties":false}`
	answerBudget = 256
)

// checkAnswer fails t unless text is a JSON object that answerSchema
// allows.
func checkAnswer(t *testing.T, text string) {
	t.Helper()
	if !json.Valid([]byte(text)) {
		t.Errorf("structured answer is not JSON: %q", text)
		return
	}
	var got struct {
		Answer *string `json:"answer"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Errorf("structured answer %q does not follow the schema: %v", text, err)
		return
	}
	if got.Answer == nil || utf8.RuneCountInString(*got.Answer) > 16 {
		t.Errorf("structured answer %q: want an answer of at most 16 characters", text)
	}
}

func TestIntegrationOllama(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	suffix := time.Now().Format("150405")
	base, tuned := "batos-it-base-"+suffix, "batos-it-lora-"+suffix
	releaseModels(t, c, tuned, base)

	model := gguftest.TinyLlama(1)
	modelDigest := pushData(t, c, model)
	if err := c.Create(ctx, &llm.CreateRequest{Model: base, Files: map[string]string{"tiny.gguf": modelDigest}}); err != nil {
		t.Fatalf("create base from blob: %v", err)
	}
	adapterDigest := pushData(t, c, gguftest.TinyLoRA(1))
	if err := c.Create(ctx, &llm.CreateRequest{Model: tuned, From: base, Adapters: map[string]string{"lora.gguf": adapterDigest}}); err != nil {
		t.Fatalf("create with adapter: %v", err)
	}

	// Structured chat: with a schema, Ollama keeps even random weights to
	// valid JSON; the budget holds the longest answer the schema allows,
	// so a cut answer is a failure, not a check skipped.
	temp, seed := 0.0, int64(7)
	var streamed strings.Builder
	resp, err := c.Chat(ctx, &llm.ChatRequest{
		Model:    tuned,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hello."}},
		Schema:   json.RawMessage(answerSchema),
		Options:  llm.Options{Temperature: &temp, Seed: &seed, MaxTokens: answerBudget},
		Stream:   func(ch llm.Chunk) error { streamed.WriteString(ch.Text); return nil },
	})
	if err != nil {
		t.Fatalf("chat with adapter: %v", err)
	}
	if streamed.String() != resp.Text || resp.Usage.CompletionTokens == 0 || resp.Timings.Total == 0 {
		t.Errorf("chat: text %q, streamed %q, usage %+v, timings %+v", resp.Text, streamed.String(), resp.Usage, resp.Timings)
	}
	switch {
	case resp.Cut():
		cut := &llm.CutError{Model: tuned, Reason: resp.FinishReason, Tokens: resp.Usage.CompletionTokens, Budget: answerBudget}
		t.Errorf("structured answer cannot be checked: %v (it reads %q)", cut, resp.Text)
	case resp.FinishReason != llm.FinishStop:
		t.Errorf("structured answer ended with %q, want %q: %q", resp.FinishReason, llm.FinishStop, resp.Text)
	default:
		checkAnswer(t, resp.Text)
	}

	emb, err := c.Embed(ctx, &llm.EmbedRequest{Model: base, Input: []string{"one", "two"}})
	if err != nil {
		t.Fatalf("embed: %v", err)
	}
	if len(emb.Vectors) != 2 || len(emb.Vectors[0]) == 0 {
		t.Errorf("embed: %d vectors of width %d", len(emb.Vectors), len(emb.Vectors[0]))
	}

	running, err := c.PS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, r := range running {
		seen = seen || strings.HasPrefix(r.Name, "batos-it-")
	}
	if !seen {
		t.Errorf("ps lists %+v, want a batos-it model loaded", running)
	}
	tags, err := c.Tags(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed int
	for _, tag := range tags {
		if strings.HasPrefix(tag.Name, base) || strings.HasPrefix(tag.Name, tuned) {
			listed++
		}
	}
	if listed != 2 {
		t.Errorf("tags list %d of the 2 created models", listed)
	}
	if err := c.Unload(ctx, tuned); err != nil {
		t.Fatalf("unload %s: %v", tuned, err)
	}
	if err := c.Delete(ctx, tuned); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, tuned); !errors.Is(err, llm.ErrModelNotFound) {
		t.Errorf("second delete: %v, want model not found", err)
	}
}
