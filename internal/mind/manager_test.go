package mind

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/openai"
)

func connectTo(t *testing.T, url string, api API, model string) *Server {
	t.Helper()
	s, err := Connect(t.Context(), ServerConfig{URL: url, API: api, Model: model, Retry: llm.Retry{Attempts: 2, Base: 1e6}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadPersona(t *testing.T, db *image.DB, name string) *Persona {
	t.Helper()
	var p *Persona
	err := db.View(t.Context(), func(tx *image.Tx) (err error) { p, err = LoadPersona(tx, name); return })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tierOf(t *testing.T, m *Manager, p *Persona) Placement {
	t.Helper()
	pls, err := m.Observe(t.Context(), []*Persona{p})
	if err != nil {
		t.Fatal(err)
	}
	return pls[0]
}

// attachAdapter imports data as name and attaches it to persona.
func attachAdapter(t *testing.T, db *image.DB, persona, path string) *Imported {
	t.Helper()
	imp, err := ImportAdapter(t.Context(), db, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(t.Context(), db, persona, Edit{Adapter: imp}); err != nil {
		t.Fatal(err)
	}
	return imp
}

// TestOllamaFromImageBlobs: with the base model and the adapter only in
// the image, the memory manager pushes both blobs, creates the base and
// the persona's model, warms it up, and the persona's calls go to it.
func TestOllamaFromImageBlobs(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	model, lora := gguftest.TinyLlama(7), gguftest.TinyLoRA(7)
	base, err := ImportWeights(ctx, db, writeFile(t, "tiny.gguf", model), nil)
	if err != nil {
		t.Fatal(err)
	}
	adapter := attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", lora))
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("OK", "the plan"), AdapterFits: llmtest.GGUFFits})
	m := New(db, connectTo(t, fake.URL, APIOllama, ""), &Options{CacheDir: t.TempDir()})
	brick := loadPersona(t, db, "BRICK")
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierCold {
		t.Errorf("before: %+v, want cold", pl)
	}
	ans, err := m.Ask(ctx, Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "plan"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Text != "the plan" {
		t.Errorf("answer %q, want the second scripted reply (the first is the warm-up)", ans.Text)
	}
	for _, b := range []struct {
		ref  image.BlobRef
		data []byte
	}{{base.Blob, model}, {adapter.Blob, lora}} {
		got, ok := fake.Blob(b.ref.Digest.String())
		if !ok || !bytes.Equal(got, b.data) {
			t.Errorf("blob %s on the server: present %v, identical %v", b.ref.Digest, ok, bytes.Equal(got, b.data))
		}
	}
	name := adapterModel(brick)
	rec, ok := fake.Created(name)
	if !ok {
		t.Fatalf("%s not created", name)
	}
	if rec.From != weightsModel(&Weights{Blob: base.Blob}) || rec.Adapters["brick.gguf"] != adapter.Blob.Digest.String() {
		t.Errorf("created %s from %q with adapters %v", name, rec.From, rec.Adapters)
	}
	if ans.Call.Model != name || ans.Call.Adapter != adapter.Blob.Digest.String() {
		t.Errorf("call record %+v, want model %s and the adapter's digest", ans.Call, name)
	}
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierHot || pl.Where != name {
		t.Errorf("after: %+v, want hot in %s", pl, name)
	}
	// A persona without an adapter uses the base created from the blob.
	if _, err := m.Ask(ctx, Request{Persona: "ROBIN"}); err == nil {
		t.Error("script exhausted, want an error")
	}
	if got := fake.ChatCount(weightsModel(&Weights{Blob: base.Blob})); got != 1 {
		t.Errorf("ROBIN's call reached the base model %d times, want 1", got)
	}
	// A second mind (a restart) finds the model there and warms it once more.
	fake2calls := fake.ChatCount(name)
	m2 := New(db, connectTo(t, fake.URL, APIOllama, ""), nil)
	if _, err := m2.Manager().Prepare(ctx, brick); err == nil {
		t.Error("warm-up with an exhausted script succeeded")
	}
	if fake.ChatCount(name) != fake2calls+1 {
		t.Errorf("restart made %d calls, want one warm-up", fake.ChatCount(name)-fake2calls)
	}
}

// TestOllamaBadAdapter: Ollama accepts any adapter at create and fails
// the first generate with a 500; the manager reports a bad adapter and
// removes the broken model.
func TestOllamaBadAdapter(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", writeFile(t, "wrong.gguf", gguftest.MismatchedLoRA(1)))
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{
		Responder: llmtest.Texts("OK"), Models: []string{"tiny"},
		AdapterFits: func(base, adapter []byte) error { return errors.New("tensor shapes do not match") },
	})
	m := New(db, connectTo(t, fake.URL, APIOllama, "tiny"), nil)
	_, err := m.Ask(t.Context(), Request{Persona: "BRICK"})
	var bad *BadAdapterError
	if !errors.As(err, &bad) || bad.Persona != "BRICK" {
		t.Fatalf("Ask: %v, want a BadAdapterError for BRICK", err)
	}
	var api *llm.APIError
	if !errors.As(err, &api) || api.Status != 500 {
		t.Errorf("error %v should carry the server's 500", err)
	}
	brick := loadPersona(t, db, "BRICK")
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierCold {
		t.Errorf("after a bad adapter: %+v, want cold (model deleted)", pl)
	}
	if p := loadPersona(t, db, "BRICK"); p.Usage.Failures != 1 {
		t.Errorf("usage %+v, want the failure recorded", p.Usage)
	}
}

func TestLlamaServerAdapters(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	lora := gguftest.TinyLoRA(4)
	adapter := attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", lora))
	cache := t.TempDir()
	other := writeFile(t, "other.gguf", gguftest.TinyLoRA(5))
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), Flavor: llmtest.LlamaServer, Adapters: []string{other}})
	server := connectTo(t, fake.URL, "", "")
	if server.API != APILlamaServer {
		t.Fatalf("detected %s, want llama-server", server.API)
	}
	m := New(db, server, &Options{CacheDir: cache})
	brick := loadPersona(t, db, "BRICK")
	_, err := m.Manager().Prepare(ctx, brick)
	var notServed *AdapterNotServedError
	if !errors.As(err, &notServed) || !strings.Contains(err.Error(), "--lora "+notServed.Path) {
		t.Fatalf("Prepare: %v, want AdapterNotServedError naming the file to load", err)
	}
	if got, _ := os.ReadFile(notServed.Path); !bytes.Equal(got, lora) {
		t.Errorf("materialised %s differs from the adapter", notServed.Path)
	}
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierCold || pl.Problem == "" {
		t.Errorf("not served: %+v, want cold with a problem", pl)
	}

	// The server restarted with the adapter: matched by digest, selected per request.
	copyOf := filepath.Join(t.TempDir(), "renamed.gguf")
	if err := os.WriteFile(copyOf, lora, 0o644); err != nil {
		t.Fatal(err)
	}
	fake2 := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("hello"), Flavor: llmtest.LlamaServer, Adapters: []string{other, copyOf}})
	m2 := New(db, connectTo(t, fake2.URL, APILlamaServer, ""), &Options{CacheDir: cache})
	ans, err := m2.Ask(ctx, Request{Persona: "BRICK"})
	if err != nil {
		t.Fatal(err)
	}
	used := fake2.LoRAUsed()
	if ans.Text != "hello" || len(used) != 1 || len(used[0]) != 1 || used[0][0].ID != 1 || used[0][0].Scale != 1 {
		t.Errorf("answer %q, lora used %v; want lora id 1 at scale 1", ans.Text, used)
	}
	if ans.Call.Adapter != adapter.Blob.Digest.String() {
		t.Errorf("call records adapter %q", ans.Call.Adapter)
	}
	if pl := tierOf(t, m2.Manager(), brick); pl.Tier != TierHot || pl.Where != "lora id 1" {
		t.Errorf("served: %+v, want hot as lora id 1", pl)
	}
}

func peftDirFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"adapter_config.json":       `{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}`,
		"adapter_model.safetensors": "\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
		"README.md":                 "tiny adapter",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestVLLMLoadsPEFTAdapters(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	dir := peftDirFixture(t)
	imp := attachAdapter(t, db, "BRICK", dir)
	if imp.Format != FormatPEFT {
		t.Fatalf("imported %+v, want PEFT", imp)
	}
	again, err := ImportAdapter(ctx, db, dir, nil)
	if err != nil || again.Blob != imp.Blob {
		t.Errorf("re-import gave %v, %v; want the same blob (deterministic archive)", again, err)
	}
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("planned"), Flavor: llmtest.VLLM, Models: []string{"base"}, RuntimeLoRA: true})
	server := connectTo(t, fake.URL, "", "")
	if server.API != APIVLLM || server.DefaultModel != "base" {
		t.Fatalf("detected %s with default %q, want vllm and base", server.API, server.DefaultModel)
	}
	cache := t.TempDir()
	m := New(db, server, &Options{CacheDir: cache})
	brick := loadPersona(t, db, "BRICK")
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierCold {
		t.Errorf("before: %+v, want cold", pl)
	}
	ans, err := m.Ask(ctx, Request{Persona: "BRICK"})
	if err != nil {
		t.Fatal(err)
	}
	name := adapterModel(brick)
	if ans.Text != "planned" || ans.Call.Model != name {
		t.Errorf("answer %q from %q, want planned from %s", ans.Text, ans.Call.Model, name)
	}
	if loaded := fake.Loaded(); len(loaded) != 1 || loaded[0] != name {
		t.Errorf("loaded %v, want [%s]", loaded, name)
	}
	for name, want := range map[string]string{"adapter_config.json": "LORA", "README.md": "tiny adapter"} {
		got, err := os.ReadFile(filepath.Join(cache, "adapters", brick.Adapter.Digest.Hex(), name))
		if err != nil || !strings.Contains(string(got), want) {
			t.Errorf("materialised %s: %q, %v", name, got, err)
		}
	}
	if pl := tierOf(t, m.Manager(), brick); pl.Tier != TierHot {
		t.Errorf("after: %+v, want hot", pl)
	}
	// ROBIN has no adapter: the base model.
	fake2 := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), Flavor: llmtest.VLLM, Models: []string{"base"}})
	attachAdapter(t, db, "ROBIN", writeFile(t, "robin.gguf", gguftest.TinyLoRA(9)))
	m2 := New(db, connectTo(t, fake2.URL, APIVLLM, ""), &Options{CacheDir: cache})
	if _, err := m2.Ask(ctx, Request{Persona: "ROBIN"}); !errors.Is(err, llm.ErrUnsupported) || !strings.Contains(err.Error(), "PEFT") {
		t.Errorf("GGUF adapter on vLLM: %v, want ErrUnsupported explaining PEFT", err)
	}
	if _, err := m2.Ask(ctx, Request{Persona: "BRICK"}); err == nil || !strings.Contains(err.Error(), "VLLM_ALLOW_RUNTIME_LORA_UPDATING") {
		t.Errorf("runtime loading off: %v, want the setting named", err)
	}
}

