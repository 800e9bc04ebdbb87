package llm

import (
	"context"
	"io"
)

// The interfaces below are capabilities some clients have beyond Model.
// Callers find them by type assertion on a Model and fall back when it
// lacks one (internal/mind reports the adapter as unservable). A client
// that has a method may still talk to a server that lacks the endpoint:
// the call then returns an error wrapping ErrUnsupported.

// Lister lists the models a server serves (ollama.Client: GET /api/tags;
// openai.Client: GET /v1/models, which on vLLM includes its adapters).
type Lister interface {
	Models(ctx context.Context) ([]ModelInfo, error)
}

// ModelInfo is one model a server lists.
type ModelInfo struct {
	// ID is the model's name, what ChatRequest.Model takes.
	ID      string
	OwnedBy string
	// Parent is the base model of an adapter served as a model of its
	// own (vLLM); empty for a base model.
	Parent string
	// Root is what vLLM loaded the model from: the base's name or path,
	// an adapter's directory. Other servers leave it empty.
	Root string
}

// LoadedLister lists the models a server holds in memory, ready to
// answer at once (ollama.Client: GET /api/ps).
type LoadedLister interface {
	Loaded(ctx context.Context) ([]string, error)
}

// BlobStore keeps the content-addressed blobs (weights, adapters) a
// ModelCreator builds models from (ollama.Client). Digests are sha256 as
// 64 lowercase hex digits.
type BlobStore interface {
	// HasBlob reports whether the server holds the blob.
	HasBlob(ctx context.Context, digest string) (bool, error)
	// PushBlob uploads size bytes (negative: unknown) under digest. It
	// calls open for each attempt, so that a failed upload can be
	// retried, and closes what open returns.
	PushBlob(ctx context.Context, digest string, open func() (io.ReadCloser, error), size int64) error
}

// ModelCreator creates and deletes models of the server's own, built from
// pushed blobs or another model plus at most one adapter (ollama.Client:
// POST /api/create, DELETE /api/delete). A model the server does not
// have, named by Delete or as CreateRequest.From, is an error wrapping
// ErrModelNotFound.
type ModelCreator interface {
	Create(ctx context.Context, req *CreateRequest) error
	Delete(ctx context.Context, model string) error
}

// CreateRequest describes a model to create from blobs pushed before
// (BlobStore.PushBlob) or from a model the server has.
type CreateRequest struct {
	Model string // the new model's name
	From  string // an existing model to start from, if any
	// Files names the model's GGUF blobs: file name → "sha256:<hex>".
	// From or Files must be set.
	Files map[string]string
	// Adapters names at most one GGUF LoRA adapter blob the same way:
	// Ollama takes only one per model.
	Adapters   map[string]string
	System     string
	Template   string
	Parameters map[string]any // Modelfile parameters: temperature, num_ctx, stop, ...
}

// AdapterLister lists the LoRA adapters a server was started with, to be
// selected per request with ChatRequest.LoRA (openai.Client:
// llama-server's GET /lora-adapters).
type AdapterLister interface {
	LoRAAdapters(ctx context.Context) ([]AdapterInfo, error)
}

// AdapterInfo is one of llama-server's LoRA adapters, loaded at start.
type AdapterInfo struct {
	ID   int    `json:"id"`
	Path string `json:"path"`
	// Scale is the global scale, used by requests that select no
	// adapters of their own.
	Scale float64 `json:"scale"`
}

// AdapterLoader loads a LoRA adapter at run time and serves it as a model
// of its own under a name, and unloads it (openai.Client: vLLM's
// /v1/load_lora_adapter and /v1/unload_lora_adapter). The path is on the
// server's disk.
type AdapterLoader interface {
	LoadLoRA(ctx context.Context, name, path string) error
	UnloadLoRA(ctx context.Context, name string) error
}
