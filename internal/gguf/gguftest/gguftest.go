// Package gguftest makes tiny GGUF files for tests: a random-weight llama
// model small enough to generate in every test run, and LoRA adapters that
// fit it or do not.
package gguftest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"batos/internal/gguf"
)

// The shape of the TinyLlama model.
const (
	Layers      = 2   // llama.block_count
	Width       = 64  // llama.embedding_length
	FeedForward = 128 // llama.feed_forward_length
	Heads       = 4   // llama.attention.head_count and head_count_kv
	Context     = 128 // llama.context_length
	Vocab       = 380 // tokens, see vocabulary
	Rank        = 4   // of the TinyLoRA and MismatchedLoRA adapters
)

// TinyLlama returns a complete llama model of Layers layers, width Width
// and a vocabulary of Vocab tokens, with random F32 weights drawn from
// seed: the same seed gives the same bytes. Its tensors and metadata are
// named as llama.cpp names those of the llama architecture, and its
// SentencePiece-style vocabulary has every byte token, so llama.cpp can
// tokenize any text with it. It is about half a megabyte.
func TinyLlama(seed int64) []byte {
	r := newRand(seed)
	meta := []gguf.KV{
		str("general.architecture", "llama"),
		str("general.type", "model"),
		str("general.name", "batos tiny llama"),
		u32("general.file_type", 0), // all F32
		u32("llama.block_count", Layers),
		u32("llama.context_length", Context),
		u32("llama.embedding_length", Width),
		u32("llama.feed_forward_length", FeedForward),
		u32("llama.attention.head_count", Heads),
		u32("llama.attention.head_count_kv", Heads),
		f32kv("llama.attention.layer_norm_rms_epsilon", 1e-5),
		u32("llama.rope.dimension_count", Width/Heads),
		f32kv("llama.rope.freq_base", 10000),
		u32("llama.vocab_size", Vocab),
	}
	meta = append(meta, vocabulary()...)
	tensors := []gguf.Tensor{matrix(r, "token_embd.weight", Width, Vocab)}
	for i := range Layers {
		blk := fmt.Sprintf("blk.%d.", i)
		tensors = append(tensors,
			ones(blk+"attn_norm.weight", Width),
			matrix(r, blk+"attn_q.weight", Width, Width),
			matrix(r, blk+"attn_k.weight", Width, Width),
			matrix(r, blk+"attn_v.weight", Width, Width),
			matrix(r, blk+"attn_output.weight", Width, Width),
			ones(blk+"ffn_norm.weight", Width),
			matrix(r, blk+"ffn_gate.weight", Width, FeedForward),
			matrix(r, blk+"ffn_up.weight", Width, FeedForward),
			matrix(r, blk+"ffn_down.weight", FeedForward, Width),
		)
	}
	tensors = append(tensors,
		ones("output_norm.weight", Width),
		matrix(r, "output.weight", Width, Vocab),
	)
	return write(meta, tensors)
}

// TinyLoRA returns a LoRA adapter of rank Rank for TinyLlama, with random
// weights drawn from seed, for attn_q and attn_v of every layer.
func TinyLoRA(seed int64) []byte { return lora(seed, "batos tiny lora", Width) }

// MismatchedLoRA returns a well-formed LoRA adapter that does not fit
// TinyLlama: it was made for a llama model of width 32.
func MismatchedLoRA(seed int64) []byte { return lora(seed, "batos lora for width 32", 32) }

// lora returns an adapter for attn_q and attn_v of a llama model of Layers
// layers and the given width, shaped as llama.cpp expects (see gguf.Fits):
// lora_a is [width, Rank] and lora_b [Rank, width].
func lora(seed int64, name string, width uint64) []byte {
	r := newRand(seed)
	meta := []gguf.KV{
		str("general.architecture", "llama"),
		str("general.type", "adapter"),
		str("general.name", name),
		str("adapter.type", "lora"),
		f32kv("adapter.lora.alpha", 2*Rank),
	}
	var tensors []gguf.Tensor
	for i := range Layers {
		for _, w := range []string{"attn_q", "attn_v"} {
			base := fmt.Sprintf("blk.%d.%s.weight", i, w)
			tensors = append(tensors,
				matrix(r, base+".lora_a", width, Rank),
				matrix(r, base+".lora_b", Rank, width),
			)
		}
	}
	return write(meta, tensors)
}

