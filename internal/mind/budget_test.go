package mind

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/llm/llmtest"
)

// setOption sets one of persona's options.
func setOption(t *testing.T, db *image.DB, persona, key string, v image.Value) {
	t.Helper()
	err := db.Update(t.Context(), func(tx *image.Tx) error {
		o, err := personaObject(tx, persona)
		if err != nil {
			return err
		}
		return o.Set("options", dict(t, key, v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chatOptions returns the options of every chat the fake Ollama took.
func chatOptions(t *testing.T, fake *llmtest.Ollama) []map[string]float64 {
	t.Helper()
	var out []map[string]float64
	for _, r := range fake.Requests() {
		if r.Path != "/api/chat" {
			continue
		}
		var body struct {
			Messages []llm.Message  `json:"messages"`
			Options  map[string]any `json:"options"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if len(body.Messages) == 0 {
			continue // a load
		}
		o := map[string]float64{}
		for k, v := range body.Options {
			if n, ok := v.(float64); ok {
				o[k] = n
			}
		}
		out = append(out, o)
	}
	return out
}

// ollamaMind is a Mind speaking to a fake Ollama with model "tiny" of
// the given context length, its personas' default model.
func ollamaMind(t *testing.T, db *image.DB, responder llm.Model, contextLength int) (*Mind, *llmtest.Ollama) {
	t.Helper()
	fake := llmtest.NewOllama(t, &llmtest.OllamaOptions{Responder: responder, Models: []string{"tiny"}, ContextLength: contextLength})
	return New(db, connectTo(t, fake.URL, APIOllama, "tiny"), nil), fake
}

func ask(t *testing.T, m *Mind, persona, text string) (*Answer, error) {
	return m.Ask(t.Context(), Request{Persona: persona, Messages: []llm.Message{{Role: llm.RoleUser, Content: text}}})
}

func recent(t *testing.T, db *image.DB, persona string) []Call {
	t.Helper()
	var calls []Call
	err := db.View(t.Context(), func(tx *image.Tx) (err error) { calls, err = RecentCalls(tx, persona); return })
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

// TestAskSizesContextAndBudget: each call gets its persona's answer
// budget as num_predict and a num_ctx holding the prompt and the budget,
// so Ollama never cuts the prompt (its default is 2,048 tokens).
func TestAskSizesContextAndBudget(t *testing.T) {
	db, _ := testImage(t)
	m, fake := ollamaMind(t, db, llmtest.Texts("plan", "method", "short"), 32768)
	prompt := strings.Repeat("a mission of some length ", 400) // 10,000 bytes: about 3,350 tokens
	for _, persona := range []string{"BRICK", "ROBIN"} {
		if _, err := m.Ask(t.Context(), Request{Persona: persona, Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}}); err != nil {
			t.Fatal(err)
		}
	}
	setOption(t, db, "BRICK", "max_tokens", image.Int(300))
	if _, err := m.Ask(t.Context(), Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	got := chatOptions(t, fake)
	want := []map[string]float64{
		{"num_predict": 1024, "num_ctx": 8192}, // ~3,360 + 1,024 → 8,192
		{"num_predict": 2048, "num_ctx": 8192},
		{"num_predict": 300, "num_ctx": 2048}, // the persona's own budget wins
	}
	if len(got) != len(want) {
		t.Fatalf("options %v, want %v", got, want)
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("chat %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
	}
	if cuts := fake.PromptCuts(); len(cuts) != 0 {
		t.Errorf("the fake cut prompts: %+v", cuts)
	}
}

// TestAskPromptTooLong: a prompt that cannot fit the model's context
// with its answer budget is not sent; the error says the prompt's size
// and the context, and the call is recorded as failed.
func TestAskPromptTooLong(t *testing.T) {
	db, _ := testImage(t)
	m, fake := ollamaMind(t, db, llmtest.Texts("never"), 4096)
	_, err := m.Ask(t.Context(), Request{Persona: "ROBIN", Messages: []llm.Message{{Role: llm.RoleUser, Content: strings.Repeat("x", 19000)}}})
	var ptl *llm.PromptTooLongError
	if !errors.As(err, &ptl) || !errors.Is(err, llm.ErrPromptTooLong) || ptl.Context != 4096 || ptl.Answer != 2048 || ptl.Prompt < 6300 || ptl.Server {
		t.Fatalf("got %v (%+v), want a PromptTooLongError from the estimate", err, ptl)
	}
	for _, want := range []string{"about 6", "4096 tokens", "tiny"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if n := fake.ChatCount("tiny"); n != 0 {
		t.Errorf("%d chats sent, want none", n)
	}
	calls := recent(t, db, "ROBIN")
	if len(calls) != 1 || calls[0].OK() || !strings.Contains(calls[0].Outcome, "do not fit") {
		t.Errorf("recorded %+v, want one failed call saying why", calls)
	}
}

// TestAskCutAnswerAskedAgain: an answer cut at its budget is recorded as
// such and asked again once with the budget doubled.
func TestAskCutAnswerAskedAgain(t *testing.T) {
	db, _ := testImage(t)
	answer := "one two three four five six"
	m, fake := ollamaMind(t, db, llmtest.Texts(answer, answer), 8192)
	setOption(t, db, "BRICK", "max_tokens", image.Int(4))
	ans, err := ask(t, m, "BRICK", "count")
	if err != nil || ans.Text != answer {
		t.Fatalf("got %+v, %v, want the whole answer on the second ask", ans, err)
	}
	opts := chatOptions(t, fake)
	if len(opts) != 2 || opts[0]["num_predict"] != 4 || opts[1]["num_predict"] != 8 {
		t.Errorf("budgets %v, want 4 then 8", opts)
	}
	calls := recent(t, db, "BRICK")
	if len(calls) != 2 || calls[0].OK() || !calls[1].OK() {
		t.Fatalf("recorded %+v, want the cut call and the good one", calls)
	}
	if o := calls[0].Outcome; !strings.Contains(o, "cut at 4 tokens") || !strings.Contains(o, "asked again with a budget of 8") || calls[0].CompletionTokens != 4 {
		t.Errorf("first call: %+v, want it cut at 4 and asked again with 8", calls[0])
	}
	if u := loadPersona(t, db, "BRICK").Usage; u.Calls != 2 || u.Failures != 1 || u.CompletionTokens != 4+6 {
		t.Errorf("usage %+v, want both calls counted", u)
	}
}

// TestAskCutTwice: an answer cut again after the second ask is an
// ErrAnswerCut, and both calls are recorded.
func TestAskCutTwice(t *testing.T) {
	db, _ := testImage(t)
	answer := strings.Repeat("word ", 20)
	m, _ := ollamaMind(t, db, llmtest.Texts(answer, answer, "unused"), 8192)
	setOption(t, db, "BRICK", "max_tokens", image.Int(4))
	_, err := ask(t, m, "BRICK", "go on")
	var cut *llm.CutError
	if !errors.As(err, &cut) || !errors.Is(err, llm.ErrAnswerCut) || cut.Budget != 8 || cut.Tokens != 8 || cut.Asks != 2 {
		t.Fatalf("got %v (%+v), want a CutError at 8 tokens after 2 asks", err, cut)
	}
	if !strings.Contains(err.Error(), "cut at 8 tokens") {
		t.Errorf("message %q does not say where", err)
	}
	if calls := recent(t, db, "BRICK"); len(calls) != 2 || calls[0].OK() || calls[1].OK() {
		t.Errorf("recorded %+v, want two failed calls", calls)
	}
}

// TestAskCutNoRoom: an answer cut when the window leaves no room for a
// bigger budget is not asked again.
func TestAskCutNoRoom(t *testing.T) {
	db, _ := testImage(t)
	m, fake := ollamaMind(t, db, llmtest.Texts(strings.Repeat("word ", 3000)), 2100)
	_, err := ask(t, m, "ROBIN", "write")
	if !errors.Is(err, llm.ErrAnswerCut) || fake.ChatCount("tiny") != 1 {
		t.Errorf("got %v after %d chats, want ErrAnswerCut after one", err, fake.ChatCount("tiny"))
	}
}

// TestAskRepetitionGuard: Ollama's repetition guard ("done": false) is a
// cut answer, said so, and asked again.
func TestAskRepetitionGuard(t *testing.T) {
	db, _ := testImage(t)
	m, fake := ollamaMind(t, db, llmtest.Texts("la la la la la la la", `{"plan": "ok"}`), 8192)
	fake.RepetitionGuardNext(3)
	ans, err := ask(t, m, "BRICK", "sing")
	if err != nil || ans.Text != `{"plan": "ok"}` {
		t.Fatalf("got %+v, %v, want the second answer", ans, err)
	}
	calls := recent(t, db, "BRICK")
	if len(calls) != 2 || calls[0].OK() || !strings.Contains(calls[0].Outcome, "repetition guard") {
		t.Errorf("recorded %+v, want the guarded call saying what happened", calls)
	}
}

// TestAskDeferredAfterCut: with DeferRecord, the cut call is recorded by
// Ask and the good one is left to the caller.
func TestAskDeferredAfterCut(t *testing.T) {
	db, _ := testImage(t)
	client := llmtest.NewModel(
		llmtest.Reply{Text: "half", FinishReason: llm.FinishLength, Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 1024}},
		llmtest.Reply{Text: "whole", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 1500}},
	)
	m := New(db, &Server{API: APIOpenAI, DefaultModel: "tiny", Client: client}, nil)
	ans, err := m.Ask(t.Context(), Request{Persona: "BRICK", Messages: []llm.Message{{Role: llm.RoleUser, Content: "plan"}}, DeferRecord: true})
	if err != nil || ans.Text != "whole" || !ans.Call.OK() || ans.Call.CompletionTokens != 1500 {
		t.Fatalf("got %+v, %v", ans, err)
	}
	if calls := recent(t, db, "BRICK"); len(calls) != 1 || !strings.Contains(calls[0].Outcome, "cut at 1024 tokens") {
		t.Errorf("recorded %+v, want only the cut call", calls)
	}
	reqs := client.Calls()
	if len(reqs) != 2 || reqs[0].Options.MaxTokens != 1024 || reqs[1].Options.MaxTokens != 2048 {
		t.Errorf("budgets asked: %d calls, want 1024 then 2048", len(reqs))
	}
}

// TestAskPromptTooLongLlamaServer: llama-server's window (GET /props
// n_ctx) is checked before a prompt is sent; a server that reports none
// gets the prompt unchecked.
func TestAskPromptTooLongLlamaServer(t *testing.T) {
	db, _ := testImage(t)
	fake := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("ok"), Flavor: llmtest.LlamaServer, ContextLength: 2048})
	m := New(db, connectTo(t, fake.URL, APILlamaServer, ""), nil)
	_, err := ask(t, m, "BRICK", strings.Repeat("x", 4000))
	var ptl *llm.PromptTooLongError
	if !errors.As(err, &ptl) || ptl.Context != 2048 || ptl.Answer != 1024 || len(fake.ModelsUsed()) != 0 {
		t.Errorf("got %v (%+v) after %d chats, want a PromptTooLongError and no chat", err, ptl, len(fake.ModelsUsed()))
	}
	generic := llmtest.NewOpenAI(t, &llmtest.OpenAIOptions{Responder: llmtest.Texts("ok"), Flavor: llmtest.Generic, Models: []string{"gpt"}})
	m = New(db, connectTo(t, generic.URL, APIOpenAI, ""), nil)
	if ans, err := ask(t, m, "BRICK", strings.Repeat("x", 4000)); err != nil || ans.Text != "ok" {
		t.Errorf("unknown window: %+v, %v, want the prompt sent", ans, err)
	}
}
