package zmqbridge_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"

	zmq "github.com/pebbe/zmq4"

	"batos/internal/llm"
	"batos/internal/llm/llmtest"
	"batos/internal/zmqbridge"
)

func req(t *testing.T, d *zmq.Socket, m map[string]any) map[string]any {
	t.Helper()
	b, err := zmqbridge.EncodeReply(m) // the bridge's encoder writes image.Ref
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, d, b)
}

var methodFor = regexp.MustCompile(`(?:Plan the method|Write the method) (\w+)`)

// echoMind learns any selector as a method answering its own name.
func echoMind(ctx context.Context, req *llm.ChatRequest) (llmtest.Reply, error) {
	sel := "x"
	if m := methodFor.FindStringSubmatch(req.Messages[len(req.Messages)-1].Content); m != nil {
		sel = m[1]
	}
	var out any
	switch {
	case llmtest.Persona(req) == "BRICK":
		out = map[string]any{"intent": "name it", "selector": sel, "signature": "def " + sel + "(self, *args)", "sub_questions": []any{},
			"tests": []any{map[string]any{"name": "named", "expr": "self." + sel + "() == '" + sel + "'"}}}
	case llmtest.Persona(req) == "ROBIN":
		out = map[string]any{"source": "def " + sel + "(self, *args):\n    return '" + sel + "'\n", "tests": []any{}}
	default:
		return llmtest.Reply{Text: "ok"}, nil
	}
	b, _ := json.Marshal(out)
	return llmtest.Reply{Text: string(b)}, nil
}
