package gguf_test

import (
	"errors"
	"strings"
	"testing"

	"batos/internal/gguf"
)

func adapterMeta(extra ...gguf.KV) []gguf.KV {
	return append([]gguf.KV{
		str("general.architecture", "llama"),
		str("general.type", "adapter"),
		str("adapter.type", "lora"),
		{Key: "adapter.lora.alpha", Type: gguf.TypeFloat32, Value: 8.0},
	}, extra...)
}

// base is a model with one attention matrix of 64 inputs and 32 outputs
// and a token embedding of width 64 for 100 tokens.
func base(t *testing.T) *gguf.File {
	return build(t, []gguf.KV{str("general.architecture", "llama")},
		f32("token_embd.weight", 64, 100), f32("blk.0.attn_q.weight", 64, 32), f32("blk.0.attn_norm.weight", 64))
}

func TestCheckModel(t *testing.T) {
	tests := []struct {
		name   string
		meta   []gguf.KV
		tensor []gguf.Tensor
		want   string // "" for a usable model
	}{
		{"model", []gguf.KV{str("general.architecture", "llama"), str("general.type", "model")}, []gguf.Tensor{f32("t", 1)}, ""},
		{"no general.type", []gguf.KV{str("general.architecture", "llama")}, []gguf.Tensor{f32("t", 1)}, ""},
		{"adapter", adapterMeta(), []gguf.Tensor{f32("t", 1)}, `general.type is "adapter", want "model"`},
		{"general.type not a string", []gguf.KV{str("general.architecture", "llama"), {Key: "general.type", Type: gguf.TypeUint8, Value: 1}},
			[]gguf.Tensor{f32("t", 1)}, `general.type is 1 (uint8), want "model"`},
		{"no architecture", nil, []gguf.Tensor{f32("t", 1)}, "general.architecture is missing"},
		{"empty architecture", []gguf.KV{str("general.architecture", "")}, []gguf.Tensor{f32("t", 1)}, `general.architecture is ""`},
		{"no tensors", []gguf.KV{str("general.architecture", "llama")}, nil, "no tensors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gguf.CheckModel(build(t, tt.meta, tt.tensor...))
			checkErr(t, err, gguf.ErrNotModel, tt.want)
		})
	}
}

func checkErr(t *testing.T, err, sentinel error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("got %v, want no error", err)
	case want == "":
	case err == nil || !strings.Contains(err.Error(), want):
		t.Fatalf("got %v, want an error containing %s", err, want)
	case !errors.Is(err, sentinel):
		t.Fatalf("got %v, want it to wrap %v", err, sentinel)
	}
}

func TestCheckAdapter(t *testing.T) {
	pairQ := []gguf.Tensor{f32("blk.0.attn_q.weight.lora_a", 64, 4), f32("blk.0.attn_q.weight.lora_b", 4, 32)}
	tests := []struct {
		name    string
		meta    []gguf.KV
		tensors []gguf.Tensor
		want    string
	}{
		{"adapter", adapterMeta(), pairQ, ""},
		{"norm tensors are ignored", adapterMeta(), append(pairQ, f32("blk.0.attn_norm.weight", 64)), ""},
		{"model", []gguf.KV{str("general.architecture", "llama"), str("adapter.type", "lora")}, pairQ,
			`general.type is missing, want "adapter"`},
		{"not lora", []gguf.KV{str("general.architecture", "llama"), str("general.type", "adapter"), str("adapter.type", "cvec")},
			pairQ, `adapter.type is "cvec", want "lora"`},
		{"no adapter.type", []gguf.KV{str("general.architecture", "llama"), str("general.type", "adapter")}, pairQ,
			"adapter.type is missing"},
		{"no architecture", adapterMeta()[1:], pairQ, "general.architecture is missing"},
		{"alpha type", append(adapterMeta()[:3], gguf.KV{Key: "adapter.lora.alpha", Type: gguf.TypeUint32, Value: 8}),
			pairQ, "adapter.lora.alpha has type uint32, want float32"},
		{"no tensors", adapterMeta(), nil, "no LoRA tensors"},
		{"stray tensor", adapterMeta(), append(pairQ, f32("blk.0.attn_q.weight", 64, 32)),
			"tensor blk.0.attn_q.weight is not named X.lora_a or X.lora_b"},
		{"lone lora_a", adapterMeta(), pairQ[:1], "tensor blk.0.attn_q.weight.lora_a has no matching blk.0.attn_q.weight.lora_b"},
		{"lone lora_b", adapterMeta(), pairQ[1:], "tensor blk.0.attn_q.weight.lora_b has no matching blk.0.attn_q.weight.lora_a"},
		{"no base name", adapterMeta(), []gguf.Tensor{f32(".lora_a", 4, 4), f32(".lora_b", 4, 4)}, "names no base tensor"},
		{"ranks differ", adapterMeta(), []gguf.Tensor{f32("x.lora_a", 64, 4), f32("x.lora_b", 8, 32)},
			"tensors x.lora_a [64 4] and x.lora_b [8 32] have different ranks"},
		{"three dims", adapterMeta(), []gguf.Tensor{f32("x.lora_a", 64, 4, 2), f32("x.lora_b", 4, 32)},
			"tensor x.lora_a has shape [64 4 2], want two dimensions"},
		{"token_embd ranks", adapterMeta(), []gguf.Tensor{f32("token_embd.weight.lora_a", 4, 100), f32("token_embd.weight.lora_b", 4, 64)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gguf.CheckAdapter(build(t, tt.meta, tt.tensors...))
			checkErr(t, err, gguf.ErrNotAdapter, tt.want)
		})
	}
}

