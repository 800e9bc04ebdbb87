// Package llm is batos's view of an inference server: one small Model
// interface (chat, embed) with the request and response types every
// client shares, optional capability interfaces for what some servers do
// beyond chat (capability.go), the errors clients return, and the retry
// policy they apply to transient failures.
//
// The clients live in subpackages, one per server API: llm/openai for
// OpenAI-compatible Chat Completions (llama.cpp's llama-server, vLLM,
// LM Studio, Ollama's /v1, hosted APIs) and llm/ollama for Ollama's
// native API. llm/llmtest has a scripted Model and fake servers that
// follow the real APIs, for tests that must run offline.
//
// # Vocabulary
//
// A model, alone, is a name the server knows (ChatRequest.Model,
// ModelInfo.ID): a base model or an adapter served as a model of its
// own. A client is what speaks to a server: a value implementing Model,
// the interface's name kept from before the distinction because the
// whole tree uses it (variables holding one are called client, or fake
// for llmtest's). Weights, or a model file, are a GGUF file of a base
// model; an adapter file is a GGUF LoRA adapter or a PEFT directory.
// Blobs are a server's content-addressed copies of such files.
//
// # Capabilities
//
// Beyond Model, a client may implement Lister, LoadedLister, BlobStore,
// ModelCreator, AdapterLister, AdapterLoader and ContextReporter;
// callers find them by type assertion and say what they cannot do
// without them. Each one's comment names the clients that implement it,
// and both subpackages assert theirs at compile time.
//
// # Context window and answer budget
//
// A prompt and its answer share the model's context window (fit.go).
// EstimateTokens estimates a prompt's size on the high side, WindowFor
// sizes a window for it where the server takes one per request
// (Ollama's num_ctx), and a prompt that cannot fit is a
// *PromptTooLongError (ErrPromptTooLong), from batos's estimate or from
// the server. Options.MaxTokens is the answer budget; an answer that
// reaches it, or that the server stopped on its own, comes back with
// ChatResponse.Cut true (FinishLength, FinishAborted), and CutError
// (ErrAnswerCut) is how a caller reports one it could not use.
//
// llm knows nothing of the image: personas, adapters in blobs and usage
// accounting are internal/mind's.
package llm

import (
	"context"
	"encoding/json"
	"time"
)

// Model is a client of an inference server: it asks the server's models
// for chats and embeddings. Implementations are safe for concurrent use.
type Model interface {
	// Chat sends a conversation and returns the model's answer. If
	// req.Stream is set, the answer's text is also delivered to it piece
	// by piece as the server produces it.
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
	// Embed returns one vector per input text, in order.
	Embed(ctx context.Context, req *EmbedRequest) (*EmbedResponse, error)
}

// Roles of a message in a conversation.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Options are sampling options. Zero values mean the server's default,
// except Temperature and Seed which are pointers because zero is a value
// one asks for.
type Options struct {
	Temperature *float64
	Seed        *int64
	// MaxTokens bounds the completion (Ollama's num_predict, OpenAI's
	// max_tokens).
	MaxTokens int
	TopK      int
	TopP      float64
	Stop      []string
	// ContextSize is the context window to load the model with (Ollama's
	// num_ctx); OpenAI-compatible servers fix it at start and ignore it.
	ContextSize int
}

// LoRA selects one of llama-server's preloaded adapters for a request
// (its id from GET /lora-adapters). Adapters not listed get scale 0 for
// the request. Ollama and vLLM serve an adapter as a model of its own:
// name it in ChatRequest.Model instead.
type LoRA struct {
	ID    int     `json:"id"`
	Scale float64 `json:"scale"`
}

// ChatRequest is one chat call.
type ChatRequest struct {
	Model    string
	Messages []Message
	// Schema, if set, is a JSON schema the answer must follow (structured
	// output); the answer's Text is then JSON.
	Schema  json.RawMessage
	Options Options
	// LoRA selects per-request adapters on llama-server. nil leaves the
	// server's global scales in force; an empty, non-nil list asks for no
	// adapter at all. The Ollama client refuses a request that lists
	// one; the OpenAI-compatible one sends it as is (it cannot tell
	// llama-server from others, and vLLM ignores the field), so set it
	// only for llama-server.
	LoRA []LoRA
	// KeepAlive, if set, is how long Ollama keeps the model loaded after
	// the call (negative: forever, zero: unload at once). Other clients
	// ignore it.
	KeepAlive *time.Duration
	// Stream, if set, receives the answer's text as it is produced. An
	// error from it stops the stream and is returned by Chat.
	Stream func(Chunk) error
}

// Chunk is a piece of a streamed answer.
type Chunk struct {
	Text string
}

// Usage counts tokens. Servers that do not report a count leave it zero.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// Timings are the server's own measurements of a call, where it reports
// them (Ollama does; OpenAI-compatible servers mostly do not). Latency
// is measured by the client and always set.
type Timings struct {
	Latency    time.Duration // wall time of the call as the client saw it
	Total      time.Duration
	Load       time.Duration
	PromptEval time.Duration
	Eval       time.Duration
}

// ChatResponse is a chat call's answer.
type ChatResponse struct {
	Text string
	// Model is the model that answered, as the server names it.
	Model string
	// FinishReason is why generation stopped ("stop", "length", ...).
	FinishReason string
	Usage        Usage
	Timings      Timings
}

// EmbedRequest asks for one vector per input text.
type EmbedRequest struct {
	Model string
	Input []string
}

// EmbedResponse holds the vectors, in input order.
type EmbedResponse struct {
	Model   string
	Vectors [][]float32
	Usage   Usage
	Timings Timings
}