func TestPEFTRefusals(t *testing.T) {
	db, _ := testImage(t)
	dir := t.TempDir()
	if _, err := ImportAdapter(t.Context(), db, dir, nil); !errors.Is(err, ErrNotPEFT) {
		t.Errorf("empty dir: %v, want ErrNotPEFT", err)
	}
	os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte("{not json"), 0o644)
	os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), []byte("x"), 0o644)
	if _, err := ImportAdapter(t.Context(), db, dir, nil); !errors.Is(err, ErrNotPEFT) || !strings.Contains(err.Error(), "adapter_config.json") {
		t.Errorf("bad config: %v, want ErrNotPEFT naming adapter_config.json", err)
	}
}

func TestConnectProbes(t *testing.T) {
	fakeOllama := llmtest.NewOllama(t, &llmtest.OllamaOptions{Models: []string{"tiny"}})
	saved := DefaultEndpoints
	t.Cleanup(func() { DefaultEndpoints = saved })
	DefaultEndpoints = []Endpoint{{APIOllama, "http://127.0.0.1:1"}, {APILlamaServer, "http://127.0.0.1:2"}}
	_, err := Connect(t.Context(), ServerConfig{})
	var probe *ProbeError
	if !errors.As(err, &probe) || !errors.Is(err, ErrNoServer) || len(probe.Tried) != 2 {
		t.Fatalf("probe of closed ports: %v, want a ProbeError with both tried", err)
	}
	DefaultEndpoints = []Endpoint{{APIOllama, "http://127.0.0.1:1"}, {APIOllama, fakeOllama.URL}}
	s, err := Connect(t.Context(), ServerConfig{})
	if err != nil || s.API != APIOllama || s.URL != fakeOllama.URL || s.Version == "" {
		t.Fatalf("probe: %+v, %v; want the fake Ollama with its version", s, err)
	}
	models, err := s.Models(t.Context())
	if err != nil || len(models) != 1 || !strings.HasPrefix(models[0], "tiny") {
		t.Errorf("models %v, %v", models, err)
	}
	generic := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.Generic, Models: []string{"gpt"}})
	if s := connectTo(t, generic.URL, APIOpenAI, ""); s.API != APIOpenAI || s.DefaultModel != "gpt" {
		t.Errorf("generic server: %s default %q", s.API, s.DefaultModel)
	}
	if _, err := ParseAPI("grpc"); err == nil {
		t.Error("ParseAPI accepted grpc")
	}
}

