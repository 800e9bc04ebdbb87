package bench

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"batos/internal/llm"
)

func chat(system, task string) *llm.ChatRequest {
	return &llm.ChatRequest{Model: "scripted", Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: system},
		{Role: llm.RoleUser, Content: task},
	}}
}

func TestScriptedModel(t *testing.T) {
	for _, tc := range []struct {
		name, system, task string
		want               []string // substrings of the answer
		json               bool
	}{
		{"brick plans", "You are BRICK, the planner.", "teach display_yourself_7", []string{`"selector": "display_yourself_7"`, `"persona": "BABS"`, `"persona": "ALFRED"`}, true},
		{"robin writes", "You are ROBIN. Write code.", "write display_yourself_7", []string{`def display_yourself_7(self)`}, true},
		{"babs answers", "You are BABS, who looks.", "which slots?", []string{"BABS: the receiver has a name slot"}, false},
		{"alfred answers", "You are ALFRED.", "anything to avoid?", []string{"ALFRED:"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := scriptedModel{}.Chat(t.Context(), chat(tc.system, tc.task))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(resp.Text, w) {
					t.Errorf("answer lacks %q:\n%s", w, resp.Text)
				}
			}
			if tc.json && !json.Valid([]byte(resp.Text)) {
				t.Errorf("answer is not JSON:\n%s", resp.Text)
			}
			if resp.Model != "scripted" || resp.FinishReason != "stop" || resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
				t.Errorf("got response %+v, want model, finish reason and usage set", resp)
			}
		})
	}
}

func TestScriptedModelRefuses(t *testing.T) {
	for name, req := range map[string]*llm.ChatRequest{
		"no task":     {Messages: []llm.Message{{Role: llm.RoleSystem, Content: "You are BRICK."}}},
		"brick, no N": chat("You are BRICK.", "teach something"),
		"robin, no N": chat("You are ROBIN.", "write something"),
	} {
		if resp, err := (scriptedModel{}).Chat(t.Context(), req); err == nil {
			t.Errorf("%s: got %q, want an error", name, resp.Text)
		}
	}
	if _, err := (scriptedModel{}).Embed(t.Context(), &llm.EmbedRequest{Input: []string{"x"}}); !errors.Is(err, errNoEmbeddings) {
		t.Errorf("Embed: got %v, want errNoEmbeddings", err)
	}
}

func TestPersonaOf(t *testing.T) {
	for _, tc := range []struct{ system, want string }{
		{"You are BRICK, the planner.", "BRICK"},
		{"You are ROBIN.", "ROBIN"},
		{"You are BABS_2", "BABS_2"},
		{"Hello.", ""},
	} {
		if got := llm.Speaker(chat(tc.system, "task")); got != tc.want {
			t.Errorf("llm.Speaker(%q) = %q, want %q", tc.system, got, tc.want)
		}
	}
	if got := llm.Speaker(&llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: "You are X."}}}); got != "" {
		t.Errorf("llm.Speaker(a user message) = %q, want \"\"", got)
	}
}
