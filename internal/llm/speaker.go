package llm

import (
	"strings"
	"unicode"
)

// Speaker is the name a chat's system prompt gives its speaker: NAME in
// "You are NAME, …" or "You are NAME." (how batos's personas begin), or
// "" when the first message is not such a system prompt. A scripted
// model uses it to answer each persona its part.
func Speaker(req *ChatRequest) string {
	if len(req.Messages) == 0 || req.Messages[0].Role != RoleSystem {
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
