package gguftest_test

import (
	"bytes"
	"errors"
	"testing"

	"batos/internal/gguf"
	"batos/internal/gguf/gguftest"
)

func read(t *testing.T, name string, data []byte) *gguf.File {
	t.Helper()
	f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	t.Logf("%s: %d bytes, %d tensors, %d metadata keys", name, len(data), len(f.Tensors), len(f.Metadata))
	if len(data) < 1<<10 || len(data) > 600<<10 {
		t.Errorf("%s is %d bytes, want a few hundred KB at most", name, len(data))
	}
	return f
}

func TestTinyLlama(t *testing.T) {
	m := read(t, "TinyLlama", gguftest.TinyLlama(1))
	if err := gguf.CheckModel(m); err != nil {
		t.Fatalf("CheckModel: %v", err)
	}
	want := map[string]uint64{
		"llama.block_count":             gguftest.Layers,
		"llama.embedding_length":        gguftest.Width,
		"llama.feed_forward_length":     gguftest.FeedForward,
		"llama.attention.head_count":    gguftest.Heads,
		"llama.attention.head_count_kv": gguftest.Heads,
		"llama.context_length":          gguftest.Context,
		"llama.rope.dimension_count":    gguftest.Width / gguftest.Heads,
	}
	for key, v := range want {
		if got, ok := m.Uint(key); !ok || got != v {
			t.Errorf("%s = %d, %v; want %d", key, got, ok, v)
		}
	}
	if got := m.Architecture(); got != "llama" {
		t.Errorf("Architecture() = %q, want llama", got)
	}
	tokens, _ := m.Get("tokenizer.ggml.tokens")
	if n := len(tokens.Value.([]any)); n != gguftest.Vocab {
		t.Errorf("%d tokens, want %d", n, gguftest.Vocab)
	}
	for _, name := range []string{"token_embd.weight", "blk.1.ffn_down.weight", "output_norm.weight", "output.weight"} {
		if _, ok := m.Tensor(name); !ok {
			t.Errorf("no tensor %s", name)
		}
	}
	if q, _ := m.Tensor("blk.0.attn_q.weight"); q.Size != 4*gguftest.Width*gguftest.Width {
		t.Errorf("blk.0.attn_q.weight is %d bytes, want %d", q.Size, 4*gguftest.Width*gguftest.Width)
	}
}

func TestLoRA(t *testing.T) {
	m := read(t, "TinyLlama", gguftest.TinyLlama(1))
	a := read(t, "TinyLoRA", gguftest.TinyLoRA(2))
	if err := gguf.CheckAdapter(a); err != nil {
		t.Fatalf("CheckAdapter(TinyLoRA): %v", err)
	}
	if err := gguf.Fits(m, a); err != nil {
		t.Fatalf("Fits(TinyLlama, TinyLoRA): %v", err)
	}
	bad := read(t, "MismatchedLoRA", gguftest.MismatchedLoRA(3))
	if err := gguf.CheckAdapter(bad); err != nil {
		t.Fatalf("CheckAdapter(MismatchedLoRA): %v", err)
	}
	err := gguf.Fits(m, bad)
	if !errors.Is(err, gguf.ErrMismatch) {
		t.Fatalf("Fits(TinyLlama, MismatchedLoRA) = %v, want ErrMismatch", err)
	}
	t.Logf("Fits(TinyLlama, MismatchedLoRA): %v", err)
}

func TestDeterministic(t *testing.T) {
	for name, gen := range map[string]func(int64) []byte{
		"TinyLlama":      gguftest.TinyLlama,
		"TinyLoRA":       gguftest.TinyLoRA,
		"MismatchedLoRA": gguftest.MismatchedLoRA,
	} {
		if !bytes.Equal(gen(7), gen(7)) {
			t.Errorf("%s(7) differs between calls", name)
		}
		if bytes.Equal(gen(7), gen(8)) {
			t.Errorf("%s(7) equals %s(8)", name, name)
		}
	}
}
