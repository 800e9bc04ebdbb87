package mind

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/llm/openai"
)

// Regression tests from a hostile review: each names what went wrong.

// TestConcurrentAsksRecordEveryCall: concurrent calls of one persona
// create its model once and every call is counted. Before, the records
// conflicted past the image's retries and about a third were lost.
func TestConcurrentAsksRecordEveryCall(t *testing.T) {
	db, _ := testImage(t)
	attachAdapter(t, db, "BRICK", writeFile(t, "brick.gguf", gguftest.TinyLoRA(7)))
	model := &llmtest.Model{Respond: func(context.Context, *llm.ChatRequest) (llmtest.Reply, error) {
		return llmtest.Reply{Text: "ok", Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 2}}, nil
	}}
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: model, Models: []string{"tiny"}})
	m := New(db, connectTo(t, fake.URL, APIOllama, "tiny"), nil)
	const n = 32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := m.Ask(t.Context(), Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	creates := 0
	for _, r := range fake.Requests() {
		if r.Path == "/api/create" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d creates, want 1", creates)
	}
	u := loadPersona(t, db, "BRICK").Usage
	if u.Calls != n || u.Failures != 0 || u.PromptTokens != 3*n || u.CompletionTokens != 2*n {
		t.Errorf("usage %+v, want %d calls of 3 and 2 tokens", u, n)
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

// TestMisfitAdapterStoresNothing: an adapter refused because it does not
// fit the base model leaves no blob behind.
func TestMisfitAdapterStoresNothing(t *testing.T) {
	db, s := testImage(t)
	ctx := t.Context()
	if _, err := ImportWeights(ctx, db, writeFile(t, "tiny.gguf", gguftest.TinyLlama(1)), nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ImportAdapter(ctx, db, writeFile(t, "wrong.gguf", gguftest.MismatchedLoRA(1)), nil); !errors.Is(err, ErrNotGGUF) {
		t.Fatalf("misfit adapter: %v, want ErrNotGGUF", err)
	}
	after, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Blobs != before.Blobs || after.BlobBytes != before.BlobBytes {
		t.Errorf("blobs %d (%d bytes) after a refused import, want %d (%d bytes)", after.Blobs, after.BlobBytes, before.Blobs, before.BlobBytes)
	}
}

// TestPEFTFromLinkedSnapshot: a Hugging Face cache snapshot is a
// directory of links; it imports as the same blob as the files
// themselves. Before, it was refused as having no adapter_config.json.
func TestPEFTFromLinkedSnapshot(t *testing.T) {
	db, _ := testImage(t)
	src := peftDirFixture(t)
	direct, err := ImportAdapter(t.Context(), db, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := t.TempDir()
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors", "README.md"} {
		if err := os.Symlink(filepath.Join(src, name), filepath.Join(snap, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/dev/zero", filepath.Join(snap, "zero")); err != nil {
		t.Fatal(err)
	}
	linked, err := ImportAdapter(t.Context(), db, snap, nil)
	if err != nil {
		t.Fatalf("linked snapshot: %v", err)
	}
	if linked.Blob != direct.Blob {
		t.Errorf("linked snapshot stored as %v, the files themselves as %v", linked.Blob, direct.Blob)
	}
}

// sparseTar is a tar whose one entry, a PAX sparse file of a few bytes,
// claims size bytes of content.
func sparseTar(t *testing.T, name string, size int64) []byte {
	t.Helper()
	record := func(k, v string) string {
		body := " " + k + "=" + v + "\n"
		for n := len(body); ; n++ {
			if s := fmt.Sprint(n) + body; len(s) == n {
				return s
			}
		}
	}
	pax := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
		record("GNU.sparse.name", name) + record("GNU.sparse.realsize", fmt.Sprint(size))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "paxheader", Mode: 0o644, Size: int64(len(pax)), Format: tar.FormatUSTAR})
	tw.Write([]byte(pax))
	sparseMap := "1\n0\n0\n" // one region, at 0, of 0 bytes: all hole
	tw.WriteHeader(&tar.Header{Name: "x", Mode: 0o644, Size: 512, Format: tar.FormatUSTAR})
	tw.Write([]byte(sparseMap + strings.Repeat("\x00", 512-len(sparseMap))))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	// Turn the first entry into a PAX extended header and fix its checksum.
	b[156] = 'x'
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// TestUntarFlatHostileArchives: a crafted PEFT blob can neither write
// outside the directory nor more than its own size. Before, a 3 KB
// archive with a sparse entry wrote 16 GiB of zeros per entry.
func TestUntarFlatHostileArchives(t *testing.T) {
	archive := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
		tw.Close()
		return buf.Bytes()
	}
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}
	}
	for name, data := range map[string][]byte{
		"sparse":    sparseTar(t, "adapter_model.safetensors", 1<<34),
		"dotdot":    archive(reg("../evil")),
		"absolute":  archive(reg("/tmp/evil")),
		"nested":    archive(reg("a/../../evil")),
		"hidden":    archive(reg(".evil")),
		"symlink":   archive(&tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink}),
		"hardlink":  archive(&tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeLink}),
		"directory": archive(&tar.Header{Name: "evil/", Mode: 0o755, Typeflag: tar.TypeDir}),
		"duplicate": archive(reg("a"), reg("a")),
	} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "out")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := untarFlat(bytes.NewReader(data), dir, int64(len(data))); err == nil {
			t.Errorf("%s: unpacked, want an error", name)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("%s: wrote beside the directory: %v", name, entries)
		}
		filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() && info.Size() > int64(len(data)) {
				t.Errorf("%s: wrote %s of %d bytes from a %d-byte archive", name, path, info.Size(), len(data))
			}
			return nil
		})
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