// TestLlamaServerPersonaWithoutAdapter: a persona without an adapter asks
// llama-server for none. Before, it sent no "lora" field and got every
// adapter with a global scale (one loaded without
// --lora-init-without-apply, or set by POST /lora-adapters).
func TestLlamaServerPersonaWithoutAdapter(t *testing.T) {
	db, _ := testImage(t)
	other := writeFile(t, "other.gguf", gguftest.TinyLoRA(5))
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), Flavor: llmtest.LlamaServer, Adapters: []string{other}})
	c, err := openai.New(fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetLoRAScales(t.Context(), []llm.LoRA{{ID: 0, Scale: 1}}); err != nil {
		t.Fatal(err)
	}
	m := New(db, connectTo(t, fake.URL, APILlamaServer, ""), nil)
	if _, err := m.Ask(t.Context(), Request{Persona: "ROBIN"}); err != nil {
		t.Fatal(err)
	}
	if used := fake.LoRAUsed(); len(used) != 1 || len(used[0]) != 0 {
		t.Errorf("ROBIN (no adapter) used adapters %v, want none", used)
	}
}

// TestVLLMRestartReloadsAdapter: vLLM forgets adapters loaded at run
// time when it restarts. Before, the manager still thought the adapter
// loaded and every later call of the persona failed with a 404.
func TestVLLMRestartReloadsAdapter(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", peftDirFixture(t))
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("a", "b"), Flavor: llmtest.VLLM, Models: []string{"base"},
		RuntimeLoRA: true, RestartDelay: time.Millisecond})
	m := New(db, connectTo(t, fake.URL, APIVLLM, ""), &Options{CacheDir: t.TempDir()})
	if _, err := m.Ask(t.Context(), Request{Persona: "BRICK"}); err != nil {
		t.Fatal(err)
	}
	fake.Restart(t)
	waitUp(t, fake.URL+"/health")
	if got := fake.Loaded(); len(got) != 0 {
		t.Fatalf("loaded after restart %v, want none", got)
	}
	ans, err := m.Ask(t.Context(), Request{Persona: "BRICK"})
	if err != nil {
		t.Fatalf("Ask after a restart: %v", err)
	}
	name := adapterModel(loadPersona(t, db, "BRICK"))
	if ans.Text != "b" || len(fake.Loaded()) != 1 || fake.Loaded()[0] != name {
		t.Errorf("answer %q, loaded %v; want b from %s loaded again", ans.Text, fake.Loaded(), name)
	}
}

func waitUp(t *testing.T, url string) {
	t.Helper()
	c, _ := openai.New(strings.TrimSuffix(url, "/health"), &openai.Options{Retry: llm.Retry{Attempts: 1}})
	deadline := time.Now().Add(5 * time.Second)
	for c.Health(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("server not back")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOllamaDeletedModelIsCreatedAgain: a persona's model deleted on the
// server (ollama rm) is created again on the next call, not reported
// missing until batos restarts.
func TestOllamaDeletedModelIsCreatedAgain(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", gguftest.TinyLoRA(7)))
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("OK", "one", "OK", "two"), Models: []string{"tiny"}})
	server := connectTo(t, fake.URL, APIOllama, "tiny")
	m := New(db, server, nil)
	if _, err := m.Ask(t.Context(), Request{Persona: "BRICK"}); err != nil {
		t.Fatal(err)
	}
	if err := server.Client.(llm.ModelCreator).Delete(t.Context(), adapterModel(loadPersona(t, db, "BRICK"))); err != nil {
		t.Fatal(err)
	}
	if ans, err := m.Ask(t.Context(), Request{Persona: "BRICK"}); err != nil || ans.Text != "two" {
		t.Errorf("Ask after the model was deleted: %v, %v; want two", ans, err)
	}
}

