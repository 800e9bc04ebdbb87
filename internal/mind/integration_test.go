//go:build integration

// This test runs the memory manager against a real Ollama:
//
//	BATOS_TEST_OLLAMA=http://127.0.0.1:11434 go test -tags integration -run Integration -v ./internal/mind
//
// It imports a generated tiny llama model (internal/gguf/gguftest) into
// an image as pLLM's weights, attaches a LoRA adapter that fits it to
// BRICK and one that does not to ROBIN, and lets the memory manager
// push, create and warm them up. The models it makes are
// batos-base-<digest>, batos-brick-<digest> and batos-robin-<digest>;
// at the end each is unloaded (keep_alive 0) and deleted, and none may
// stay loaded. The blobs stay: Ollama has no call to delete one.
package mind

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/ollama"
)

// realOllama connects to the server BATOS_TEST_OLLAMA names, or skips t.
func realOllama(t *testing.T) (*Server, *ollama.Client) {
	t.Helper()
	url := os.Getenv("BATOS_TEST_OLLAMA")
	if url == "" {
		t.Skip("BATOS_TEST_OLLAMA is not set (e.g. http://127.0.0.1:11434)")
	}
	s, err := Connect(t.Context(), ServerConfig{URL: url, API: APIOllama})
	if err != nil {
		t.Fatalf("BATOS_TEST_OLLAMA=%s: %v", url, err)
	}
	c, ok := s.Client.(*ollama.Client)
	if !ok {
		t.Fatalf("connected with a %T, want the Ollama client", s.Client)
	}
	return s, c
}

// releaseModels unloads each model and deletes it (one that is not
// there is no error), then checks that none of them is still loaded:
// the test calls it before it starts, in case an earlier run was
// killed, and at the end.
func releaseModels(t *testing.T, c *ollama.Client, models ...string) {
	t.Helper()
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
	// Ollama unloads a runner just after it answers keep_alive 0.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		loaded, err := c.Loaded(ctx)
		if err != nil {
			t.Errorf("ps: %v", err)
			return
		}
		still := listed(loaded, models...)
		if len(still) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("still loaded after unloading: %v", still)
			return
		}
	}
}

// listed returns those of models that names lists (with or without
// Ollama's ":latest").
func listed(names []string, models ...string) []string {
	var out []string
	for _, n := range names {
		for _, m := range models {
			if strings.TrimSuffix(n, ":latest") == m {
				out = append(out, m)
			}
		}
	}
	return out
}

