package bench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"batos/internal/llm"
)

// scriptedModel is the model of bench cycle's mind: its personas answer
// at once, by their system prompts, for whichever display_yourself_N the
// task names. BRICK plans two sub-questions, BABS and ALFRED answer a line
// each, ROBIN writes the method. It records nothing and is safe for
// concurrent use.
type scriptedModel struct{}

var _ llm.Model = scriptedModel{}

var benchCycleSelectorRE = regexp.MustCompile(`display_yourself_[0-9]+`)

// errNoEmbeddings is returned by scriptedModel.Embed: no cycle asks for
// embeddings.
var errNoEmbeddings = errors.New("bench: the scripted model has no embeddings")

// Chat implements llm.Model. A streamed chat gets the answer as one
// chunk. Usage counts words: the prompt's and the answer's.
func (scriptedModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	start := time.Now()
	text, err := benchCycleRespond(req)
	if err != nil {
		return nil, err
	}
	if req.Stream != nil {
		if err := req.Stream(llm.Chunk{Text: text}); err != nil {
			return nil, err
		}
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content))
	}
	return &llm.ChatResponse{
		Text: text, Model: req.Model, FinishReason: "stop",
		Usage:   llm.Usage{PromptTokens: prompt, CompletionTokens: len(strings.Fields(text))},
		Timings: llm.Timings{Latency: time.Since(start)},
	}, nil
}

// Embed implements llm.Model; it always fails with errNoEmbeddings.
func (scriptedModel) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	return nil, errNoEmbeddings
}

// benchCycleRespond is the scripted personas' answer to req.
func benchCycleRespond(req *llm.ChatRequest) (string, error) {
	if len(req.Messages) < 2 {
		return "", errors.New("bench cycle: a chat without a system prompt and a task")
	}
	persona := llm.Speaker(req)
	sel := benchCycleSelectorRE.FindString(req.Messages[len(req.Messages)-1].Content)
	if sel == "" && (persona == "BRICK" || persona == "ROBIN") {
		return "", fmt.Errorf("bench cycle: %s's task names no display_yourself_N", persona)
	}
	switch persona {
	case "BRICK":
		return fmt.Sprintf(`{"intent": "say who the receiver is", "selector": %[1]q, "signature": "def %[1]s(self)",
 "sub_questions": [{"persona": "BABS", "question": "Which slots does the receiver have?"},
                   {"persona": "ALFRED", "question": "Anything to avoid?"}],
 "tests": [{"name": "names itself", "expr": "self.%[1]s() == 'I am ' + self.name"}]}`, sel), nil
	case "ROBIN":
		return fmt.Sprintf(`{"source": "def %[1]s(self):\n    \"\"\"Say who I am.\"\"\"\n    return 'I am ' + self.name\n",
 "tests": [{"name": "a string", "expr": "type(self.%[1]s()) == 'string'"}]}`, sel), nil
	}
	return persona + ": the receiver has a name slot; use it.", nil
}
