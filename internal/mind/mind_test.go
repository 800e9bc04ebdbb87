package mind

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"batos/internal/gguf/gguftest"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

func TestAskRecordsEveryCall(t *testing.T) {
	db, _ := testImage(t)
	ctx := t.Context()
	client := llmtest.NewModel(
		llmtest.Reply{Text: `{"intent": "greet"}`, Usage: llm.Usage{PromptTokens: 12, CompletionTokens: 5}},
		llmtest.Reply{Err: &llm.APIError{Op: "POST /v1/chat/completions", Status: 500, Message: "out of memory"}},
	)
	clock := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	m := New(db, &Server{API: APIOpenAI, DefaultModel: "tiny", Client: client}, &Options{Now: func() time.Time { return clock }})
	if err := EditPersona(ctx, db, "BRICK", Edit{Temperature: ptr(0.2)}); err != nil {
		t.Fatal(err)
	}
	var streamed strings.Builder
	ans, err := m.Ask(ctx, Request{
		Persona:  "BRICK",
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "mission"}},
		Schema:   []byte(`{"type":"object"}`),
		Stream:   func(c llm.Chunk) error { streamed.WriteString(c.Text); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Text != `{"intent": "greet"}` || streamed.String() != ans.Text {
		t.Errorf("answer %q, streamed %q", ans.Text, streamed.String())
	}
	calls := client.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	req := calls[0]
	if req.Model != "tiny" || len(req.Messages) != 2 || req.Messages[0].Role != llm.RoleSystem || req.Messages[0].Content != "You are BRICK." ||
		string(req.Schema) != `{"type":"object"}` || req.Options.Temperature == nil || *req.Options.Temperature != 0.2 {
		t.Errorf("request %+v: want model tiny, BRICK's system prompt first, the schema, temperature 0.2", req)
	}
	if _, err := m.Ask(ctx, Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "again"}}}); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("second ask: %v, want the server's message", err)
	}
	if _, err := m.Ask(ctx, Request{Persona: "NOBODY"}); !errors.Is(err, ErrNoPersona) {
		t.Errorf("unknown persona: %v, want ErrNoPersona", err)
	}
	var p *Persona
	var recent []Call
	err = db.View(ctx, func(tx *image.Tx) (err error) {
		if p, err = LoadPersona(tx, "BRICK"); err != nil {
			return err
		}
		recent, err = RecentCalls(tx, "BRICK")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Usage{Calls: 2, Failures: 1, PromptTokens: 12, CompletionTokens: 5}
	if got := p.Usage; got.Calls != want.Calls || got.Failures != want.Failures || got.PromptTokens != want.PromptTokens || got.CompletionTokens != want.CompletionTokens {
		t.Errorf("usage %+v, want %+v", got, want)
	}
	if len(recent) != 2 || !recent[0].OK() || recent[0].Model != "tiny" || recent[0].PromptTokens != 12 || !recent[0].At.Equal(clock) ||
		recent[1].OK() || !strings.Contains(recent[1].Outcome, "out of memory") {
		t.Errorf("recent calls %+v", recent)
	}
}

func TestRecentCallsBounded(t *testing.T) {
	db, _ := testImage(t)
	for i := range recentCalls + 10 {
		if err := Record(t.Context(), db, Call{Persona: "ROBIN", Model: "m", Outcome: "ok", PromptTokens: i}); err != nil {
			t.Fatal(err)
		}
	}
	var recent []Call
	var p *Persona
	err := db.View(t.Context(), func(tx *image.Tx) (err error) {
		if p, err = LoadPersona(tx, "ROBIN"); err != nil {
			return err
		}
		recent, err = RecentCalls(tx, "")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != recentCalls || recent[0].PromptTokens != 10 {
		t.Errorf("%d recent calls starting at %d, want %d starting at 10", len(recent), recent[0].PromptTokens, recentCalls)
	}
	if p.Usage.Calls != recentCalls+10 {
		t.Errorf("usage counts %d calls, want %d", p.Usage.Calls, recentCalls+10)
	}
}

func TestNoModelIsExplained(t *testing.T) {
	db, _ := testImage(t)
	m := New(db, &Server{API: APIOpenAI, Client: llmtest.Texts("x")}, nil)
	_, err := m.Ask(t.Context(), Request{Persona: "BRICK"})
	if !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "persona BRICK: give the persona a model") || strings.Contains(err.Error(), "batos ") {
		t.Errorf("Ask with no model: %v, want ErrNoModel saying how to set one", err)
	}
}

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
	// Every call counts, the adapter's one-token warm-up too.
	u := loadPersona(t, db, "BRICK").Usage
	if u.Calls != n+1 || u.Failures != 0 || u.PromptTokens != 3*(n+1) || u.CompletionTokens != 2*(n+1) {
		t.Errorf("usage %+v, want %d calls (and the warm-up) of 3 and 2 tokens", u, n)
	}
}