// TestMaterialiseDirConcurrently: personas sharing one PEFT adapter
// unpack it at the same time; every one gets the directory. Before, the
// losers of the rename failed with "directory not empty".
func TestMaterialiseDirConcurrently(t *testing.T) {
	db, _ := testImage(t)
	imp, err := ImportAdapter(t.Context(), db, peftDirFixture(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(db, &Server{API: APIVLLM}, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			p := &Persona{Name: fmt.Sprint("P", i), Adapter: imp.Blob, AdapterFormat: FormatPEFT}
			dir, err := m.materialiseDir(t.Context(), p)
			if err != nil {
				t.Errorf("persona %d: %v", i, err)
			} else if _, err := os.Stat(filepath.Join(dir, "adapter_config.json")); err != nil {
				t.Errorf("persona %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// TestCreatePersonaNamedLikeASlot: a persona may not be called after the
// personas object's own slots. Before, "-create name" replaced the
// object's name with a persona nobody could list.
func TestCreatePersonaNamedLikeASlot(t *testing.T) {
	db, _ := testImage(t)
	if err := EditPersona(t.Context(), db, "name", Edit{Create: true, Role: ptr("x")}); err == nil {
		t.Fatal("created a persona called name")
	}
	err := db.View(t.Context(), func(tx *image.Tx) error {
		ps, err := personasObject(tx)
		if err != nil {
			return err
		}
		if v, _ := ps.Get("name"); !image.Equal(v, image.String("personas")) {
			t.Errorf("personas' name slot is %s", image.Repr(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := EditPersona(t.Context(), db, "name", Edit{Role: ptr("x")}); !errors.Is(err, ErrNoPersona) {
		t.Errorf("editing persona name: %v, want ErrNoPersona", err)
	}
}

// TestUsageLatencyKeepsFractions: the latency total does not lose the
// fraction of a millisecond of every call. Before, ten calls of 0.9 ms
// summed to 0.
func TestUsageLatencyKeepsFractions(t *testing.T) {
	db, _ := testImage(t)
	for range 10 {
		if err := Record(t.Context(), db, Call{Persona: "BRICK", Outcome: "ok", Latency: 900 * time.Microsecond}); err != nil {
			t.Fatal(err)
		}
	}
	if got := loadPersona(t, db, "BRICK").Usage.Latency; got != 9*time.Millisecond {
		t.Errorf("latency total %v, want 9ms", got)
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

// TestShortCutsBetweenRunes: a call's outcome in a transaction note is
// cut between runes, never inside one.
func TestShortCutsBetweenRunes(t *testing.T) {
	got := short(strings.Repeat("é", 50), 81)
	if !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, strings.Repeat("é", 40)) || strings.ContainsRune(got, '\uFFFD') || len(got) != 80+len("…") {
		t.Errorf("short: %q", got)
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

// TestPEFTHiddenFilesLeftOut: a downloaded adapter directory's hidden
// files (.gitattributes) stay out of the blob. Before, they were stored,
// and unpacking the blob for vLLM then refused them: the adapter could
// never be loaded.
func TestPEFTHiddenFilesLeftOut(t *testing.T) {
	db, _ := testImage(t)
	dir := peftDirFixture(t)
	if err := os.WriteFile(filepath.Join(dir, ".gitattributes"), []byte("*.safetensors filter=lfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	imp, err := ImportAdapter(t.Context(), db, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(db, &Server{API: APIVLLM}, t.TempDir())
	out, err := m.materialiseDir(t.Context(), &Persona{Name: "X", Adapter: imp.Blob, AdapterFormat: FormatPEFT})
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, ".gitattributes")); !os.IsNotExist(err) {
		t.Errorf(".gitattributes unpacked: %v", err)
	}
}
