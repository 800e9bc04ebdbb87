package main

import (
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store/bolt"
)

// TestPersonaSetRefusesBeforeStoring: an edit that will be refused (no
// such persona, a bad temperature, an empty -adapter) is refused before
// the adapter is copied into the image. Before, the blob was stored and
// then the edit failed.
func TestPersonaSetRefusesBeforeStoring(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img.db")
	mustRun(t, "-image", img, "image", "init")
	lora := writeTemp(t, "lora.gguf", gguftest.TinyLoRA(3))
	before := blobCount(t, img)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"NOPE", "-adapter", lora}, 1, "-create makes one"},
		{[]string{"BRICK", "-adapter", lora, "-temperature", "5"}, 1, "want a number from 0 to 2"},
		{[]string{"BRICK", "-adapter", ""}, 2, "-adapter needs a GGUF file"},
		{[]string{"NOPE", "-role", "r"}, 1, "-create makes one"},
	} {
		code, _, errOut := batos(t, append([]string{"-image", img, "persona", "set"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("persona set %q: exit %d, %q; want exit %d saying %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	if after := blobCount(t, img); after != before {
		t.Errorf("%v blobs after refused edits, want %v", after, before)
	}
	mustRun(t, "-image", img, "persona", "set", "-create", "NOPE", "-adapter", lora)
}

// TestDoctorBadServerURL: a mistyped -llm is a usage error, not "the
// server did not answer".
func TestDoctorBadServerURL(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img.db")
	mustRun(t, "-image", img, "image", "init")
	for _, u := range []string{"ftp://x", "127.0.0.1:11434", "http://"} {
		code, _, errOut := batos(t, "-image", img, "doctor", "-llm", u)
		if code != 2 || !strings.Contains(errOut, "want http://HOST:PORT") {
			t.Errorf("doctor -llm %s: exit %d, %q; want a usage error", u, code, errOut)
		}
	}
}

// TestModelImportProgressPastTotal: a copy that runs past the size it
// announced (a PEFT directory's archive is larger than its files) draws a
// full bar. Before, the bar's padding had a negative length and the
// import panicked at its end, on a terminal only.
func TestModelImportProgressPastTotal(t *testing.T) {
	var out strings.Builder
	p := &byteProgress{e: &env{stderr: &out}, label: "importing", on: true}
	p.update(0, 1000)
	p.update(3000, 1000)
	p.done()
	if !strings.Contains(out.String(), "100%") {
		t.Errorf("progress %q, want a full bar", out.String())
	}
}

// TestDoctorAPIOtherThanRecorded: "-llm-api ollama" on an image that
// recorded a llama-server looks for Ollama. Before, it called the
// recorded llama-server's URL with Ollama's API and reported it down.
func TestDoctorAPIOtherThanRecorded(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img.db")
	mustRun(t, "-image", img, "image", "init")
	llama := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Flavor: llmtest.LlamaServer})
	s, err := bolt.Open(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = mind.SaveServerConfig(t.Context(), image.New(s, nil), mind.ServerConfig{URL: llama.URL, API: mind.APILlamaServer})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Models: []string{"tiny"}})
	saved := mind.DefaultEndpoints
	t.Cleanup(func() { mind.DefaultEndpoints = saved })
	mind.DefaultEndpoints = []mind.Endpoint{{API: mind.APIOllama, URL: fake.URL}, {API: mind.APILlamaServer, URL: "http://127.0.0.1:2"}}
	if _, out, _ := batos(t, "-image", img, "doctor"); !strings.Contains(out, "server:     llama-server at "+llama.URL) {
		t.Errorf("doctor without flags should use the recorded server:\n%s", out)
	}
	if _, out, _ := batos(t, "-image", img, "doctor", "-llm-api", "ollama", "-model", "tiny"); !strings.Contains(out, "server:     ollama at "+fake.URL) {
		t.Errorf("doctor -llm-api ollama should find Ollama:\n%s", out)
	}
}