func TestIntegrationMemoryManager(t *testing.T) {
	server, client := realOllama(t)
	ctx := t.Context()
	db, _ := testImage(t)
	w, err := ImportWeights(ctx, db, writeFile(t, "tiny.gguf", gguftest.TinyLlama(2)), nil)
	if err != nil {
		t.Fatal(err)
	}
	adapter := attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", gguftest.TinyLoRA(2)))
	brick := loadPersona(t, db, "BRICK")
	base, tuned := weightsModel(&Weights{Blob: w.Blob}), adapterModel(brick)
	if want := "batos-brick-" + adapter.Blob.Digest.Hex()[:12]; tuned != want {
		t.Fatalf("BRICK's model is named %s, want %s", tuned, want)
	}

	// The misfit is refused against pLLM's weights on import; a persona
	// naming a server's model is not checked there, and the server
	// finds the misfit on first use.
	misfitFile := writeFile(t, "wrong.gguf", gguftest.MismatchedLoRA(2))
	if _, err := ImportAdapter(ctx, db, misfitFile, nil); !errors.Is(err, ErrNotGGUF) {
		t.Fatalf("import a misfit adapter against pLLM's weights: %v, want ErrNotGGUF", err)
	}
	misfit, err := ImportAdapterFor(ctx, db, misfitFile, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(ctx, db, "ROBIN", Edit{Model: &base, Adapter: misfit}); err != nil {
		t.Fatal(err)
	}
	robin := loadPersona(t, db, "ROBIN")
	broken := adapterModel(robin)
	releaseModels(t, client, broken, tuned, base)
	t.Cleanup(func() { releaseModels(t, client, broken, tuned, base) })

	m := New(db, server, &Options{CacheDir: t.TempDir()})
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierCold || pl.Where != tuned {
		t.Errorf("before: %+v, want cold in %s", pl, tuned)
	}

	// Prepare pushes both blobs, creates the base and BRICK's model, and
	// warms the model up: it is hot, and the warm-up is BRICK's call.
	route, err := m.Manager().Prepare(ctx, brick)
	if err != nil {
		t.Fatalf("prepare BRICK: %v", err)
	}
	if route.Model != tuned || route.Adapter != adapter.Blob.Digest.String() {
		t.Errorf("route %+v, want model %s with adapter %s", route, tuned, adapter.Blob.Digest)
	}
	for _, b := range []image.BlobRef{w.Blob, adapter.Blob} {
		if ok, err := client.HasBlob(ctx, b.Digest.Hex()); err != nil || !ok {
			t.Errorf("blob %s on the server: %v, %v", b.Digest, ok, err)
		}
	}
	models, err := server.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := listed(models, base, tuned); len(got) != 2 {
		t.Errorf("the server has %v of %s and %s", got, base, tuned)
	}
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierHot || pl.Where != tuned {
		t.Errorf("after Prepare: %+v, want hot in %s", pl, tuned)
	}
	// A one-token warm-up may end at once (a random model can pick the
	// end token first): its prompt is what it surely counted.
	if c := onlyCall(t, db, "BRICK"); !c.OK() || c.Model != tuned || c.Adapter != adapter.Blob.Digest.String() || c.PromptTokens == 0 {
		t.Errorf("BRICK's warm-up recorded as %+v, want ok, model %s, adapter %s and its prompt's tokens", c, tuned, adapter.Blob.Digest)
	}

	// ROBIN's adapter does not fit: the warm-up fails with the server's
	// 500, Ask reports a bad adapter and records the failure, and the
	// model is gone.
	_, err = m.Ask(ctx, Request{Persona: "ROBIN", Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say OK."}}})
	var bad *BadAdapterError
	if !errors.As(err, &bad) || bad.Persona != "ROBIN" || bad.Adapter != misfit.Blob.Digest.String() {
		t.Fatalf("ask ROBIN with a misfit adapter: %v, want a BadAdapterError for ROBIN's adapter", err)
	}
	var api *llm.APIError
	if !errors.As(err, &api) || api.Status != http.StatusInternalServerError {
		t.Errorf("error %v should carry the server's 500", err)
	}
	if models, err := server.Models(ctx); err != nil || len(listed(models, broken)) != 0 {
		t.Errorf("after a bad adapter the server lists %v (%v), want no %s", models, err, broken)
	}
	if pl := tierOf(t, m.Manager(), robin); pl.Tier != TierCold {
		t.Errorf("ROBIN after a bad adapter: %+v, want cold", pl)
	}
	if c := onlyCall(t, db, "ROBIN"); c.Outcome != bad.Error() {
		t.Errorf("ROBIN's call recorded as %+v, want the failure %q", c, bad.Error())
	}
}

// onlyCall returns persona's one recorded call, and fails t unless its
// usage counts that one call (failed or not, as the record says), with
// the record's tokens and a latency.
func onlyCall(t *testing.T, db *image.DB, persona string) Call {
	t.Helper()
	var calls []Call
	if err := db.View(t.Context(), func(tx *image.Tx) (err error) { calls, err = RecentCalls(tx, persona); return }); err != nil {
		t.Fatal(err)
	}
	u := loadPersona(t, db, persona).Usage
	if len(calls) != 1 || u.Calls != 1 {
		t.Fatalf("%s: usage %+v, calls %+v; want one call", persona, u, calls)
	}
	c := calls[0]
	failures := int64(0)
	if !c.OK() {
		failures = 1
	}
	if c.Persona != persona || c.Latency <= 0 || u.Failures != failures ||
		u.PromptTokens != int64(c.PromptTokens) || u.CompletionTokens != int64(c.CompletionTokens) {
		t.Errorf("%s: usage %+v does not count the call %+v", persona, u, c)
	}
	return c
}