func TestFits(t *testing.T) {
	tests := []struct {
		name    string
		meta    []gguf.KV
		tensors []gguf.Tensor
		want    string
	}{
		{"fits", adapterMeta(), []gguf.Tensor{f32("blk.0.attn_q.weight.lora_a", 64, 8), f32("blk.0.attn_q.weight.lora_b", 8, 32)}, ""},
		{"token_embd fits swapped", adapterMeta(), []gguf.Tensor{
			f32("token_embd.weight.lora_a", 8, 100), f32("token_embd.weight.lora_b", 8, 64)}, ""},
		{"other architecture", append([]gguf.KV{str("general.architecture", "qwen2")}, adapterMeta()[1:]...), []gguf.Tensor{
			f32("blk.0.attn_q.weight.lora_a", 64, 8), f32("blk.0.attn_q.weight.lora_b", 8, 32)},
			`adapter architecture "qwen2" differs from the base's "llama"`},
		{"missing base tensor", adapterMeta(), []gguf.Tensor{
			f32("blk.0.attn_q.weight.lora_a", 64, 8), f32("blk.0.attn_q.weight.lora_b", 8, 32),
			f32("blk.0.attn_v.weight.lora_b", 8, 32), f32("blk.0.attn_v.weight.lora_a", 64, 8)},
			"adapter tensor blk.0.attn_v.weight.lora_b: base has no tensor blk.0.attn_v.weight"},
		{"narrow lora_a", adapterMeta(), []gguf.Tensor{f32("blk.0.attn_q.weight.lora_a", 32, 8), f32("blk.0.attn_q.weight.lora_b", 8, 32)},
			"adapter tensor blk.0.attn_q.weight.lora_a has shape [32 8] but base tensor blk.0.attn_q.weight has shape [64 32]: ne0 is 32, want 64"},
		{"wide lora_b", adapterMeta(), []gguf.Tensor{f32("blk.0.attn_q.weight.lora_a", 64, 8), f32("blk.0.attn_q.weight.lora_b", 8, 64)},
			"adapter tensor blk.0.attn_q.weight.lora_b has shape [8 64] but base tensor blk.0.attn_q.weight has shape [64 32]: ne1 is 64, want 32"},
		{"transposed", adapterMeta(), []gguf.Tensor{f32("blk.0.attn_q.weight.lora_a", 8, 64), f32("blk.0.attn_q.weight.lora_b", 32, 8)},
			"different ranks"},
		{"token_embd not swapped", adapterMeta(), []gguf.Tensor{
			f32("token_embd.weight.lora_a", 64, 8), f32("token_embd.weight.lora_b", 8, 100)}, "different ranks"},
		{"token_embd wrong vocab", adapterMeta(), []gguf.Tensor{
			f32("token_embd.weight.lora_a", 8, 99), f32("token_embd.weight.lora_b", 8, 64)},
			"adapter tensor token_embd.weight.lora_a has shape [8 99] but base tensor token_embd.weight has shape [64 100]: ne1 is 99, want 100"},
	}
	b := base(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := gguf.Fits(b, build(t, tt.meta, tt.tensors...))
			sentinel := gguf.ErrMismatch
			if strings.Contains(tt.want, "ranks") {
				sentinel = gguf.ErrNotAdapter
			}
			checkErr(t, err, sentinel, tt.want)
		})
	}
	a := build(t, adapterMeta(), f32("blk.0.attn_q.weight.lora_a", 64, 8), f32("blk.0.attn_q.weight.lora_b", 8, 32))
	if err := gguf.Fits(a, a); !errors.Is(err, gguf.ErrNotModel) || !strings.HasPrefix(err.Error(), "base: ") {
		t.Errorf("Fits(adapter, adapter) = %v, want base: ... ErrNotModel", err)
	}
}
