package main

import (
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/store/bolt"
)

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
