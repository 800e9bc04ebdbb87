package llmtest

import (
	"batos/internal/llm"
)

// Persona is the speaker a chat's system prompt names (llm.Speaker):
// scripted models use it to answer each persona its part.
func Persona(req *llm.ChatRequest) string { return llm.Speaker(req) }
