package llmtest

import (
	"strings"
	"unicode"

	"batos/internal/llm"
)

// Persona is the name a chat's system prompt gives its speaker: NAME in
// "You are NAME, …" or "You are NAME." (how batos's personas begin), or
// "" when the first message is not such a system prompt. Scripted models
// use it to answer each persona its part.
func Persona(req *llm.ChatRequest) string {
	if len(req.Messages) == 0 || req.Messages[0].Role != llm.RoleSystem {
		return ""
	}
	rest, ok := strings.CutPrefix(req.Messages[0].Content, "You are ")
	if !ok {
		return ""
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' })
	if end < 0 {
		return rest
	}
	return rest[:end]
}
