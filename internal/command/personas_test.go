package command_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"batos/internal/command"
	"batos/internal/gguf/gguftest"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/mind"
	"batos/internal/protocol"
	"batos/internal/uvm"
	"batos/internal/zmqbridge"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// openLocal opens a new image with a base model and its own Local.
func openLocal(t *testing.T) (*uvm.UVM, *command.Local) {
	t.Helper()
	ctx := context.Background()
	u, _, err := uvm.Open(ctx, filepath.Join(t.TempDir(), "img"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	if _, err := mind.ImportWeights(ctx, u.DB(), writeFile(t, "tiny.gguf", gguftest.TinyLlama(5)), nil); err != nil {
		t.Fatal(err)
	}
	return u, command.NewLocal(u, "tester")
}

// serve serves svc on a bridge and returns a Remote and a raw client of
// it.
func serve(t *testing.T, svc command.Service) (*protocol.Remote, *zmqbridge.Client) {
	t.Helper()
	s, err := zmqbridge.Listen(svc, &zmqbridge.Options{RequestAddr: "tcp://127.0.0.1:*", EventAddr: "tcp://127.0.0.1:*"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	addr, _ := s.Endpoints()
	dial := func() *zmqbridge.Client {
		c, err := zmqbridge.Dial(addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return protocol.NewRemote(dial(), os.Getpid()), dial()
}

// sameJSON fails unless a and b print the same as JSON: what the CLI's
// -json shows, and, through its text forms, what it prints.
func sameJSON(t *testing.T, what string, remote, local any) {
	t.Helper()
	r, err := json.MarshalIndent(remote, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	l, err := json.MarshalIndent(local, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(r), string(l)); diff != "" {
		t.Errorf("%s (-remote +local):\n%s", what, diff)
	}
}

func ok(context.Context, *llm.ChatRequest) (llmtest.Reply, error) {
	return llmtest.Reply{Text: "OK"}, nil
}

// TestPersonasRemoteAsLocal: the persona commands over the bridge answer
// what Local answers: the report with tiers observed on a fake Ollama,
// options, recent calls and the base model; warming; an edit with an
// adapter the server reads.
func TestPersonasRemoteAsLocal(t *testing.T) {
	ctx := context.Background()
	u, local := openLocal(t)
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: &llmtest.Model{Respond: ok}, Models: []string{"tiny"}, AdapterFits: llmtest.GGUFFits})
	server, err := mind.Connect(ctx, mind.ServerConfig{URL: fake.URL, API: mind.APIOllama, Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	m := mind.New(u.DB(), server, &mind.Options{CacheDir: t.TempDir()})
	local.SetMind(func(context.Context) (*mind.Mind, error) { return m, nil }, "")
	if _, err := local.Eval(ctx, command.EvalRequest{Code: `personas.ROBIN.options = {"seed": 1234567890123, "top_p": 1.0, "max_tokens": 64, "stop": ["END"]}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ask(ctx, mind.Request{Persona: "ROBIN", Messages: []llm.Message{{Role: "user", Content: "hello"}}}); err != nil {
		t.Fatal(err)
	}
	remote, _ := serve(t, local)

	lora := writeFile(t, "brick.gguf", gguftest.TinyLoRA(5))
	t0 := 0.25
	c, err := remote.EditPersona(ctx, "BRICK", command.PersonaEdit{Adapter: lora, Temperature: &t0})
	if err != nil || c.Adapter == nil || c.Adapter.File != "brick.gguf" || c.Adapter.Blob.Size != int64(len(gguftest.TinyLoRA(5))) {
		t.Fatalf("remote edit with an adapter: %+v, %v", c.Adapter, err)
	}

	for _, only := range []string{"", "ROBIN", "BRICK"} {
		got, err := remote.Personas(ctx, only)
		if err != nil {
			t.Fatalf("remote personas %q: %v", only, err)
		}
		want, err := local.Personas(ctx, only)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "personas "+only, got, want)
	}
	rep, _ := local.Personas(ctx, "")
	if rep.BaseModel == nil || rep.BaseModel.File != "tiny.gguf" || rep.Server == "" || rep.Note != "" || len(rep.Personas) != 4 {
		t.Errorf("report: %+v", rep)
	}
	brick, _ := local.Personas(ctx, "BRICK")
	if v := brick.Personas[0]; v.Tier != "cold" || v.AdapterFile != "brick.gguf" || *v.Temperature != 0.25 {
		t.Errorf("BRICK before warming: %+v", v)
	}
	robin, _ := local.Personas(ctx, "ROBIN")
	if v := robin.Personas[0]; len(v.RecentCalls) != 1 || v.Usage.Calls != 1 || v.Options["seed"] != int64(1234567890123) {
		t.Errorf("ROBIN: %+v", v)
	}

	warmed, err := remote.WarmPersonas(ctx, []string{"BRICK"})
	if err != nil || len(warmed) != 1 || !warmed[0].Ready || !strings.HasPrefix(warmed[0].Model, "batos-brick-") {
		t.Fatalf("remote warm: %+v, %v", warmed, err)
	}
	again, err := local.WarmPersonas(ctx, []string{"BRICK"})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "warm", warmed, again)
	if brick, _ := remote.Personas(ctx, "BRICK"); brick.Personas[0].Tier != "hot" {
		t.Errorf("BRICK after warming: %+v", brick.Personas[0])
	}
}

// TestPersonasWithoutMind: without a mind the tiers are unknown and say
// so, and warming is refused as no_mind, locally and over the bridge.
func TestPersonasWithoutMind(t *testing.T) {
	ctx := context.Background()
	_, local := openLocal(t)
	remote, _ := serve(t, local)
	for name, svc := range map[string]command.Service{"local": local, "remote": remote} {
		rep, err := svc.Personas(ctx, "")
		if err != nil || rep.Note != "tiers unknown: no mind: no inference server has answered yet" || rep.Server != "" || len(rep.Personas) != 4 || rep.Personas[0].Tier != "-" {
			t.Errorf("%s personas without a mind: %+v, %v", name, rep, err)
		}
		if _, err := svc.WarmPersonas(ctx, nil); command.KindOf(err) != command.KindNoMind {
			t.Errorf("%s warm without a mind: %v, want no_mind", name, err)
		}
	}
}

// TestPersonaEditRefused: an edit that cannot be carried out is a
// bad_request or not_found, locally and over the bridge alike, and
// stores nothing.
func TestPersonaEditRefused(t *testing.T) {
	ctx := context.Background()
	u, local := openLocal(t)
	remote, _ := serve(t, local)
	str := func(s string) *string { return &s }
	num := func(f float64) *float64 { return &f }
	lora := writeFile(t, "lora.gguf", gguftest.TinyLoRA(5))
	notGGUF := writeFile(t, "not.gguf", []byte("GGML and then nothing at all"))
	for _, tt := range []struct {
		name string
		who  string
		edit command.PersonaEdit
		want command.Kind
	}{
		{"unknown persona", "NOPE", command.PersonaEdit{Role: str("r")}, command.KindNotFound},
		{"unknown persona with an adapter", "NOPE", command.PersonaEdit{Adapter: lora}, command.KindNotFound},
		{"temperature too high", "BRICK", command.PersonaEdit{Temperature: num(5), Adapter: lora}, command.KindBadRequest},
		{"temperature negative", "BRICK", command.PersonaEdit{Temperature: num(-1)}, command.KindBadRequest},
		{"temperature NaN", "BRICK", command.PersonaEdit{Temperature: num(math.NaN())}, command.KindBadRequest},
		{"nothing to change", "BRICK", command.PersonaEdit{}, command.KindBadRequest},
		{"no name", "", command.PersonaEdit{Role: str("r")}, command.KindBadRequest},
		{"relative adapter", "BRICK", command.PersonaEdit{Adapter: "lora.gguf"}, command.KindBadRequest},
		{"missing adapter", "BRICK", command.PersonaEdit{Adapter: "/nonexistent/lora.gguf"}, command.KindBadRequest},
		{"not an adapter", "BRICK", command.PersonaEdit{Adapter: notGGUF}, command.KindBadRequest},
		{"a model as adapter", "BRICK", command.PersonaEdit{Adapter: writeFile(t, "m.gguf", gguftest.TinyLlama(5))}, command.KindBadRequest},
		{"adapter that does not fit", "BRICK", command.PersonaEdit{Adapter: writeFile(t, "w.gguf", gguftest.MismatchedLoRA(5))}, command.KindBadRequest},
		{"adapter and none", "BRICK", command.PersonaEdit{Adapter: lora, ClearAdapter: true}, command.KindBadRequest},
		{"bad new name", "no such name!", command.PersonaEdit{Create: true}, command.KindBadRequest},
		{"name of a slot", "name", command.PersonaEdit{Create: true}, command.KindBadRequest},
	} {
		before, err := u.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, lerr := local.EditPersona(ctx, tt.who, tt.edit)
		_, rerr := remote.EditPersona(ctx, tt.who, tt.edit)
		if command.KindOf(lerr) != tt.want || command.KindOf(rerr) != tt.want {
			t.Errorf("%s: local %v (%s), remote %v (%s); want %s", tt.name, lerr, command.KindOf(lerr), rerr, command.KindOf(rerr), tt.want)
		} else if command.Message(lerr) != rerr.Error() {
			t.Errorf("%s: remote says %q, local %q", tt.name, rerr, lerr)
		}
		if after, _ := u.Stats(ctx); after.Blobs != before.Blobs || after.Transactions != before.Transactions {
			t.Errorf("%s: stored %d blobs, %d transactions", tt.name, after.Blobs-before.Blobs, after.Transactions-before.Transactions)
		}
	}
	for _, only := range []string{"NOPE", "name"} {
		if _, err := remote.Personas(ctx, only); command.KindOf(err) != command.KindNotFound {
			t.Errorf("persona_show %q: %v, want not_found", only, err)
		}
	}
	if _, err := remote.WarmPersonas(ctx, []string{"BRICK", "NOPE"}); command.KindOf(err) != command.KindNotFound {
		t.Errorf("persona_warm NOPE: %v, want not_found", err)
	}
}

// TestPersonaCommandsHostile: arguments of the wrong type or missing
// answer bad_request, and unknown personas not_found, never internal.
func TestPersonaCommandsHostile(t *testing.T) {
	ctx := context.Background()
	_, local := openLocal(t)
	_, c := serve(t, local)
	for _, tt := range []struct {
		command string
		args    map[string]any
		want    command.Kind
	}{
		{"persona_show", nil, command.KindBadRequest},
		{"persona_show", map[string]any{"name": int64(5)}, command.KindBadRequest},
		{"persona_show", map[string]any{"name": ""}, command.KindBadRequest},
		{"persona_show", map[string]any{"name": []any{"BRICK"}}, command.KindBadRequest},
		{"persona_show", map[string]any{"name": "NOPE"}, command.KindNotFound},
		{"persona_set", nil, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK"}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": true, "role": "r"}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "NOPE", "role": "r"}, command.KindNotFound},
		{"persona_set", map[string]any{"name": "BRICK", "role": int64(7)}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "system_prompt": map[string]any{}}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "model": 1.5}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "temperature": "hot"}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "temperature": int64(3)}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "temperature": 2.5}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "temperature": math.Inf(1)}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "adapter": int64(1)}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "adapter": "relative.gguf"}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "clear_adapter": "yes"}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "BRICK", "create": int64(1)}, command.KindBadRequest},
		{"persona_set", map[string]any{"name": "x y", "create": true}, command.KindBadRequest},
		{"persona_warm", map[string]any{"names": "BRICK"}, command.KindBadRequest},
		{"persona_warm", map[string]any{"names": []any{int64(1)}}, command.KindBadRequest},
		{"persona_warm", map[string]any{"names": []any{"NOPE"}}, command.KindNotFound},
	} {
		_, err := c.Call(ctx, tt.command, tt.args)
		if got := command.KindOf(err); got != tt.want {
			t.Errorf("%s %v: %v (%s), want %s", tt.command, tt.args, err, got, tt.want)
		}
	}
	// What did pass changed nothing it should not have.
	rep, err := local.Personas(ctx, "BRICK")
	if err != nil || rep.Personas[0].Temperature == nil || *rep.Personas[0].Temperature > 2 {
		t.Errorf("BRICK after hostile edits: %+v, %v", rep, err)
	}
}
