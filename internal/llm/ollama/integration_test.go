//go:build integration

// These tests run the Ollama client against a real server:
//
//	BATOS_TEST_OLLAMA=http://127.0.0.1:11434 go test -tags integration -run Integration -v ./internal/llm/ollama
//
// They generate a tiny random-weight llama model and a LoRA adapter for
// it (internal/gguf/gguftest), push both as blobs, create models from
// them, and chat, embed and list against what they created. Models they
// create are named batos-it-* and deleted at the end.
package ollama_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

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

func TestIntegrationOllama(t *testing.T) {
	c := realServer(t)
	ctx := t.Context()
	suffix := time.Now().Format("150405")
	base, tuned := "batos-it-base-"+suffix, "batos-it-lora-"+suffix
	t.Cleanup(func() {
		for _, m := range []string{tuned, base} {
			_ = c.Delete(context.Background(), m)
		}
	})

	model := gguftest.TinyLlama(1)
	modelDigest := pushData(t, c, model)
	if err := c.Create(ctx, &llm.CreateRequest{Model: base, Files: map[string]string{"tiny.gguf": modelDigest}}); err != nil {
		t.Fatalf("create base from blob: %v", err)
	}
	adapterDigest := pushData(t, c, gguftest.TinyLoRA(1))
	if err := c.Create(ctx, &llm.CreateRequest{Model: tuned, From: base, Adapters: map[string]string{"lora.gguf": adapterDigest}}); err != nil {
		t.Fatalf("create with adapter: %v", err)
	}

	// Structured chat: with a schema, Ollama keeps even random weights to valid JSON.
	temp, seed := 0.0, int64(7)
	schema := json.RawMessage(`{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`)
	var streamed strings.Builder
	resp, err := c.Chat(ctx, &llm.ChatRequest{
		Model:    tuned,
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hello."}},
		Schema:   schema,
		Options:  llm.Options{Temperature: &temp, Seed: &seed, MaxTokens: 24},
		Stream:   func(ch llm.Chunk) error { streamed.WriteString(ch.Text); return nil },
	})
	if err != nil {
		t.Fatalf("chat with adapter: %v", err)
	}
	if streamed.String() != resp.Text || resp.Usage.CompletionTokens == 0 || resp.Timings.Total == 0 {
		t.Errorf("chat: text %q, streamed %q, usage %+v, timings %+v", resp.Text, streamed.String(), resp.Usage, resp.Timings)
	}
	if resp.FinishReason == "stop" && !json.Valid([]byte(resp.Text)) {
		t.Errorf("structured answer is not JSON: %q", resp.Text)
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
	if err := c.Delete(ctx, tuned); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, tuned); err == nil {
		t.Error("second delete succeeded, want model not found")
	}
}
