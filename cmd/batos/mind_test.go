package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/command"
	"batos/internal/gguf/gguftest"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/store/bolt"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// imageBlob reads a blob back from the image file.
func imageBlob(t *testing.T, img, digest string) []byte {
	t.Helper()
	d, err := store.ParseDigest(digest)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := s.OpenBlob(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func blobCount(t *testing.T, img string) float64 {
	t.Helper()
	var stats map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "stats", "-json")), &stats); err != nil {
		t.Fatal(err)
	}
	return stats["blobs"].(float64)
}

// TestModelAndAdapterRoundTrip: a generated GGUF model and LoRA adapter
// go into the image byte for byte, verify cleanly, and reach a fake
// Ollama as the same blobs; bad files are refused and nothing is stored.
func TestModelAndAdapterRoundTrip(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	model, lora := gguftest.TinyLlama(11), gguftest.TinyLoRA(11)

	before := blobCount(t, img)
	for name, data := range map[string][]byte{
		"truncated.gguf": model[:len(model)-1],
		"notgguf.gguf":   []byte("GGML but not really a model file, just text"),
		"adapter.gguf":   lora, // an adapter is not a base model
	} {
		code, _, errOut := batos(t, "-image", img, "model", "import", writeTemp(t, name, data))
		if code != 1 || !strings.Contains(errOut, "not a usable GGUF file") {
			t.Errorf("model import %s: exit %d, %q; want exit 1 saying it is not a usable GGUF", name, code, errOut)
		}
	}
	code, _, errOut := batos(t, "-image", img, "persona", "set", "BRICK", "-adapter", writeTemp(t, "short.gguf", lora[:len(lora)-8]))
	if code != 1 || !strings.Contains(errOut, "not a usable GGUF file") {
		t.Errorf("persona set -adapter truncated: exit %d, %q", code, errOut)
	}
	if after := blobCount(t, img); after != before {
		t.Errorf("refused imports stored %v blobs", after-before)
	}

	out := mustRun(t, "-image", img, "model", "import", writeTemp(t, "tiny.gguf", model))
	if !strings.Contains(out, "imported tiny.gguf: llama model") {
		t.Errorf("model import: %q", out)
	}
	var shown struct{ Digest string }
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "model", "show", "-json")), &shown); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := batos(t, "-image", img, "persona", "set", "BRICK", "-adapter", writeTemp(t, "wrong.gguf", gguftest.MismatchedLoRA(1))); code != 1 || !strings.Contains(errOut, "does not fit the base model") {
		t.Errorf("mismatched adapter: exit %d, %q", code, errOut)
	}
	out = mustRun(t, "-image", img, "persona", "set", "-temperature", "0.3", "BRICK", "-adapter", writeTemp(t, "brick.gguf", lora))
	if !strings.Contains(out, "persona BRICK: set adapter, temperature") {
		t.Errorf("persona set: %q", out)
	}
	var brick command.PersonaView
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "persona", "show", "BRICK", "-json", "-llm", "http://127.0.0.1:1")), &brick); err != nil {
		t.Fatal(err)
	}
	if brick.AdapterFile != "brick.gguf" || *brick.Temperature != 0.3 {
		t.Errorf("persona show: %+v", brick)
	}
	if !bytes.Equal(imageBlob(t, img, shown.Digest), model) || !bytes.Equal(imageBlob(t, img, brick.Adapter), lora) {
		t.Fatal("blobs in the image differ from the files")
	}
	if out := mustRun(t, "-image", img, "verify"); !strings.Contains(out, "ok") {
		t.Errorf("verify: %q", out)
	}

	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("OK"), AdapterFits: llmtest.GGUFFits})
	llmFlags := []string{"-llm", fake.URL, "-llm-api", "ollama"}
	list := mustRun(t, append([]string{"-image", img, "persona", "list"}, llmFlags...)...)
	if !strings.Contains(list, "brick.gguf") || !regexpLine(list, "BRICK", "cold") {
		t.Errorf("persona list before warming:\n%s", list)
	}
	out = mustRun(t, append([]string{"-image", img, "persona", "warm", "BRICK"}, llmFlags...)...)
	if !strings.Contains(out, "BRICK: ready") {
		t.Errorf("persona warm: %q", out)
	}
	for _, d := range []struct {
		digest string
		data   []byte
	}{{shown.Digest, model}, {brick.Adapter, lora}} {
		if got, ok := fake.Blob(d.digest); !ok || !bytes.Equal(got, d.data) {
			t.Errorf("blob %s did not reach the server intact", d.digest)
		}
	}
	list = mustRun(t, append([]string{"-image", img, "persona", "list"}, llmFlags...)...)
	if !regexpLine(list, "BRICK", "hot") {
		t.Errorf("persona list after warming:\n%s", list)
	}
}

// regexpLine reports whether some line starts with first and contains word.
func regexpLine(text, first, word string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, first) && strings.Contains(" "+line+" ", " "+word+" ") {
			return true
		}
	}
	return false
}

