// Package mind is batos's mind: the personas, the weights and adapter
// files kept in the image as blobs, the inference server the personas
// speak through, the memory manager that moves adapters between tiers,
// and the accounting of every call. It joins internal/llm (pure server
// clients) with internal/image (where everything lasting is kept).
//
// # Vocabulary
//
//   - A model is a name the server knows: Persona.Model, Route.Model,
//     Call.Model, Server.DefaultModel. It may be a base model or an
//     adapter served as a model of its own (adapterModel, weightsModel).
//   - A client is the llm.Model that speaks to the server:
//     Server.Client. llm.Model keeps its name (the whole tree uses it);
//     here it always means a client.
//   - Weights (a model file) are a GGUF base model kept in the image as a
//     blob and recorded in pLLM: Weights, ImportWeights, LoadWeights. An
//     adapter (file) is a GGUF LoRA adapter or PEFT directory in a blob.
//   - A server is one inference server and its API (Server, API); mind
//     has no "backend": that word is the bridge's and the store's.
//
// # Servers and clients
//
// mind speaks to a server only through llm's interfaces: llm.Model for
// chats, and the optional capabilities the memory manager finds on
// Server.Client by type assertion (llm.Lister, llm.LoadedLister,
// llm.BlobStore and llm.ModelCreator on Ollama; llm.AdapterLister on
// llama-server; llm.AdapterLoader on vLLM). A client without the ones its
// API needs still serves personas without an adapter; an adapter is then
// refused with an error wrapping llm.ErrUnsupported. connect.go is the
// one file that names the concrete clients (llm/ollama, llm/openai): it
// makes one for the API Connect was given or found, and probes it.
//
// # Personas
//
// A persona is an image object under the root's "personas": name, role,
// system_prompt, model (None: pLLM's default), adapter (None or a blob
// holding a GGUF LoRA adapter), temperature, options (a dict of sampling
// options) and usage (totals kept by the accounting). They are data:
// users edit them with "batos persona set" or from the REPL.
//
// # Tiers
//
// An adapter is cold when it exists only as a blob in the image, warm
// when the server can use it without more work from batos, and hot when
// the server has it active. What moves it depends on the server:
//
//   - Ollama: the blob is pushed (after HEAD says it is missing), a model
//     batos-<persona>-<digest prefix> is created from the base and the
//     adapter (warm), and a warm-up call loads it (hot); a 500 there means
//     the adapter does not fit the base, and the model is deleted again.
//   - llama-server: adapters are fixed when the server starts; batos
//     matches the persona's adapter to GET /lora-adapters by the digest
//     of the file (when it is on this machine) or the digest in its name
//     (as batos names the files it writes) and selects it per request
//     (hot); a persona without an adapter asks for none. If the server lacks
//     it, batos writes the file into its cache directory and says how to
//     restart the server with it.
//   - vLLM: the adapter is written into the cache directory (warm) and
//     loaded by name with load_lora_adapter (hot).
//
// Everything the memory manager writes outside the image is derived and
// can be rebuilt from the image.
//
// # Answer budget and context window
//
// Every call has an answer budget (Persona.AnswerBudget): the persona's
// options["max_tokens"], else its default, sized for what it writes
// (BRICK 1,024 tokens for a plan, ROBIN 2,048 for a method and its
// tests, BABS and ALFRED 512, any other persona DefaultAnswerBudget).
// The prompt's tokens are estimated on the high side
// (llm.EstimateTokens: a byte in three) and the call's context window
// is sized to hold the prompt and the budget (llm.WindowFor: a power of
// two from 2,048, so that calls of similar size share a window), within
// the model's context length as the server reports it
// (llm.ContextReporter, asked once per model):
//
//   - Ollama takes the window per request (num_ctx) and would otherwise
//     load a model with 2,048 tokens and cut longer prompts without a
//     word; the length is /api/show's "<arch>.context_length". A persona's
//     options["num_ctx"] fixes the window instead.
//   - llama-server (/props n_ctx) and vLLM (max_model_len) fix the window
//     when they start; batos checks the prompt against it and cannot
//     change it.
//   - Other OpenAI-compatible servers do not say: the window is unknown,
//     the prompt is sent unchecked, and the server refuses (or cuts) it
//     by its own rules.
//
// A prompt that cannot fit with its budget is not sent: Ask fails with a
// *llm.PromptTooLongError (llm.ErrPromptTooLong) naming the prompt's
// size and the context; so does a call Ollama reports as cut. Because
// the estimate is high, a prompt within about a quarter of the window
// may be refused although it would just fit. An answer cut at its
// budget (finish reason "length") or stopped by the server (Ollama's
// repetition guard, "done": false) is recorded as a failed call saying
// so and asked again once with the budget doubled, within
// MaxAnswerBudget and the window; a second cut fails the call with a
// *llm.CutError (llm.ErrAnswerCut).
//
// # Default model
//
// A persona that names no model uses Server.DefaultModel: the model
// given (-model) or recorded in pLLM, else on Ollama pLLM's weights,
// else on an OpenAI-compatible server the one base model it lists. A
// server that lists several (Ollama's /v1 lists adapter models as models
// of their own, in no useful order) gets no guessed default: such a
// persona is refused with the list to pick from (Server.Offered), in its
// tier report and when asked.
package mind
