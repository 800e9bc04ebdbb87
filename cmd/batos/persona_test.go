package main

import (
	"batos/internal/gguf/gguftest"
	"batos/internal/llm/llmtest"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/llm"
)

// TestPersonaAndDoctorThroughRun: while batos run holds the image,
// persona set, warm, list and show and doctor run through it, and list,
// show and doctor print what they print once it stopped and the image is
// opened here. The adapter's path is sent whole: batos run reads it.
func TestPersonaAndDoctorThroughRun(t *testing.T) {
	img := filepath.Join(t.TempDir(), "live_image.db")
	mustRun(t, "-image", img, "image", "init")
	mustRun(t, "-image", img, "model", "import", writeTemp(t, "tiny.gguf", gguftest.TinyLlama(31)))
	ok := func(context.Context, *llm.ChatRequest) (llmtest.Reply, error) { return llmtest.Reply{Text: "OK"}, nil }
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: &llmtest.Model{Respond: ok}, Models: []string{"tiny"}, AdapterFits: llmtest.GGUFFits})
	server := []string{"-llm", fake.URL, "-llm-api", "ollama", "-model", "tiny"}
	lora := writeTemp(t, "brick.gguf", gguftest.TinyLoRA(31))
	t.Chdir(filepath.Dir(lora)) // a relative -adapter is sent as an absolute path

	_, _, stop := startRun(t, img, server...)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	out := mustRun(t, "-image", img, "persona", "set", "BRICK", "-adapter", filepath.Base(lora), "-temperature", "0.4", "-role", "builds")
	if !strings.Contains(out, "persona BRICK: set role, adapter, temperature") || !strings.Contains(out, "adapter brick.gguf (gguf") {
		t.Errorf("persona set through batos run: %q", out)
	}
	code, _, errOut := batos(t, "-image", img, "persona", "set", "NOPE", "-role", "r")
	if code != 1 || !strings.Contains(errOut, "-create makes one") {
		t.Errorf("persona set NOPE through batos run: exit %d, %q", code, errOut)
	}
	code, _, errOut = batos(t, "-image", img, "persona", "set", "BRICK", "-temperature", "5")
	if code != 1 || !strings.Contains(errOut, "want a number from 0 to 2") {
		t.Errorf("persona set -temperature 5 through batos run: exit %d, %q", code, errOut)
	}
	if list := mustRun(t, "-image", img, "persona", "list"); !regexpLine(list, "BRICK", "cold") {
		t.Errorf("persona list through batos run before warming:\n%s", list)
	}
	if out := mustRun(t, "-image", img, "persona", "warm", "BRICK"); !strings.Contains(out, "BRICK: ready on ollama at "+fake.URL) {
		t.Errorf("persona warm through batos run: %q", out)
	}
	commands := [][]string{
		{"persona", "list"},
		{"persona", "list", "-json"},
		{"persona", "show", "BRICK"},
		{"persona", "show", "BRICK", "-json"},
		{"doctor"},
		{"doctor", "-json"},
	}
	type output struct {
		Code        int
		Out, Stderr string
	}
	remote := map[string]output{}
	for _, args := range commands {
		code, out, errOut := batos(t, append(append([]string{"-image", img}, args...), server...)...)
		if !strings.Contains(errOut, "batos run serves") {
			t.Errorf("%s through batos run with -llm: stderr %q, want a note that its mind answers", args, errOut)
		}
		remote[strings.Join(args, " ")] = output{Code: code, Out: out}
	}
	if !regexpLine(remote["persona list"].Out, "BRICK", "hot") || !strings.Contains(remote["doctor"].Out, "base model: tiny.gguf") {
		t.Errorf("through batos run:\n%s\n%s", remote["persona list"].Out, remote["doctor"].Out)
	}
	stop()
	stopped = true

	for _, args := range commands {
		code, out, errOut := batos(t, append(append([]string{"-image", img}, args...), server...)...)
		want := output{Code: code, Out: out}
		if diff := cmp.Diff(remote[strings.Join(args, " ")], want); diff != "" {
			t.Errorf("%s (-through batos run +here):\n%s\nstderr here: %s", args, diff, errOut)
		}
	}
}

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
