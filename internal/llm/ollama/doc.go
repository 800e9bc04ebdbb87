// Package ollama is the llm.Model client for Ollama's native API
// (default http://127.0.0.1:11434), with the model management batos
// needs around it: it implements llm.Lister, llm.LoadedLister,
// llm.BlobStore, llm.ModelCreator and llm.ContextReporter.
//
// # Calls
//
// Chat posts to /api/chat, streaming NDJSON when the request has a
// Stream callback; Embed posts to /api/embed. Load and Unload load a
// model or drop it from memory (an empty chat with keep_alive).
// HasBlob and PushBlob manage the server's content-addressed blobs, and
// Create makes a model from blobs or from another model, with at most
// one GGUF adapter: Ollama takes only one per model. Create does not
// check that the adapter fits its base; the first chat (or Load) on the
// new model fails with HTTP 500 when it does not, so callers warm a
// created model up with Load and treat a 500 as a bad adapter. PS, Tags,
// Delete and Version are the small management calls; Loaded and Models
// are PS and Tags reduced to names, for llm.LoadedLister and llm.Lister.
// ContextLength reads a model's trained context length from /api/show.
//
// # Context and cut answers
//
// Ollama loads a model with a context window of num_ctx tokens (2,048
// unless told otherwise) and cuts a longer prompt to fit, saying so only
// in its log; its prompt_eval_count is then the window. Chat sends
// Options.ContextSize as num_ctx and, when the server counts a prompt
// that fills it, returns an *llm.PromptTooLongError instead of an answer
// to part of the prompt. Options.MaxTokens is num_predict; an answer
// that reaches it ends with done_reason "length" (llm.FinishLength).
// Ollama's repetition guard stops a model that repeats one token too
// often and ends the answer with "done": false and no counts: Chat
// returns that answer, cut, with FinishReason llm.FinishAborted.
//
// # Errors and retries
//
// An HTTP error status becomes an *llm.APIError carrying the server's
// own message (the first 512 bytes of a body that is not Ollama's
// {"error": "..."}). A 404 from a call naming a model also wraps
// llm.ErrModelNotFound; a 400 from PushBlob wraps ErrDigestMismatch. An
// {"error": ...} line inside a stream is an *llm.APIError with InStream
// set. Transport failures wrap llm.ErrUnavailable. Transient failures
// (refused connections, 429, 502, 503, 504) are retried under
// Options.Retry, but a chat is never retried once part of its answer has
// been delivered to the Stream callback. Answers that cannot be
// understood, streams cut before their done object, and bodies
// over the size limits (64 MiB for a JSON answer, 1 MiB for a stream
// line) wrap llm.ErrBadResponse.
//
// Every call is bounded by Options.Timeout, retries included.
package ollama
