package llmtest

import (
	"bytes"
	"fmt"

	"batos/internal/gguf"
)

// GGUFFits is an OllamaOptions.AdapterFits that decides as llama.cpp
// would: the adapter's tensors must match the base model's. A base
// without weights (a model "pulled" at start) accepts any adapter.
func GGUFFits(base, adapter []byte) error {
	if base == nil {
		return nil
	}
	b, err := gguf.Read(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		return fmt.Errorf("base model: %w", err)
	}
	a, err := gguf.Read(bytes.NewReader(adapter), int64(len(adapter)))
	if err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	return gguf.Fits(b, a)
}
