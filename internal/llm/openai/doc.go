// Package openai is the llm.Model client for servers that speak the
// OpenAI-compatible Chat Completions API: llama.cpp's llama-server, vLLM,
// LM Studio, Ollama's /v1 and hosted APIs. It implements llm.Lister,
// llm.AdapterLister (llama-server), llm.AdapterLoader (vLLM) and
// llm.ContextReporter whatever the server: one without the endpoint
// answers llm.ErrUnsupported.
//
// # Calls
//
// Chat posts to /v1/chat/completions, streaming over server-sent events
// when the request has a Stream callback; Embed posts to /v1/embeddings.
// Both take the server root (http://127.0.0.1:8080); a base URL ending
// in /v1 is accepted too.
//
// # Adapters
//
// Servers differ in how they serve LoRA adapters:
//
//   - llama-server loads its adapters at start (--lora a.gguf --lora
//     b.gguf, ids 0, 1, ...). LoRAAdapters lists them, SetLoRAScales sets
//     the global scales, and llm.ChatRequest.LoRA selects adapters for one
//     request.
//   - vLLM serves each adapter as a model of its own: name it in
//     llm.ChatRequest.Model. Models lists the base and its adapters
//     (Parent is the base); LoadLoRA and UnloadLoRA change the set at run
//     time when vLLM runs with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True.
//
// A server without the endpoint answers 404, reported as an error
// wrapping llm.ErrUnsupported.
//
// # Context and answer budget
//
// These servers fix the context window when they start; Chat cannot
// change it and ignores llm.Options.ContextSize. ContextLength reports
// it where the server says (llm.ContextReporter): llama-server's /props
// n_ctx, vLLM's max_model_len; elsewhere it is unknown (0). A prompt
// longer than the window is refused by llama-server with
// exceed_context_size_error, which Chat returns as a
// *llm.PromptTooLongError (also wrapping the *llm.APIError), and by vLLM
// with a 400. Options.MaxTokens is max_tokens; an answer that reaches
// it has finish_reason "length" (llm.FinishLength).
//
// # Errors and retries
//
// An HTTP error status becomes an *llm.APIError carrying the server's
// own message, type and code, whatever the body's shape (an OpenAI error
// object, {"error": "text"}, a bare {"message": ...}, FastAPI's
// {"detail": ...} or plain text). An error event inside a stream is an
// *llm.APIError with InStream set. Transport failures wrap
// llm.ErrUnavailable. Transient failures (refused connections, 429, 502,
// 503, 504) are retried under Options.Retry, but a chat is never retried
// once part of its answer has been delivered to the Stream callback.
// Answers that cannot be understood, streams that end without their
// "data: [DONE]", and bodies over the size limits wrap llm.ErrBadResponse.
package openai