// TestOllamaPersonaModelChange: a persona whose model changes while its
// adapter stays gets an adapter model built on the new base. Before, the
// manager reused the model it had built on the old one.
func TestOllamaPersonaModelChange(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", gguftest.TinyLoRA(7)))
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("OK", "a", "OK", "b"), Models: []string{"tiny", "other"}})
	m := New(db, connectTo(t, fake.URL, APIOllama, "tiny"), nil)
	if _, err := m.Ask(t.Context(), Request{Persona: "BRICK"}); err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(t.Context(), db, "BRICK", Edit{Model: ptr("other")}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ask(t.Context(), Request{Persona: "BRICK"}); err != nil {
		t.Fatal(err)
	}
	rec, _ := fake.Created(adapterModel(loadPersona(t, db, "BRICK")))
	if rec.From != "other" {
		t.Errorf("adapter model built from %q, want other", rec.From)
	}
}

// TestLlamaServerAdapterPathNotAFile: llama-server's answer names paths
// batos may hash; one that is not a regular file (/dev/zero, a FIFO) is
// skipped. Before, hashing /dev/zero never ended and ignored the context.
func TestLlamaServerAdapterPathNotAFile(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", gguftest.TinyLoRA(7)))
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("x"), Flavor: llmtest.LlamaServer, Adapters: []string{"/dev/zero"}})
	m := New(db, connectTo(t, fake.URL, APILlamaServer, ""), &Options{CacheDir: t.TempDir()})
	done := make(chan error, 1)
	go func() {
		_, err := m.Manager().Prepare(t.Context(), loadPersona(t, db, "BRICK"))
		done <- err
	}()
	select {
	case err := <-done:
		var notServed *AdapterNotServedError
		if !errors.As(err, &notServed) {
			t.Errorf("Prepare: %v, want AdapterNotServedError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prepare still hashing /dev/zero after 10 s")
	}
}

// TestTierReportsAdapterFormat: a persona whose adapter the server cannot
// load at all is reported with the problem, not as plainly cold (doctor
// said "all well" for a persona that could never speak).
func TestTierReportsAdapterFormat(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", peftDirFixture(t))
	attachAdapter(t, db, "ROBIN", writeFile(t, "robin.gguf", gguftest.TinyLoRA(2)))
	brick, robin := loadPersona(t, db, "BRICK"), loadPersona(t, db, "ROBIN")
	ollamaFake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Models: []string{"tiny"}})
	llamaFake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.LlamaServer})
	vllmFake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.VLLM, RuntimeLoRA: true})
	for _, tt := range []struct {
		server *Server
		p      *Persona
		want   string
	}{
		{connectTo(t, ollamaFake.URL, APIOllama, "tiny"), brick, "Ollama loads gguf adapters"},
		{connectTo(t, llamaFake.URL, APILlamaServer, ""), brick, "llama-server loads gguf adapters"},
		{connectTo(t, vllmFake.URL, APIVLLM, ""), robin, "vLLM loads peft adapters"},
	} {
		pl := tierOf(t, NewManager(db, tt.server, t.TempDir()), tt.p)
		if pl.Tier != TierCold || !strings.Contains(pl.Problem, tt.want) {
			t.Errorf("%s on %s: %+v, want cold with %q", tt.p.Name, tt.server.API, pl, tt.want)
		}
	}
}

// TestObserveOllamaWithoutModel: on Ollama, a persona that names no model
// when batos has no default and the image no base model is reported as
// unable to speak (doctor said "all well"); with a base model in the
// image it is placed on the model batos creates from it.
func TestObserveOllamaWithoutModel(t *testing.T) {
	db, _ := testImage(t)
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Models: []string{"tiny"}})
	m := NewManager(db, connectTo(t, fake.URL, APIOllama, ""), "")
	if pl := tierOf(t, m, loadPersona(t, db, "ROBIN")); !strings.Contains(pl.Problem, "no model") {
		t.Errorf("no model anywhere: %+v, want a problem", pl)
	}
	base, err := ImportWeights(t.Context(), db, writeFile(t, "tiny.gguf", gguftest.TinyLlama(1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pl := tierOf(t, m, loadPersona(t, db, "ROBIN")); pl.Problem != "" || pl.Where != weightsModel(&Weights{Blob: base.Blob}) {
		t.Errorf("with a base model in the image: %+v", pl)
	}
}