// vocabulary returns the tokenizer metadata: a SentencePiece ("llama")
// vocabulary of the three special tokens, the 256 byte tokens llama.cpp
// falls back to for text no other token covers, the word-start marker ▁,
// the printable ASCII characters and ▁a to ▁z.
func vocabulary() []gguf.KV {
	const (
		normal  = 1
		unknown = 2
		control = 3
		byteTok = 6
	)
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{unknown, control, control}
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, byteTok)
	}
	tokens = append(tokens, "▁")
	for c := '!'; c <= '~'; c++ {
		tokens = append(tokens, string(c))
	}
	for c := 'a'; c <= 'z'; c++ {
		tokens = append(tokens, "▁"+string(c))
	}
	scores := make([]float32, len(tokens))
	for i := len(types); i < len(tokens); i++ {
		types = append(types, normal)
		scores[i] = -float32(i)
	}
	if len(tokens) != Vocab {
		panic(fmt.Sprintf("gguftest: vocabulary has %d tokens, Vocab says %d", len(tokens), Vocab))
	}
	return []gguf.KV{
		str("tokenizer.ggml.model", "llama"),
		{Key: "tokenizer.ggml.tokens", Type: gguf.TypeArray, Elem: gguf.TypeString, Value: tokens},
		{Key: "tokenizer.ggml.scores", Type: gguf.TypeArray, Elem: gguf.TypeFloat32, Value: scores},
		{Key: "tokenizer.ggml.token_type", Type: gguf.TypeArray, Elem: gguf.TypeInt32, Value: types},
		u32("tokenizer.ggml.unknown_token_id", 0),
		u32("tokenizer.ggml.bos_token_id", 1),
		u32("tokenizer.ggml.eos_token_id", 2),
		{Key: "tokenizer.ggml.add_bos_token", Type: gguf.TypeBool, Value: true},
		{Key: "tokenizer.ggml.add_eos_token", Type: gguf.TypeBool, Value: false},
	}
}

func newRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
}

func str(key, v string) gguf.KV { return gguf.KV{Key: key, Type: gguf.TypeString, Value: v} }

func u32(key string, v uint64) gguf.KV { return gguf.KV{Key: key, Type: gguf.TypeUint32, Value: v} }

func f32kv(key string, v float64) gguf.KV {
	return gguf.KV{Key: key, Type: gguf.TypeFloat32, Value: v}
}

// matrix returns an F32 tensor of shape [n0, n1] with small random
// weights, as an initialised layer has.
func matrix(r *rand.Rand, name string, n0, n1 uint64) gguf.Tensor {
	v := make([]float32, n0*n1)
	for i := range v {
		v[i] = float32(r.NormFloat64() * 0.02)
	}
	return f32tensor(name, v, n0, n1)
}

// ones returns an F32 vector of ones, a norm's neutral weight.
func ones(name string, n uint64) gguf.Tensor {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return f32tensor(name, v, n)
}

func f32tensor(name string, v []float32, dims ...uint64) gguf.Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return gguf.Tensor{Name: name, Dims: dims, Type: gguf.F32, Data: data}
}

// write encodes a file; its input is this package's own, so an error is a
// bug here.
func write(meta []gguf.KV, tensors []gguf.Tensor) []byte {
	var buf bytes.Buffer
	if err := gguf.Write(&buf, meta, tensors); err != nil {
		panic("gguftest: " + err.Error())
	}
	return buf.Bytes()
}