func TestDoctorWithoutServer(t *testing.T) {
	saved := mind.DefaultEndpoints
	t.Cleanup(func() { mind.DefaultEndpoints = saved })
	mind.DefaultEndpoints = []mind.Endpoint{{API: mind.APIOllama, URL: "http://127.0.0.1:1"}, {API: mind.APILlamaServer, URL: "http://127.0.0.1:2"}}
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	code, out, _ := batos(t, "-image", img, "doctor")
	if code != 1 {
		t.Errorf("doctor without a server: exit %d, want 1", code)
	}
	var paragraph string
	for _, p := range strings.Split(out, "\n\n") {
		if strings.Contains(p, "No inference server is reachable") {
			paragraph = p
		}
	}
	for _, want := range []string{"ollama at http://127.0.0.1:1 (connection refused", "llama-server at http://127.0.0.1:2", "ollama serve", "llama-server -m", "batos run -llm"} {
		if !strings.Contains(paragraph, want) {
			t.Errorf("doctor's paragraph lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(strings.TrimSpace(paragraph), "\n") != 0 {
		t.Errorf("the no-server explanation is not one paragraph:\n%s", paragraph)
	}
	// Without an image at all, doctor still checks the server.
	code, out, _ = batos(t, "-image", filepath.Join(t.TempDir(), "none.db"), "doctor")
	if code != 1 || !strings.Contains(out, "No inference server is reachable") || !strings.Contains(out, "no image at") {
		t.Errorf("doctor without an image: exit %d\n%s", code, out)
	}
}

func TestDoctorWithServer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: llmtest.Texts("OK"), Models: []string{"tiny"}})
	out := mustRun(t, "-image", img, "doctor", "-llm", fake.URL, "-llm-api", "ollama", "-model", "tiny")
	for _, want := range []string{"server:     ollama at " + fake.URL, "tiny", "BRICK", "all well"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}
	code, out, _ := batos(t, "-image", img, "doctor", "-llm", fake.URL, "-llm-api", "ollama", "-model", "absent")
	if code != 1 || !strings.Contains(out, "default model absent is not on the server") {
		t.Errorf("doctor with a missing model: exit %d\n%s", code, out)
	}
	var rep doctorReport
	_, out, _ = batos(t, "-image", img, "doctor", "-json", "-llm", fake.URL, "-llm-api", "ollama", "-model", "tiny")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Server == nil || len(rep.Personas) != 4 {
		t.Errorf("doctor -json: %v\n%s", err, out)
	}
}

// An adapter for a persona that names its own server model is not held
// to pLLM's base model; -create alone makes an empty persona; -json
// gives the model without prose.
func TestPersonaOwnModelAndCreate(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	mustRun(t, "-image", img, "model", "import", writeTemp(t, "tiny.gguf", gguftest.TinyLlama(21)))
	wrong := writeTemp(t, "other-base.gguf", gguftest.MismatchedLoRA(21))
	if code, _, errOut := batos(t, "-image", img, "persona", "set", "BRICK", "-adapter", wrong); code != 1 || !strings.Contains(errOut, "does not fit") {
		t.Errorf("misfit on the default base: exit %d %q", code, errOut)
	}
	mustRun(t, "-image", img, "persona", "set", "BRICK", "-model", "other:7b", "-adapter", wrong)
	if out := mustRun(t, "-image", img, "persona", "set", "SCOUT", "-create"); !strings.Contains(out, "persona SCOUT: created") {
		t.Errorf("create: %q", out)
	}
	var listed struct{ Personas []command.PersonaView }
	if err := json.Unmarshal([]byte(mustRun(t, "-image", img, "persona", "list", "-json", "-llm", "http://127.0.0.1:1")), &listed); err != nil {
		t.Fatal(err)
	}
	models := map[string]command.PersonaView{}
	for _, p := range listed.Personas {
		models[p.Name] = p
	}
	if b := models["BRICK"]; b.Model != "other:7b" || b.ModelIsDefault || b.AdapterFile != "other-base.gguf" {
		t.Errorf("BRICK %+v", b)
	}
	if r := models["ROBIN"]; r.Model != "" || !r.ModelIsDefault {
		t.Errorf("ROBIN %+v: want the default model, unnamed", r)
	}
	if _, ok := models["SCOUT"]; !ok {
		t.Errorf("SCOUT not listed: %v", listed.Personas)
	}
}

// TestModelImportProgressPastTotal: a copy that runs past the size it
// announced (a PEFT directory's archive is larger than its files) draws a
// full bar. Before, the bar's padding had a negative length and the
// import panicked at its end, on a terminal only.
func TestModelImportProgressPastTotal(t *testing.T) {
	var out strings.Builder
	p := newByteProgress(&env{stderr: &out}, "importing")
	p.on = true // as on a terminal
	p.update(0, 1000)
	p.update(3000, 1000)
	p.done()
	if !strings.Contains(out.String(), "100%") {
		t.Errorf("progress %q, want a full bar", out.String())
	}
}

// TestModelImportThroughTheServer: while batos run holds the image, model
// import and show go through its bridge (the server reads the file), a
// bad file is refused as it is locally, and the import is published as a
// commit.model event.
func TestModelImportThroughTheServer(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	_, ev, stop := startRun(t, img)
	defer stop()
	sub, err := zmq.NewSocket(zmq.SUB)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sub.SetLinger(0)
	sub.SetRcvtimeo(10 * time.Second)
	sub.SetSubscribe("commit.model")
	if err := sub.Connect(ev); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the SUB joins before the import publishes
	if code, _, errOut := batos(t, "-image", img, "model", "import", writeTemp(t, "notgguf.gguf", []byte("not a model"))); code != 1 || !strings.Contains(errOut, "not a usable GGUF file") {
		t.Errorf("a bad model through the server: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "-image", img, "model", "show"); !strings.Contains(out, "no base model") {
		t.Errorf("model show before the import: %q", out)
	}
	out := mustRun(t, "-image", img, "model", "import", writeTemp(t, "tiny.gguf", gguftest.TinyLlama(5)))
	if !strings.Contains(out, "imported tiny.gguf: llama model") {
		t.Errorf("model import through the server: %q", out)
	}
	if out := mustRun(t, "-image", img, "model", "show"); !strings.Contains(out, "tiny.gguf: llama model") {
		t.Errorf("model show after the import: %q", out)
	}
	frames, err := sub.RecvMessageBytes(0)
	if err != nil || string(frames[0]) != "commit.model" {
		t.Errorf("no commit.model event: %v %q", err, frames)
	}
}
